-- Clarion foundation schema. Every brand-owned row carries brand_id.

CREATE TABLE brands (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    slug        text NOT NULL UNIQUE,
    name        text NOT NULL,
    sender      text NOT NULL,              -- default SMS sender (long code / short code)
    help_text   text NOT NULL DEFAULT '',
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE subscribers (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    bigint NOT NULL REFERENCES brands(id),
    phone       text,                       -- E.164, normalised at import
    email       text,
    timezone    text,                       -- IANA zone, stored or derived from the number
    first_name  text,
    last_name   text,
    attributes  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at  timestamptz NOT NULL DEFAULT now(),
    CHECK (phone IS NOT NULL OR email IS NOT NULL)
);
-- Keyset pages of a brand's audience walk this index.
CREATE INDEX subscribers_brand_id ON subscribers (brand_id, id);
CREATE UNIQUE INDEX subscribers_brand_phone ON subscribers (brand_id, phone) WHERE phone IS NOT NULL;
CREATE UNIQUE INDEX subscribers_brand_email ON subscribers (brand_id, email) WHERE email IS NOT NULL;

-- Append-only consent ledger; current consent is the latest row per subscriber and channel.
CREATE TABLE consents (
    id            bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id      bigint NOT NULL REFERENCES brands(id),
    subscriber_id bigint NOT NULL REFERENCES subscribers(id),
    channel       text NOT NULL CHECK (channel IN ('sms', 'email')),
    status        text NOT NULL CHECK (status IN ('opted_in', 'opted_out')),
    source        text NOT NULL,
    disclosure    text,
    keyword       text,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX consents_current ON consents (subscriber_id, channel, id DESC);

CREATE FUNCTION clarion_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION '% is append-only', TG_TABLE_NAME;
END $$;
CREATE TRIGGER consents_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON consents
    FOR EACH STATEMENT EXECUTE FUNCTION clarion_append_only();

CREATE TABLE campaigns (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- Globally unique: message ids derive from it, and provider idempotency keys must not
    -- collide across installs (or a rebuilt database) sharing a provider account.
    uid             uuid NOT NULL UNIQUE DEFAULT gen_random_uuid(),
    brand_id        bigint NOT NULL REFERENCES brands(id),
    name            text NOT NULL,
    channel         text NOT NULL DEFAULT 'sms' CHECK (channel IN ('sms', 'email')),
    body            text NOT NULL,
    status          text NOT NULL DEFAULT 'draft',
    launch_count    integer NOT NULL DEFAULT 0,
    audience_cursor bigint NOT NULL DEFAULT 0,   -- last subscriber id published by audience
    audience_count  integer NOT NULL DEFAULT 0,
    audience_done   boolean NOT NULL DEFAULT false,
    created_at      timestamptz NOT NULL DEFAULT now(),
    launched_at     timestamptz,
    first_send_at   timestamptz
);
CREATE INDEX campaigns_brand ON campaigns (brand_id, id);

CREATE TABLE messages (
    id                  uuid PRIMARY KEY,      -- derived from (campaign, variant, subscriber)
    brand_id            bigint NOT NULL REFERENCES brands(id),
    campaign_id         bigint REFERENCES campaigns(id),
    subscriber_id       bigint NOT NULL REFERENCES subscribers(id),
    channel             text NOT NULL DEFAULT 'sms',
    to_address          text NOT NULL,
    sender              text,
    body                text,
    segments            smallint NOT NULL DEFAULT 1,
    status              text NOT NULL,
    status_rank         smallint NOT NULL,
    provider            text,
    provider_message_id text,
    error_code          text,
    error_detail        text,
    carrier             text,
    created_at          timestamptz NOT NULL DEFAULT now(),
    sent_at             timestamptz,
    updated_at          timestamptz NOT NULL DEFAULT now()
) WITH (fillfactor = 70);
-- A message's status changes three or four times. No index covers a column those updates
-- touch, and pages keep free space, so the updates are HOT (no index maintenance).
CREATE UNIQUE INDEX messages_campaign_subscriber ON messages (campaign_id, subscriber_id)
    WHERE campaign_id IS NOT NULL;

-- Append-only status events, several per message; de-duplicated on (message, status).
CREATE TABLE message_events (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id            bigint NOT NULL REFERENCES brands(id),
    -- No foreign key: events are inserted joined to messages, so each one has its message,
    -- and a per-row key check would be paid on the hottest insert path.
    message_id          uuid NOT NULL,
    status              text NOT NULL,
    provider            text,
    provider_message_id text,
    error_code          text,
    carrier             text,
    occurred_at         timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (message_id, status)
);
CREATE TRIGGER message_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON message_events
    FOR EACH STATEMENT EXECUTE FUNCTION clarion_append_only();

-- Delivery outcomes per carrier, per campaign (the carrier stage's monitoring record).
CREATE TABLE carrier_stats (
    brand_id     bigint NOT NULL REFERENCES brands(id),
    campaign_id  bigint NOT NULL DEFAULT 0,
    carrier      text NOT NULL,
    delivered    bigint NOT NULL DEFAULT 0,
    undelivered  bigint NOT NULL DEFAULT 0,
    failed       bigint NOT NULL DEFAULT 0,
    updated_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (brand_id, campaign_id, carrier)
);
