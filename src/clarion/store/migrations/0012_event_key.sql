-- Receipt events are keyed by what they are: (message, status), the key they are
-- de-duplicated on. The surrogate identity column added a sequence call and a second index
-- to every insert, two per message: 20-38 % of the insert's time, measured in isolation
-- (BENCHMARKS.md, issue 6). Nothing reads it.
ALTER TABLE message_events DROP COLUMN id;
ALTER TABLE message_events DROP CONSTRAINT message_events_message_id_status_key,
    ADD PRIMARY KEY (message_id, status);
