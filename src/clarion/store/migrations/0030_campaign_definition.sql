-- A campaign's audience may be a definition of its own (a segment's JSON, not saved as a
-- segment) instead of a saved segment; resolved the same way, at the first launch.
ALTER TABLE campaigns
    ADD COLUMN audience_definition jsonb,
    ADD CONSTRAINT one_audience CHECK (segment_id IS NULL OR audience_definition IS NULL);
