-- A brand's product catalog, upserted by the shop (`POST /v1/products/batch`), and the events
-- its systems send (`POST /v1/events`): views, carts, checkouts, orders and custom types.

CREATE TABLE products (
    seq         bigint GENERATED ALWAYS AS IDENTITY,  -- the order of first upsert: list pages
    brand_id    bigint NOT NULL REFERENCES brands(id),
    id          text NOT NULL,                         -- the shop's own product id
    name        text NOT NULL,
    url         text,
    price       numeric(14, 4),
    image_url   text,
    categories  text[] NOT NULL DEFAULT '{}',
    in_stock    boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand_id, id)
);
CREATE UNIQUE INDEX products_by_seq ON products (brand_id, seq);

-- Append-only (no update; deleted only with an erased subscriber's data). The client's id
-- makes a retried request harmless: stored once per brand.
CREATE TABLE events (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id      bigint NOT NULL REFERENCES brands(id),
    client_id     text NOT NULL,
    subscriber_id bigint NOT NULL,
    type          text NOT NULL,
    occurred_at   timestamptz NOT NULL,
    value         numeric(14, 4),  -- an order's revenue
    properties    jsonb,
    items         jsonb,           -- [{"product_id", "quantity", "price"}]
    recorded_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (brand_id, client_id)
);
-- "Who did TYPE at least N times within D days": an index-only range per type and time.
CREATE INDEX events_by_type ON events (brand_id, type, occurred_at, subscriber_id);
-- A subscriber's timeline.
CREATE INDEX events_by_subscriber ON events (subscriber_id, occurred_at);
CREATE TRIGGER events_append_only BEFORE UPDATE OR TRUNCATE ON events
    FOR EACH STATEMENT EXECUTE FUNCTION clarion_append_only();
