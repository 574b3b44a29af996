#!/usr/bin/env python3
"""Samples perfloc-server's memory while the load driver runs, to see where RSS goes.

Every 50 ms: the RSS of each running `server-* --handler chunk|global` process
(/proc/PID/statm) and, for `--handler chunk`, the pool's figures from its `GET /stats`
(in use, the most ever lent at once, and how much of the pool's memory in use and
free is resident). Writes one JSON
line per sample to OUT, then prints, per server process, the maxima over its run.

    python3 examples/server/sample_stats.py /tmp/samples.jsonl 330 &
    bash examples/server/load.sh --only glibc,perfloc --out /tmp/load

RSS minus the pool's resident memory is what lies outside the pool: the global
allocator's heap (hyper's buffers), the binary and the stacks. Needs Python 3 and `ss`
(iproute2), which finds each server's port. Its own `GET /stats` calls slow the server a
little: a sampled run is for the split, not for speed.
"""
import http.client
import json
import os
import subprocess
import sys
import time

MIB = 1 << 20


def servers():
    """(pid, handler) of every running server process."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            argv = open(f"/proc/{pid}/cmdline").read().split("\0")
        except OSError:
            continue
        if any("server-" in a for a in argv[:1]) and "--handler" in argv:
            found.append((int(pid), argv[argv.index("--handler") + 1]))
    return found


def resident(pid, page):
    return int(open(f"/proc/{pid}/statm").read().split()[1]) * page


def port_of(pid):
    listening = subprocess.run(["ss", "-ltnpH"], capture_output=True, text=True).stdout
    for line in listening.splitlines():
        if f"pid={pid}," in line:
            return int(line.split()[3].rsplit(":", 1)[1])
    return None


def pool_stats(port):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
    conn.request("GET", "/stats")
    body = conn.getresponse().read()
    conn.close()
    return json.loads(body)["pool"]


def main():
    out_path, secs = sys.argv[1], float(sys.argv[2])
    page = os.sysconf("SC_PAGE_SIZE")
    runs = {}
    with open(out_path, "w") as out:
        end = time.time() + secs
        while time.time() < end:
            for pid, handler in servers():
                try:
                    rss = resident(pid, page)
                    sample = {"pid": pid, "handler": handler, "t": time.time(), "rss": rss}
                    if handler == "chunk":
                        port = port_of(pid)
                        if port is None:
                            continue
                        sample.update(pool_stats(port))
                        # The pool may grow or shrink while it answers: of the RSS read
                        # before and after, the lower is the one that matches its figures.
                        sample["rss"] = min(rss, resident(pid, page))
                except (OSError, ValueError, KeyError, http.client.HTTPException):
                    continue
                out.write(json.dumps(sample) + "\n")
                runs.setdefault(pid, []).append(sample)
            time.sleep(0.05)
    for pid, samples in runs.items():
        line = f"{samples[0]['handler']:6} pid {pid}: RSS max {max(s['rss'] for s in samples) / MIB:.1f} MiB"
        if samples[0]["handler"] == "chunk":
            in_pool = [s["resident_in_use_bytes"] + s["resident_free_bytes"] for s in samples]
            outside = [s["rss"] - r for s, r in zip(samples, in_pool)]
            line += (
                f"; pool in use max {max(s['in_use_bytes'] for s in samples) / MIB:.1f}"
                f" (lent at most {samples[-1]['peak_lent_bytes'] / MIB:.1f})"
                f", pool resident max {max(in_pool) / MIB:.1f}"
                f", outside the pool max {max(outside) / MIB:.1f}"
            )
        print(line)


if __name__ == "__main__":
    main()
