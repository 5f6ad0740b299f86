-- pgbench replay of one confirmed order, for the ceiling of `cargo xtask bench`:
-- every SQL statement the services run for `POST /api/v1/orders`, in their
-- order and with their transaction boundaries, and nothing else (no HTTP).
-- It runs against one scratch database holding the three services' schemas
-- (their table names do not collide), so one pgbench transaction is one order.
-- Source of each statement: services/pedidos/src/{orders,repo,idempotency,saga}.rs,
-- services/estoque/src/reservations.rs, services/pagamentos/src/payments.rs.
--
-- Variables: -D skus=<catalog size>, -D lines=<1 to 3, 0 to draw>, -D card=<1
-- card, 0 pix, 2 to draw>. Lines and payments are drawn like
-- xtask/bench/load.lua: 1 to 3 lines, line k from the k-th third of the
-- catalog (so already in sku order), 1 to 3 units, card or pix.
--
-- `tests/tests/order_sql.rs` holds this file to the services: the statements
-- of one replayed order must be, one for one and in order, the statements the
-- services run for one order, a parameter of theirs standing for any
-- expression here.

\set oid random(1, 9223372036854775806)
\if :lines = 0
\set n random(1, 3)
\else
\set n :lines
\endif
\set third :skus / 3
\set s1 random(1, :third)
\set s2 :third + random(1, :third)
\set s3 2 * :third + random(1, :third)
\set q1 random(1, 3)
\set q2 random(1, 3)
\set q3 random(1, 3)
\if :card = 2
\set card random(0, 1)
\endif

-- pedidos, orders.rs `create`: the order (returned to the saga) and its Idempotency-Key, one transaction.
BEGIN;
\if :n = 1
INSERT INTO orders (id, customer_id, items, payment_method, payment_token, lease_until) VALUES (md5(:oid::text)::uuid, 'bench-' || :client_id, jsonb_build_array(jsonb_build_object('sku', 'BENCH-' || lpad(:s1::text, 4, '0'), 'quantity', :q1::bigint, 'unit_price_cents', null)), CASE WHEN :card = 1 THEN 'card' ELSE 'pix' END, CASE WHEN :card = 1 THEN 'tok_visa' END, now() + make_interval(secs => 30)) RETURNING id, customer_id, status, step, items, total_cents, payment_method, payment_token, payment_id, payment_status, failure, compensation_pending, cancel_requested, created_at, updated_at;
\elif :n = 2
INSERT INTO orders (id, customer_id, items, payment_method, payment_token, lease_until) VALUES (md5(:oid::text)::uuid, 'bench-' || :client_id, jsonb_build_array(jsonb_build_object('sku', 'BENCH-' || lpad(:s1::text, 4, '0'), 'quantity', :q1::bigint, 'unit_price_cents', null), jsonb_build_object('sku', 'BENCH-' || lpad(:s2::text, 4, '0'), 'quantity', :q2::bigint, 'unit_price_cents', null)), CASE WHEN :card = 1 THEN 'card' ELSE 'pix' END, CASE WHEN :card = 1 THEN 'tok_visa' END, now() + make_interval(secs => 30)) RETURNING id, customer_id, status, step, items, total_cents, payment_method, payment_token, payment_id, payment_status, failure, compensation_pending, cancel_requested, created_at, updated_at;
\else
INSERT INTO orders (id, customer_id, items, payment_method, payment_token, lease_until) VALUES (md5(:oid::text)::uuid, 'bench-' || :client_id, jsonb_build_array(jsonb_build_object('sku', 'BENCH-' || lpad(:s1::text, 4, '0'), 'quantity', :q1::bigint, 'unit_price_cents', null), jsonb_build_object('sku', 'BENCH-' || lpad(:s2::text, 4, '0'), 'quantity', :q2::bigint, 'unit_price_cents', null), jsonb_build_object('sku', 'BENCH-' || lpad(:s3::text, 4, '0'), 'quantity', :q3::bigint, 'unit_price_cents', null)), CASE WHEN :card = 1 THEN 'card' ELSE 'pix' END, CASE WHEN :card = 1 THEN 'tok_visa' END, now() + make_interval(secs => 30)) RETURNING id, customer_id, status, step, items, total_cents, payment_method, payment_token, payment_id, payment_status, failure, compensation_pending, cancel_requested, created_at, updated_at;
\endif
DELETE FROM idempotency_keys WHERE key = 'bench-' || :oid AND created_at < now() - make_interval(hours => 24);
INSERT INTO idempotency_keys (key, fingerprint, order_id) VALUES ('bench-' || :oid, md5(:oid::text) || md5(:oid::text), md5(:oid::text)::uuid) ON CONFLICT (key) DO NOTHING;
COMMIT;

