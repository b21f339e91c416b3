-- A campaign's variants and A/B test (domain/variants.py). None: one variant, the
-- campaign's own texts. A test-then-winner campaign records its decision and the launch
-- attempt that sends the winner to the rest.
ALTER TABLE campaigns
    ADD COLUMN variants        jsonb,
    ADD COLUMN ab              jsonb,
    ADD COLUMN ab_winner       text,
    ADD COLUMN ab_decision     jsonb,
    ADD COLUMN ab_decided_at   timestamptz,
    ADD COLUMN ab_attempt      integer;  -- the launch that sends the winner
CREATE INDEX campaigns_testing ON campaigns (launched_at)
    WHERE ab IS NOT NULL AND ab_winner IS NULL AND status = 'sending';
