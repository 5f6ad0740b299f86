-- wrk script of `cargo xtask bench`: a closed loop of orders or product reads
-- against the seeded catalog, reporting latency percentiles and every
-- response status as one JSON line for xtask to parse.
--
-- Arguments (after `--`): <mode: orders|products> <run id> <catalog size>
-- [ids file]: with a file, the id of every order answered 201 is written
-- there, one per line, so that the invariants can check each of them.
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
confirmed = {}
ids_path = nil
local mode, run, skus, third = "orders", "run", 300, 100
local counter = 0

function init(args)
   mode = args[1] or mode
   run = args[2] or run
   skus = tonumber(args[3] or skus)
   third = math.floor(skus / 3)
   ids_path = args[4]
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
   -- The customer names the run, so pedidos' database tells which load placed an order.
   local body = string.format(
      '{"customer_id":"%s-%d","items":[%s],"payment":%s}',
      run, tid, table.concat(lines, ","), payments[math.random(1, 2)])
   local headers = {
      ["Content-Type"] = "application/json",
      ["Idempotency-Key"] = string.format("%s-%d-%d", run, tid, counter),
   }
   return wrk.format("POST", "/api/v1/orders", headers, body)
end

function response(status, headers, body)
   statuses[status] = (statuses[status] or 0) + 1
   if status == 201 and mode == "orders" then
      -- The order's own id is the first "id" member of its JSON.
      local id = string.match(body, '"id":"([0-9a-f%-]+)"')
      if id then
         table.insert(confirmed, id)
      end
   end
end

function done(summary, latency, requests)
   local merged = {}
   -- done() runs in the main state, which never saw the arguments.
   local path = threads[1] and threads[1]:get("ids_path")
   local ids = path and assert(io.open(path, "w"))
   for _, thread in ipairs(threads) do
      for status, n in pairs(thread:get("statuses")) do
         merged[status] = (merged[status] or 0) + n
      end
      if ids then
         for _, id in ipairs(thread:get("confirmed")) do
            ids:write(id, "\n")
         end
      end
   end
   if ids then
      ids:close()
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