-- estoque, reservations.rs `hold`: claim, check skus, take units per line, load.
BEGIN;
INSERT INTO reservations (order_id, status, expires_at) VALUES (md5(:oid::text)::uuid, 'held', now() + make_interval(secs => 300)) ON CONFLICT (order_id) DO NOTHING;
SELECT sku FROM products WHERE sku = ANY(ARRAY['BENCH-' || lpad(:s1::text, 4, '0'), CASE WHEN :n >= 2 THEN 'BENCH-' || lpad(:s2::text, 4, '0') END, CASE WHEN :n >= 3 THEN 'BENCH-' || lpad(:s3::text, 4, '0') END]);
UPDATE products SET available = available - :q1 WHERE sku = 'BENCH-' || lpad(:s1::text, 4, '0') AND available >= :q1 RETURNING price_cents \gset p1_
INSERT INTO reservation_items (order_id, sku, quantity, unit_price_cents) VALUES (md5(:oid::text)::uuid, 'BENCH-' || lpad(:s1::text, 4, '0'), :q1, :p1_price_cents);
\set total :q1 * :p1_price_cents
\if :n >= 2
UPDATE products SET available = available - :q2 WHERE sku = 'BENCH-' || lpad(:s2::text, 4, '0') AND available >= :q2 RETURNING price_cents \gset p2_
INSERT INTO reservation_items (order_id, sku, quantity, unit_price_cents) VALUES (md5(:oid::text)::uuid, 'BENCH-' || lpad(:s2::text, 4, '0'), :q2, :p2_price_cents);
\set total :total + :q2 * :p2_price_cents
\endif
\if :n >= 3
UPDATE products SET available = available - :q3 WHERE sku = 'BENCH-' || lpad(:s3::text, 4, '0') AND available >= :q3 RETURNING price_cents \gset p3_
INSERT INTO reservation_items (order_id, sku, quantity, unit_price_cents) VALUES (md5(:oid::text)::uuid, 'BENCH-' || lpad(:s3::text, 4, '0'), :q3, :p3_price_cents);
\set total :total + :q3 * :p3_price_cents
\endif
SELECT status, expires_at, created_at, updated_at FROM reservations WHERE order_id = md5(:oid::text)::uuid;
SELECT sku, quantity, unit_price_cents FROM reservation_items WHERE order_id = md5(:oid::text)::uuid ORDER BY sku;
COMMIT;

-- pedidos, repo.rs `record_reserved` (the priced items, asynchronous commit), returning the order.
UPDATE orders SET step = 'reserved', items = (SELECT jsonb_agg(e || jsonb_build_object('unit_price_cents', 100)) FROM jsonb_array_elements(items) e), total_cents = :total, lease_until = now() + make_interval(secs => 30), updated_at = now() FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit WHERE id = md5(:oid::text)::uuid AND status = 'pending' AND step = 'created' RETURNING id, customer_id, status, step, items, total_cents, payment_method, payment_token, payment_id, payment_status, failure, compensation_pending, cancel_requested, created_at, updated_at;

-- pagamentos, payments.rs `charge`: one autocommitted insert.
INSERT INTO payments (id, order_id, amount_cents, method, token, status, decline_reason) VALUES (gen_random_uuid(), md5(:oid::text)::uuid, :total, CASE WHEN :card = 1 THEN 'card' ELSE 'pix' END, CASE WHEN :card = 1 THEN 'tok_visa' END, 'approved', NULL) ON CONFLICT (order_id) DO NOTHING RETURNING id, order_id, amount_cents, method, status, decline_reason, created_at, refunded_at, token;

-- pedidos, repo.rs `record_charged` (asynchronous commit), returning the order.
UPDATE orders SET step = 'charged', payment_id = md5(:oid::text), payment_status = 'approved', lease_until = now() + make_interval(secs => 30), updated_at = now() FROM (SELECT set_config('synchronous_commit', 'off', true)) AS asynchronous_commit WHERE id = md5(:oid::text)::uuid AND status = 'pending' AND step = 'reserved' RETURNING id, customer_id, status, step, items, total_cents, payment_method, payment_token, payment_id, payment_status, failure, compensation_pending, cancel_requested, created_at, updated_at;

-- estoque, reservations.rs `transition` to committed.
BEGIN;
SELECT status FROM reservations WHERE order_id = md5(:oid::text)::uuid FOR UPDATE;
UPDATE reservations SET status = 'committed', updated_at = now() WHERE order_id = ANY(ARRAY[md5(:oid::text)::uuid]);
SELECT status, expires_at, created_at, updated_at FROM reservations WHERE order_id = md5(:oid::text)::uuid;
SELECT sku, quantity, unit_price_cents FROM reservation_items WHERE order_id = md5(:oid::text)::uuid ORDER BY sku;
COMMIT;

-- pedidos, saga.rs `finish`: the outcome and the key's stored response, one transaction.
BEGIN;
UPDATE orders SET status = 'confirmed', step = 'done', failure = NULL, payment_id = COALESCE(NULL, payment_id), payment_status = COALESCE(NULL, payment_status), compensation_pending = false, updated_at = now() WHERE id = md5(:oid::text)::uuid AND status = 'pending' RETURNING id, customer_id, status, step, items, total_cents, payment_method, payment_token, payment_id, payment_status, failure, compensation_pending, cancel_requested, created_at, updated_at;
UPDATE idempotency_keys SET response_status = 201, response_body = jsonb_build_object('id', md5(:oid::text)::uuid, 'customer_id', 'bench-' || :client_id::text, 'status', 'confirmed', 'total_cents', :total::bigint, 'payment', jsonb_build_object('id', md5(:oid::text), 'status', 'approved', 'method', 'card'), 'created_at', now(), 'updated_at', now()) WHERE order_id = md5(:oid::text)::uuid AND response_status IS NULL;
COMMIT;
