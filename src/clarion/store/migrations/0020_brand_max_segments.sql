-- The most segments one SMS of the brand's may have: a campaign message that renders longer
-- fails for its recipient (template_error), an API message longer is refused (422), and
-- validation names it. Providers cap a message at 10 parts (1,600 characters): a brand may
-- allow fewer, never more.
ALTER TABLE brands
    ADD COLUMN max_segments smallint NOT NULL DEFAULT 10
    CONSTRAINT brands_max_segments_range CHECK (max_segments BETWEEN 1 AND 10);
