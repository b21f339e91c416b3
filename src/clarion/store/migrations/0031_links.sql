-- Tracked short links (pipeline/links.py). A brand's links are served on its link domain
-- (none: the install's links URL); a domain is one brand's only.
ALTER TABLE brands ADD COLUMN link_domain text UNIQUE;
ALTER TABLE campaigns ADD COLUMN track_links boolean NOT NULL DEFAULT true;

-- A campaign's tracked URLs, per variant (the message id's: an SMS variant, "email"),
-- registered once before its first message renders.
CREATE TABLE links (
    id          bigserial PRIMARY KEY,
    brand_id    bigint NOT NULL REFERENCES brands(id),
    campaign_id bigint NOT NULL REFERENCES campaigns(id),
    variant     text   NOT NULL,
    url         text   NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (campaign_id, variant, url)
);

-- Clicks, once per link, recipient and kind (human; head: a HEAD request; bot: an
-- unfurler, a scanner, a crawler), with how many and when first and last. The message is
-- derived from the campaign and the subscriber; kept for attribution and reports.
CREATE TABLE clicks (
    link_id       bigint NOT NULL REFERENCES links(id),
    subscriber_id bigint NOT NULL,
    kind          text   NOT NULL CHECK (kind IN ('human', 'head', 'bot')),
    brand_id      bigint NOT NULL,
    campaign_id   bigint NOT NULL,
    message_id    uuid   NOT NULL,
    first_at      timestamptz NOT NULL,
    last_at       timestamptz NOT NULL,
    clicks        integer NOT NULL,
    user_agent    text,  -- the first click's
    PRIMARY KEY (link_id, subscriber_id, kind)
);
CREATE INDEX clicks_by_campaign ON clicks (campaign_id, kind);
-- attribution: a subscriber's human clicks by time
CREATE INDEX clicks_by_subscriber ON clicks (subscriber_id, last_at) WHERE kind = 'human';
