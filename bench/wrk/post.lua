-- wrk script for the booking POSTs: walk a prepared list of (path, body)
-- pairs, one fresh link and one fresh page load each, so no request repeats
-- another. Each line of the list file is "PATH<TAB>BODY" (BODY urlencoded).
-- A thread takes every THREADS-th line from its own offset. When its share
-- runs out the thread stops: the run is bounded by the list or by -d,
-- whichever comes first. Every answer must be 303 (booked, redirected to
-- /b/<ref>); anything else is counted as unexpected.
-- Usage: wrk -t THREADS ... -s bench/wrk/post.lua URL LIST_FILE THREADS
local threads = {}
local next_id = 0

function setup(thread)
  thread:set("id", next_id)
  next_id = next_id + 1
  table.insert(threads, thread)
end

function init(args)
  local count = tonumber(args[2]) or 1
  items = {}
  local n = 0
  for line in io.lines(args[1]) do
    if n % count == id then
      local tab = line:find("\t", 1, true)
      table.insert(items, { line:sub(1, tab - 1), line:sub(tab + 1) })
    end
    n = n + 1
  end
  position, answered, unexpected, exhausted = 0, 0, 0, 0
  form_headers = {
    ["Host"] = wrk.port and (wrk.host .. ":" .. wrk.port) or wrk.host,
    ["Content-Type"] = "application/x-www-form-urlencoded",
    ["Accept-Encoding"] = "gzip, deflate, br",
  }
end

function request()
  position = position + 1
  local item = items[position]
  if item == nil then
    -- The list is used up: stop this thread. wrk still wants a request
    -- for this call; /healthz is harmless and its answer is not counted.
    exhausted = 1
    wrk.thread:stop()
    return wrk.format("GET", "/healthz", { ["Host"] = form_headers["Host"] })
  end
  return wrk.format("POST", item[1], form_headers, item[2])
end

function response(status, headers, body)
  if exhausted == 1 then
    return
  end
  answered = answered + 1
  if status ~= 303 then
    unexpected = unexpected + 1
  end
end

function done(summary, latency, requests)
  local total_answered, total_unexpected, total_exhausted = 0, 0, 0
  for _, thread in ipairs(threads) do
    total_answered = total_answered + thread:get("answered")
    total_unexpected = total_unexpected + thread:get("unexpected")
    total_exhausted = total_exhausted + thread:get("exhausted")
  end
  local e = summary.errors
  io.write(string.format(
    'BENCH_JSON {"requests": %d, "duration_us": %d, "bytes": %d, ' ..
    '"errors": {"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d}, ' ..
    '"answered": %d, "unexpected": %d, "exhausted": %d, ' ..
    '"p50_us": %.1f, "p90_us": %.1f, "p99_us": %.1f, "mean_us": %.1f, "max_us": %.1f}\n',
    summary.requests, summary.duration, summary.bytes,
    e.connect, e.read, e.write, e.status, e.timeout,
    total_answered, total_unexpected, total_exhausted,
    latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.mean, latency.max))
end
