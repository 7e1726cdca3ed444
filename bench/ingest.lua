-- wrk script for bench/ingest.py: realistic Segment track events, every messageId unique.
--
--   wrk ... -s bench/ingest.lua URL -- MODE BATCH_SIZE NONCE
--
-- MODE is "batch" (POST /v1/batch with BATCH_SIZE events) or "single" (POST /v1/track
-- with one event). NONCE makes messageIds unique across runs against the same data
-- directory. The write key comes as an Authorization header (-H) from ingest.py.
--
-- Bodies are built from templates split around the messageId, so a request costs a
-- table.concat and BATCH_SIZE string.format calls. At the end `done` prints one line,
-- "BENCH_RESULT {json}", with the status counts, errors and latency percentiles.

local threads = {}

function setup(thread)
   thread:set("tid", #threads)
   table.insert(threads, thread)
end

-- Per-thread state (each wrk thread has its own Lua state). wrk also calls request()
-- once in its main state, without init(), to check the request: hence the defaults.
local mode, batch_size, nonce, path
local variants = {} -- { {text before the messageId, text after it}, ... }
local seq = 0
statuses = {} -- a global, so that done() can read it with thread:get

local EVENTS = {
   { "Product Viewed", "sku-48213", "Trail Running Shoe", "Footwear", "89.99" },
   { "Product Added", "sku-10577", "Merino Wool Socks", "Apparel", "14.50" },
   { "Checkout Started", "sku-88120", "Insulated Bottle", "Outdoor", "24.00" },
   { "Order Completed", "sku-30451", "Rain Jacket", "Apparel", "129.00" },
   { "Product Clicked", "sku-72004", "Headlamp 400lm", "Outdoor", "39.95" },
   { "Cart Viewed", "sku-55290", "Running Shorts", "Apparel", "34.00" },
   { "Coupon Applied", "sku-19933", "Hiking Poles", "Outdoor", "59.00" },
   { "Product Reviewed", "sku-61478", "Camp Stove", "Outdoor", "74.25" },
}

local function iso_now()
   return os.date("!%Y-%m-%dT%H:%M:%S") .. ".000Z"
end

local function event_template(i, now)
   local e = EVENTS[(i % #EVENTS) + 1]
   local user = string.format("user-%06d", (tid or 0) * 100000 + i * 7919 % 100000)
   local anon = string.format("%08x-5e1f-4c2b-9a7d-%012x", 0x3c9f2a11 + i, 0x51e2d3c4b5a6 + i)
   local before = '{"type":"track","messageId":"'
   local after = '","anonymousId":"' .. anon .. '","userId":"' .. user .. '",'
      .. '"event":"' .. e[1] .. '",'
      .. '"properties":{"product_id":"' .. e[2] .. '","name":"' .. e[3] .. '",'
      .. '"category":"' .. e[4] .. '","price":' .. e[5] .. ',"currency":"USD","quantity":1},'
      .. '"context":{"library":{"name":"analytics-python","version":"2.3.3"},'
      .. '"ip":"203.0.113.' .. (i % 250 + 1) .. '",'
      .. '"userAgent":"Mozilla/5.0 (X11; Linux x86_64) Chrome/126.0"},'
      .. '"timestamp":"' .. now .. '","integrations":{}}'
   return { before, after }
end

local function configure(args)
   mode = args[1] or "batch"
   batch_size = tonumber(args[2] or "100")
   nonce = args[3] or "00000000"
   path = (mode == "single") and "/v1/track" or "/v1/batch"
   local now = iso_now()
   variants = {}
   for i = 0, 63 do
      variants[#variants + 1] = event_template(i, now)
   end
   wrk.method = "POST"
   wrk.headers["Content-Type"] = "application/json"
end

configure({})

function init(args)
   configure(args)
end

local function message_id()
   seq = seq + 1
   -- 36 characters, like a UUID: nonce, thread, sequence number.
   return string.format("%s-%04x-%022x", nonce, tid or 0, seq)
end

function request()
   local nvar = #variants
   if mode == "single" then
      local v = variants[(seq % nvar) + 1]
      return wrk.format(nil, path, nil, v[1] .. message_id() .. v[2])
   end
   local parts = { '{"batch":[' }
   local n = 1
   for i = 1, batch_size do
      local v = variants[((seq + i) % nvar) + 1]
      if i > 1 then
         n = n + 1
         parts[n] = ","
      end
      parts[n + 1] = v[1]
      parts[n + 2] = message_id()
      parts[n + 3] = v[2]
      n = n + 3
   end
   parts[n + 1] = '],"sentAt":"' .. iso_now() .. '"}'
   return wrk.format(nil, path, nil, table.concat(parts))
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

local function json_table(t)
   local out = {}
   for k, v in pairs(t) do
      out[#out + 1] = string.format('"%s":%d', tostring(k), v)
   end
   return "{" .. table.concat(out, ",") .. "}"
end

function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
      for k, v in pairs(thread:get("statuses") or {}) do
         merged[k] = (merged[k] or 0) + v
      end
   end
   local pct = {}
   for _, p in ipairs({ 50, 75, 90, 99, 99.9 }) do
      pct[#pct + 1] = string.format('"%s":%d', tostring(p), latency:percentile(p))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH_RESULT {"duration_us":%d,"requests":%d,"bytes":%d,'
         .. '"statuses":%s,"errors":{"connect":%d,"read":%d,"write":%d,"status":%d,"timeout":%d},'
         .. '"latency_us":{"mean":%.1f,"stdev":%.1f,"min":%d,"max":%d,"percentiles":{%s}}}\n',
      summary.duration, summary.requests, summary.bytes, json_table(merged),
      e.connect, e.read, e.write, e.status, e.timeout,
      latency.mean, latency.stdev, latency.min, latency.max, table.concat(pct, ",")))
end
