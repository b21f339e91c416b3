-- Reconciliation read the whole of `messages` every run (a sequential scan every 30 s, its
-- cost growing with the table's history, not with the traffic). It now reads two small
-- parts of it:
--  * messages handed over since the oldest one it has not asked about yet (its floor, kept
--    by the elected sweeper), through a BRIN index on `sent_at`: rows are written in
--    hand-over order, so a range of hand-over times is a few ranges of pages. A BRIN index
--    is a summarising index: updates of `sent_at` (a claim, a fold) stay HOT, and a COPY
--    into pages not yet summarised costs nothing at insert time (autosummarize summarises
--    each range of pages once it is full);
--  * messages asked about before and still without a final status, through a partial index
--    on `reconciled_at` that holds only those (the sweep clears `reconciled_at` once a
--    message has settled or is past the age at which it is no longer asked about). The
--    fold never writes `reconciled_at`, so its updates stay HOT.
CREATE INDEX messages_sent_at_brin ON messages USING brin (sent_at) WITH (autosummarize = on);
CREATE INDEX messages_reasking ON messages (reconciled_at) WHERE reconciled_at IS NOT NULL;
