-- Scheduled campaigns (status 'scheduled'): launched by the elected sweeper at
-- `scheduled_at`, once; a local-time send also holds each message until `local_time` on
-- `local_day` in its subscriber's zone (waves by zone).
ALTER TABLE campaigns
    ADD COLUMN scheduled_at timestamptz,
    ADD COLUMN local_day    date,
    ADD COLUMN local_time   text CHECK (local_time ~ '^([01][0-9]|2[0-3]):[0-5][0-9]$');
CREATE INDEX campaigns_scheduled ON campaigns (scheduled_at) WHERE status = 'scheduled';
