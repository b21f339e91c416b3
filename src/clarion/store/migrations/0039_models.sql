-- Learned models, versioned per brand and kind: send-time optimisation ('sto') and product
-- recommendations ('recs'). A row is kept for good (a campaign names the version that chose
-- its times or products); the per-subscriber output of a superseded version is pruned.
CREATE TABLE models (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    bigint NOT NULL REFERENCES brands(id),
    kind        text   NOT NULL CHECK (kind IN ('sto', 'recs')),
    version     integer NOT NULL,            -- 1, 2, ... per brand and kind
    trained_at  timestamptz NOT NULL DEFAULT now(),
    data_until  timestamptz NOT NULL,        -- the newest record it learned from
    summary     jsonb NOT NULL DEFAULT '{}', -- what it learned from, its parameters, timings
    pruned_at   timestamptz,                 -- its per-subscriber output deleted
    UNIQUE (brand_id, kind, version)
);

-- Send-time optimisation: each subscriber's 24 local hours, best first.
CREATE TABLE send_hours (
    model_id      bigint   NOT NULL REFERENCES models(id),
    subscriber_id bigint   NOT NULL,
    hours         smallint[] NOT NULL,
    PRIMARY KEY (model_id, subscriber_id)
);

-- A best-time send: each subscriber at their best hour within `best_time_h` hours of the
-- launch (the compliance window still governs), by the model version it names.
ALTER TABLE campaigns
    ADD COLUMN best_time_h   smallint CHECK (best_time_h BETWEEN 1 AND 72),
    ADD COLUMN sto_model_id  bigint REFERENCES models(id),
    ADD COLUMN recs_model_id bigint REFERENCES models(id);
