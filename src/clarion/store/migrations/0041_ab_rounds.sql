-- An adaptive A/B test's rounds (domain/variants.py, intelligence/adaptive.py): each release
-- of part of the audience, the split it is sent by, and what that split was decided from.
-- A release sends the subscribers of rounds `round` to `last_round` (more than one: the
-- winner to all the rounds left); `attempt` is the launch attempt that sends it.
CREATE TABLE ab_rounds (
    campaign_id  bigint   NOT NULL REFERENCES campaigns(id) ON DELETE CASCADE,
    round        smallint NOT NULL CHECK (round >= 0),
    last_round   smallint NOT NULL CHECK (last_round >= round),
    attempt      integer  NOT NULL,
    decided_at   timestamptz NOT NULL DEFAULT now(),
    weights      jsonb NOT NULL,               -- variant key -> share of the release
    -- per variant key, over the rounds before: delivered, people who clicked, exposures
    -- (delivered counted by the share of their clicks come), P(best)
    delivered    jsonb NOT NULL DEFAULT '{}',
    clicks       jsonb NOT NULL DEFAULT '{}',
    exposures    jsonb NOT NULL DEFAULT '{}',
    p_best       jsonb NOT NULL DEFAULT '{}',
    decision     jsonb,                        -- the Allocation (None: the first round)
    PRIMARY KEY (campaign_id, round)
);
