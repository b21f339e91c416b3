-- A campaign's audience may be a segment, less exclusion segments. It is resolved once, at
-- the first launch, into `campaign_audience` (the subscribers it goes to), which the
-- audience stage reads in keyset pages like the whole list; the plan resolves it too.
ALTER TABLE campaigns
    ADD COLUMN segment_id           bigint REFERENCES segments(id),
    ADD COLUMN exclude_segment_ids  bigint[] NOT NULL DEFAULT '{}',
    ADD COLUMN audience_resolved_at timestamptz;  -- at the first launch

CREATE TABLE campaign_audience (
    campaign_id   bigint NOT NULL REFERENCES campaigns(id),
    subscriber_id bigint NOT NULL,
    PRIMARY KEY (campaign_id, subscriber_id)
);
