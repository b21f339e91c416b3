-- The message insert is the hottest write (one row per recipient, by COPY). Its three
-- foreign keys cost a key lookup each per row: half of the COPY's time, measured
-- (BENCHMARKS.md, issue 6). Messages are only ever made by the pipeline from a brand,
-- campaign and subscriber it has just read, and none of those rows is ever deleted, so the
-- keys guard nothing the code does not already hold; message_events has none either.
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_brand_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_campaign_id_fkey;
ALTER TABLE messages DROP CONSTRAINT IF EXISTS messages_subscriber_id_fkey;
