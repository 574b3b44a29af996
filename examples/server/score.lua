-- wrk script of the perfloc-server load driver (src/bin/load, which embeds this file):
--   wrk -t1 -c16 -d10s --timeout 5s -s score.lua http://127.0.0.1:PORT/score -- BODY.json...
-- Posts the body files in turn to /score, and at the end prints one machine-readable line:
--   perfloc-load requests=N duration_us=N bytes=N connect=N read=N write=N status=N
--   timeout=N p50_us=N p99_us=N p999_us=N max_us=N

local requests = {}
local next_request = 0

-- Reads the body files named after `--` and formats one request for each, once.
function init(args)
  local headers = { ["Content-Type"] = "application/json" }
  for _, path in ipairs(args) do
    local file = assert(io.open(path, "rb"))
    local body = file:read("*a")
    file:close()
    requests[#requests + 1] = wrk.format("POST", "/score", headers, body)
  end
  assert(#requests > 0, "score.lua: no body files given after --")
end

-- The next body, round robin.
function request()
  next_request = next_request % #requests + 1
  return requests[next_request]
end

-- Latencies are in microseconds; "status" counts responses of 400 and above.
function done(summary, latency, _)
  local e = summary.errors
  io.write(string.format(
    "perfloc-load requests=%.0f duration_us=%.0f bytes=%.0f connect=%.0f read=%.0f "
      .. "write=%.0f status=%.0f timeout=%.0f p50_us=%.0f p99_us=%.0f p999_us=%.0f "
      .. "max_us=%.0f\n",
    summary.requests, summary.duration, summary.bytes, e.connect, e.read, e.write,
    e.status, e.timeout, latency:percentile(50), latency:percentile(99),
    latency:percentile(99.9), latency.max))
end
