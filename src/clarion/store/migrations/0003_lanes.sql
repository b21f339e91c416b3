-- Flow control as data: a brand's pool of senders, and limits per lane.

CREATE TABLE senders (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id     bigint NOT NULL REFERENCES brands(id),
    number       text NOT NULL,
    kind         text NOT NULL DEFAULT 'long_code'
                 CHECK (kind IN ('long_code', 'toll_free', 'short_code')),
    rate_per_s   real,            -- NULL: no limit of its own
    per_segment  boolean NOT NULL DEFAULT false,
    UNIQUE (brand_id, number)
);

-- Limits of other lanes: kind 'provider' (key: provider account), 'carrier'
-- (key: 'campaign:carrier', per minute as rate_per_s = n / 60), 'brand_carrier_day'
-- (key: 'brand:carrier', per_day).
CREATE TABLE lane_limits (
    kind         text NOT NULL,
    key          text NOT NULL,
    rate_per_s   real,
    burst        real,
    per_day      integer,
    per_segment  boolean NOT NULL DEFAULT false,
    PRIMARY KEY (kind, key)
);


-- Failed provider calls per message (transient errors); at the limit it is dead-lettered.
ALTER TABLE messages ADD COLUMN attempts smallint NOT NULL DEFAULT 0;
