-- Orders and the progress of their saga. `step` records how far the saga got,
-- so whoever resumes it (the request that started it, or the reconciler after
-- a crash) knows which idempotent call comes next.
CREATE TABLE orders (
    id                   uuid PRIMARY KEY,
    customer_id          text NOT NULL,
    status               text NOT NULL DEFAULT 'pending' CHECK (status IN
                             ('pending', 'confirmed', 'rejected', 'payment_declined', 'failed', 'cancelled')),
    step                 text NOT NULL DEFAULT 'created' CHECK (step IN
                             ('created', 'reserved', 'charged', 'done')),
    -- [{"sku", "quantity", "unit_price_cents"}]; prices are filled from estoque's reservation.
    items                jsonb NOT NULL,
    total_cents          bigint,
    payment_method       text NOT NULL CHECK (payment_method IN ('card', 'pix')),
    -- The processor's test token, kept so a resumed saga can re-issue the idempotent charge.
    payment_token        text,
    payment_id           text,
    payment_status       text,
    -- {"code", "detail", ...} for orders that ended without being confirmed.
    failure              jsonb,
    -- A terminal order whose hold or charge may still need undoing (an upstream
    -- call timed out); the reconciler keeps trying until it is settled.
    compensation_pending boolean NOT NULL DEFAULT false,
    -- Set when a cancel was accepted; cleared once stock is back and the payment refunded.
    cancel_requested     boolean NOT NULL DEFAULT false,
    -- Whoever drives the saga holds it until then; the reconciler waits for it to lapse.
    lease_until          timestamptz NOT NULL DEFAULT now(),
    created_at           timestamptz NOT NULL DEFAULT now(),
    updated_at           timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX orders_customer_newest ON orders (customer_id, created_at DESC, id DESC);
CREATE INDEX orders_newest ON orders (created_at DESC, id DESC);
CREATE INDEX orders_unfinished ON orders (lease_until)
    WHERE status = 'pending' OR compensation_pending OR cancel_requested;

-- Idempotency keys: one row per key, inserted with ON CONFLICT DO NOTHING in
-- the same transaction as the order, so concurrent duplicates create one order.
-- The response is stored when the order reaches its first outcome and replayed as is.
CREATE TABLE idempotency_keys (
    key             text PRIMARY KEY,
    fingerprint     text NOT NULL,
    order_id        uuid NOT NULL REFERENCES orders (id),
    response_status smallint,
    response_body   jsonb,
    created_at      timestamptz NOT NULL DEFAULT now()
);

CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
CREATE INDEX idempotency_keys_order ON idempotency_keys (order_id);
