-- wrk script for bench/flags.py.
--
--   wrk ... -s bench/flags.lua URL -- download SDK_KEY ETAG
--   wrk ... -s bench/flags.lua URL -- bulk SDK_KEY
--
-- download: GET /configuration-files/SDK_KEY/config_v6.json with If-None-Match: ETAG, as
-- a polling SDK whose config is unchanged (the answer is 304).
-- bulk: POST /ofrep/v1/evaluate/flags with a context of six attributes and a
-- targetingKey unique to the thread and request, so no two requests evaluate the same
-- user. At the end `done` prints "BENCH_RESULT {json}" with the status counts, socket
-- errors and latency percentiles (microseconds).

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

local mode, key, etag
local seq = 0
local COUNTRIES = { "HU", "DE", "US", "GB", "FR", "BR", "JP" }
statuses = {}

function init(args)
   mode, key, etag = args[1], args[2], args[3]
end

function request()
   if mode == "download" then
      return wrk.format("GET", "/configuration-files/" .. key .. "/config_v6.json", {
         ["If-None-Match"] = etag,
      })
   end
   seq = seq + 1
   local body = string.format(
      '{"context":{"targetingKey":"u-%d-%d","Email":"user%d@%s","Country":"%s",'
         .. '"AppVersion":"2.%d.0","Plan":"%s","Orders":%d}}',
      tid or 0, seq, seq, (seq % 5 == 0) and "staff.example" or "example.com",
      COUNTRIES[seq % #COUNTRIES + 1], seq % 7, (seq % 3 == 0) and "pro" or "free", seq % 11
   )
   return wrk.format("POST", "/ofrep/v1/evaluate/flags", {
      ["Authorization"] = "Bearer " .. (key or ""),
      ["Content-Type"] = "application/json",
   }, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local counts = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         counts[tostring(status)] = (counts[tostring(status)] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(counts) do
      table.insert(parts, string.format('"%s": %d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"requests": %d, "duration_us": %d, "statuses": {%s}, '
         .. '"errors": {"connect": %d, "read": %d, "write": %d, "timeout": %d}, '
         .. '"latency_us": {"p50": %d, "p90": %d, "p99": %d, "max": %d}}\n',
      summary.requests, summary.duration, table.concat(parts, ", "),
      e.connect, e.read, e.write, e.timeout,
      latency:percentile(50), latency:percentile(90), latency:percentile(99), latency.max
   ))
end
