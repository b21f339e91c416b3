-- message.delivered and message.failed are read from the receipt log by each endpoint's own
-- cursor instead of copied into the outbox per receipt: at campaign rates the copy (an
-- event and a delivery row per message) took Postgres from 0.020 to 0.074 s of CPU per
-- thousand messages and halved throughput (BENCHMARKS.md, "Campaigns that earn"). A dead
-- endpoint now costs one read per backoff; a live one, the reading it needs.
DROP TRIGGER receipt_log_webhooks ON receipt_log;
DROP FUNCTION clarion_hook_receipts();

ALTER TABLE receipt_log ADD COLUMN id bigint GENERATED ALWAYS AS IDENTITY;
CREATE INDEX receipt_log_id ON receipt_log (id);

ALTER TABLE webhook_endpoints
    ADD COLUMN receipts_after    bigint NOT NULL DEFAULT 0,  -- the last log row posted
    ADD COLUMN receipts_next_at  timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN receipts_attempts integer NOT NULL DEFAULT 0;
