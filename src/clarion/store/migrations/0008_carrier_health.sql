-- Delivery monitoring per brand and carrier: outcomes, latency and error codes per minute,
-- and alerts an operator sees (one open alert per brand, kind and subject).
CREATE TABLE carrier_minutes (
    brand_id      bigint NOT NULL,
    carrier       text NOT NULL,
    minute        timestamptz NOT NULL,
    delivered     integer NOT NULL DEFAULT 0,
    failed        integer NOT NULL DEFAULT 0,   -- undelivered or failed
    latency_sum_s double precision NOT NULL DEFAULT 0,
    latency_n     integer NOT NULL DEFAULT 0,
    PRIMARY KEY (brand_id, carrier, minute)
);

CREATE TABLE carrier_errors (
    brand_id    bigint NOT NULL,
    carrier     text NOT NULL,
    error_code  text NOT NULL,
    n           bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (brand_id, carrier, error_code)
);

CREATE TABLE alerts (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    bigint NOT NULL,
    kind        text NOT NULL,          -- e.g. carrier_delivery_rate
    subject     text NOT NULL,          -- e.g. the carrier
    message     text NOT NULL,
    value       double precision,
    threshold   double precision,
    raised_at   timestamptz NOT NULL DEFAULT now(),
    cleared_at  timestamptz
);
CREATE UNIQUE INDEX alerts_open ON alerts (brand_id, kind, subject) WHERE cleared_at IS NULL;

-- Bus batches whose effect is counted once (the carrier stage's monitoring counts).
CREATE TABLE processed_batches (
    hop           text NOT NULL,
    batch_id      text NOT NULL,
    processed_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (hop, batch_id)
);
