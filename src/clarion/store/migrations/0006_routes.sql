-- Routing and failover: a brand's providers per channel, most preferred first. Without a
-- row, a brand uses every configured provider in the configured order.
CREATE TABLE brand_routes (
    brand_id  bigint NOT NULL REFERENCES brands(id),
    channel   text NOT NULL CHECK (channel IN ('sms', 'email')),
    position  smallint NOT NULL,
    provider  text NOT NULL,
    PRIMARY KEY (brand_id, channel, position)
);
