#!/usr/bin/env bash
# The load test of perfloc-server (issue 12): perfloc against glibc, jemalloc and mimalloc
# under wrk, on loopback only. Installs wrk if it is missing, builds the servers and the
# driver, and runs the driver with the arguments given (see `--help`). It runs --rounds
# rounds (default 3), every contender once per round (warm-up, calm, spike, calm again),
# the order rotated per round; the report shows medians over the rounds and their spread.
#
#   # The full run, report in docs/: 3 rounds x 4 contenders x ~35 s, about 7 min.
#   bash examples/server/load.sh
#   # A quick check that it works.
#   bash examples/server/load.sh --rounds 1 --phase-secs 3 --warmup-secs 1 --out /tmp/load
#
# The driver refuses any --host that is not a loopback address, and stops every server and
# wrk it starts.
set -euo pipefail

cd "$(dirname "$0")/../.."

# Refuse a non-loopback target here too, before installing or building anything.
args=("$@")
for ((i = 0; i < ${#args[@]}; i++)); do
  case "${args[i]}" in
    --host) host="${args[i + 1]:-}" ;;
    --host=*) host="${args[i]#--host=}" ;;
    *) continue ;;
  esac
  case "$host" in
    localhost | ::1 | "[::1]" | 127.*) ;;
    *)
      echo "load.sh: refusing --host '$host': only loopback (127.0.0.0/8, ::1, localhost)" >&2
      exit 2
      ;;
  esac
done

if ! command -v wrk >/dev/null 2>&1; then
  echo "load.sh: wrk is missing: installing wrk from Debian's packages (apt-get)" >&2
  apt-get update -q
  apt-get install -y -q wrk
fi

cargo build --release -p perfloc-server --bins
exec "${CARGO_TARGET_DIR:-target}/release/load" "$@"
