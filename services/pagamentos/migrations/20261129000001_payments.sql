-- Payments of pagamentos: one per order, ever.

CREATE TABLE payments (
    id             UUID PRIMARY KEY,
    -- The idempotency key of `POST /internal/payments`: a retry for the same
    -- order finds this row instead of charging twice.
    order_id       UUID NOT NULL UNIQUE,
    amount_cents   BIGINT NOT NULL CHECK (amount_cents >= 0),
    method         TEXT NOT NULL CHECK (method IN ('card', 'pix')),
    -- Test-mode card token (`tok_…`), kept to recognise a retry; NULL for pix.
    token          TEXT,
    status         TEXT NOT NULL CHECK (status IN ('approved', 'declined', 'refunded')),
    decline_reason TEXT CHECK ((status = 'declined') = (decline_reason IS NOT NULL)),
    created_at     TIMESTAMPTZ NOT NULL DEFAULT now(),
    refunded_at    TIMESTAMPTZ CHECK ((status = 'refunded') = (refunded_at IS NOT NULL)),
    CHECK ((method = 'card') = (token IS NOT NULL))
);
