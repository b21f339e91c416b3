-- Receipt events are recorded as a log: one row per fold (a receipts batch), holding its
-- reports as one JSON array, instead of one row per report. The row per report, with its
-- `(message_id, status)` key, was a quarter of Postgres' CPU in a campaign (two reports per
-- message, each a heap tuple and an index entry in a table and key that outgrow the caches,
-- and autovacuum passes over both): BENCHMARKS.md, issue 6, thirteenth pass.
--
-- A report is recorded as the provider sent it, repeats included (a webhook retried, a
-- redelivered batch); `message_events`, now a view over the log, is de-duplicated on
-- (message, status) as the table was, keeping the first, and has only the reports of
-- messages this install has. Events recorded before this
-- migration stay in their table, under the view as well.
--
-- What this costs: the view unpacks the log, so reading one message's events reads every
-- log row in a time range, not one index entry. `recorded_at` has a BRIN index for that
-- range (a message's reports come after its hand-over), and nothing on a hot path reads
-- events: the message row holds each message's status.
ALTER TABLE message_events RENAME TO message_events_by_row;
ALTER TRIGGER message_events_append_only ON message_events_by_row
    RENAME TO message_events_by_row_append_only;

CREATE TABLE receipt_log (
    recorded_at timestamptz NOT NULL DEFAULT now(),
    provider    text NOT NULL,
    -- The fold's reports as the bus carries them: [{"message_id", "status", "occurred_at",
    -- "provider_message_id", "error_code", "carrier"}, ...]. `json`, not `jsonb`, so it is
    -- stored as written (parsing it into jsonb cost Postgres twice as much, measured); the
    -- receipts side encodes the records it has, with no per-report Python.
    events      json NOT NULL
);
CREATE INDEX receipt_log_recorded_at ON receipt_log USING brin (recorded_at);
CREATE TRIGGER receipt_log_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON receipt_log
    FOR EACH STATEMENT EXECUTE FUNCTION clarion_append_only();

-- A logged message id as a uuid, or NULL if it is not one: the fold has read every id it
-- logs as a uuid, and this keeps one malformed entry written otherwise from failing every
-- read of the view. `pg_input_is_valid` (Postgres 16) where there is one; a pattern,
-- twice as slow to read, before it.
DO $$
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        CREATE FUNCTION clarion_uuid_or_null(t text) RETURNS uuid LANGUAGE sql STABLE
            AS $f$ SELECT CASE WHEN pg_input_is_valid(t, 'uuid') THEN t::uuid END $f$;
    ELSE
        CREATE FUNCTION clarion_uuid_or_null(t text) RETURNS uuid LANGUAGE sql IMMUTABLE
            AS $f$ SELECT CASE WHEN t ~ '^[0-9A-Fa-f]{8}(-?[0-9A-Fa-f]{4}){3}-?[0-9A-Fa-f]{12}$'
                          THEN t::uuid END $f$;
    END IF;
END $$;

-- The brand is the message's: joining the messages leaves out reports of messages this
-- install does not have, as inserting events joined to them did.
CREATE VIEW message_events AS
SELECT DISTINCT ON (message_id, status)
       brand_id, message_id, status, provider, provider_message_id, error_code, carrier,
       occurred_at, recorded_at
FROM (
    SELECT brand_id, message_id, status, provider, provider_message_id, error_code, carrier,
           occurred_at, recorded_at
    FROM message_events_by_row
    UNION ALL
    SELECT m.brand_id, m.id, e->>'status', l.provider, e->>'provider_message_id',
           e->>'error_code', e->>'carrier', (e->>'occurred_at')::timestamptz, l.recorded_at
    FROM receipt_log l
    CROSS JOIN LATERAL json_array_elements(l.events) AS e
    JOIN messages m ON m.id = clarion_uuid_or_null(e->>'message_id')
) AS reported
ORDER BY message_id, status, recorded_at;
