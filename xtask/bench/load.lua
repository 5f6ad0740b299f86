-- wrk script of `cargo xtask bench`: a closed loop of orders or product reads
-- against the seeded catalog, reporting latency percentiles and every
-- response status as one JSON line for xtask to parse.
--
-- Arguments (after `--`): <mode: orders|products> <run id> <catalog size>
-- SKUs are BENCH-0001..BENCH-<n>. An order takes 1 to 3 lines, line k from
-- the k-th third of the catalog, so lines are distinct and already in sku
-- order, exactly like the pgbench replay (xtask/bench/order.sql).

local threads = {}

-- Main state: hand every thread its number before it starts.
function setup(thread)
   table.insert(threads, thread)
   thread:set("tid", #threads)
end

-- Per-thread state. `statuses` is global so that done() can read it
-- through thread:get (the only way across wrk's per-thread Lua states).
statuses = {}
local mode, run, skus, third = "orders", "run", 300, 100
local counter = 0

function init(args)
   mode = args[1] or mode
   run = args[2] or run
   skus = tonumber(args[3] or skus)
   third = math.floor(skus / 3)
   math.randomseed(os.time() + (tid or 0) * 7919)
end

local function sku(n)
   return string.format("BENCH-%04d", n)
end

local payments = { '{"method":"card","token":"tok_visa"}', '{"method":"pix"}' }

function request()
   if mode == "products" then
      return wrk.format("GET", "/api/v1/products/" .. sku(math.random(1, skus)))
   end
   counter = counter + 1
   local lines = {}
   for k = 1, math.random(1, 3) do
      local n = (k - 1) * third + math.random(1, third)
      lines[k] = string.format('{"sku":"%s","quantity":%d}', sku(n), math.random(1, 3))
   end
   local body = string.format(
      '{"customer_id":"bench-%d","items":[%s],"payment":%s}',
      tid, table.concat(lines, ","), payments[math.random(1, 2)])
   local headers = {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = string.format("%s-%d-%d", run, tid, counter),
   }
   return wrk.format("POST", "/api/v1/orders", headers, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
end

function done(summary, latency, requests)
   local merged = {}
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         merged[status] = (merged[status] or 0) + n
      end
   end
   local parts = {}
   for status, n in pairs(merged) do
      table.insert(parts, string.format('"%d":%d', status, n))
   end
   local e = summary.errors
   io.write(string.format(
      'BENCH-JSON {"requests":%d,"duration_us":%d,"p50_us":%d,"p90_us":%d,"p99_us":%d,' ..
      '"max_us":%d,"mean_us":%.1f,"socket_errors":%d,"statuses":{%s}}\n',
      summary.requests, summary.duration,
      latency:percentile(50), latency:percentile(90), latency:percentile(99),
      latency.max, latency.mean,
      e.connect + e.read + e.write + e.timeout,
      table.concat(parts, ",")))
end
