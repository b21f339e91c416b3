-- Receipt events carry their brand (every query of them is scoped by it), copied from the
-- message they are inserted joined to. The foreign key on it fired a check per event, two
-- per message, on the hottest insert path: brands are never deleted, and the join already
-- guarantees the brand is the message's, so the check guarded nothing (BENCHMARKS.md,
-- issue 6). Migration 0011 said events had no foreign key; this makes it so.
ALTER TABLE message_events DROP CONSTRAINT IF EXISTS message_events_brand_id_fkey;
