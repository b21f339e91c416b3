-- Compliance: double opt-in, suppression, the send gate's bookkeeping, inbound messages.

ALTER TABLE consents DROP CONSTRAINT consents_status_check;
ALTER TABLE consents ADD CONSTRAINT consents_status_check
    CHECK (status IN ('opted_in', 'opted_out', 'pending'));

ALTER TABLE brands
    ADD COLUMN smart_sending_h real NOT NULL DEFAULT 16,   -- 0 turns smart sending off
    ADD COLUMN support_contact text NOT NULL DEFAULT '';
CREATE INDEX brands_sender ON brands (sender, id);

-- Marketing messages are never sent after launch + expiry_h; fixed at the (first) launch.
ALTER TABLE campaigns
    ADD COLUMN expiry_h real NOT NULL DEFAULT 12,
    ADD COLUMN expires_at timestamptz;

-- Transactional replies (confirmations, HELP) may go to numbers that are no subscriber.
ALTER TABLE messages
    ALTER COLUMN subscriber_id DROP NOT NULL,
    ADD COLUMN kind text NOT NULL DEFAULT 'marketing'
        CHECK (kind IN ('marketing', 'transactional')),
    ADD COLUMN expires_at timestamptz,
    ADD COLUMN not_before timestamptz;               -- set when the gate defers a message
-- Frequency caps read a subscriber's recent sends; subscriber_id never changes, so status
-- updates stay HOT.
CREATE INDEX messages_subscriber ON messages (subscriber_id);
CREATE INDEX messages_not_before ON messages (not_before) WHERE not_before IS NOT NULL;

-- Numbers (or addresses) never to send to: per brand, or global when brand_id is NULL
-- (landlines, deactivated numbers, hard failures).
CREATE TABLE suppressions (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    bigint REFERENCES brands(id),
    channel     text NOT NULL DEFAULT 'sms',
    address     text NOT NULL,
    reason      text NOT NULL,
    source      text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX suppressions_key ON suppressions (coalesce(brand_id, 0), channel, address);

-- Every inbound message, once (provider × provider id), with what it was taken to mean.
CREATE TABLE inbound_messages (
    id                  bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id            bigint REFERENCES brands(id),
    subscriber_id       bigint REFERENCES subscribers(id),
    provider            text NOT NULL,
    provider_message_id text NOT NULL,
    from_address        text NOT NULL,
    to_address          text NOT NULL,
    body                text NOT NULL,
    intent              text NOT NULL,
    received_at         timestamptz NOT NULL,
    recorded_at         timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_message_id)
);
CREATE INDEX inbound_brand ON inbound_messages (brand_id, id);
