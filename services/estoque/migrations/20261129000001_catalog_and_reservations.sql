-- Catalog, stock and reservations of estoque.
--
-- Invariant (checked by the tests): for every product,
--   received = available + held + sold
-- where held and sold are the quantities of its reservation items whose
-- reservation is `held` or `committed`. `available` is what can still be sold
-- and is what the API calls `stock`.

CREATE TABLE products (
    -- COLLATE "C": ordering and cursor comparisons are byte order, as API.md asks.
    sku         TEXT COLLATE "C" PRIMARY KEY CHECK (sku ~ '^[A-Za-z0-9._-]{1,64}$'),
    name        TEXT NOT NULL CHECK (char_length(name) BETWEEN 1 AND 200),
    price_cents BIGINT NOT NULL CHECK (price_cents >= 0),
    available   BIGINT NOT NULL CHECK (available >= 0),
    -- Every unit that ever entered stock (initial stock plus restocks).
    received    BIGINT NOT NULL CHECK (received >= available),
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE reservations (
    order_id    UUID PRIMARY KEY,
    status      TEXT NOT NULL CHECK (status IN ('held', 'committed', 'released')),
    expires_at  TIMESTAMPTZ NOT NULL,
    created_at  TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at  TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- The sweeper only ever looks at held reservations, oldest deadline first.
CREATE INDEX reservations_held_expiry ON reservations (expires_at) WHERE status = 'held';

CREATE TABLE reservation_items (
    order_id         UUID NOT NULL REFERENCES reservations (order_id),
    sku              TEXT COLLATE "C" NOT NULL REFERENCES products (sku),
    quantity         BIGINT NOT NULL CHECK (quantity > 0),
    unit_price_cents BIGINT NOT NULL CHECK (unit_price_cents >= 0),
    PRIMARY KEY (order_id, sku)
);

CREATE INDEX reservation_items_sku ON reservation_items (sku);
