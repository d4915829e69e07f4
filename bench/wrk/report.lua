-- wrk script for the GET runs: count the answers by status and print wrk's
-- figures as one JSON line that bench/load.py reads.
-- Usage: wrk ... -s bench/wrk/report.lua URL EXPECTED_STATUS
local threads = {}

function setup(thread)
  table.insert(threads, thread)
end

function init(args)
  expected = tonumber(args[1]) or 200
  answered, unexpected = 0, 0
end

function response(status, headers, body)
  answered = answered + 1
  if status ~= expected then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local total_answered, total_unexpected = 0, 0
  for _, thread in ipairs(threads) do
    total_answered = total_answered + thread:get("answered")
    total_unexpected = total_unexpected + thread:get("unexpected")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"answered": %d, "unexpected": %d, "exhausted": 0, ' ..
    '"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "mean_us": %.1f, "max_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    total_answered, total_unexpected,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
