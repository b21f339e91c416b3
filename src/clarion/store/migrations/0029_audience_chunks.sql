-- A resolved audience is kept as sorted chunks of subscriber ids (up to 10,000 a row, keyed
-- by the chunk's last id) rather than a row per subscriber: a million-subscriber audience is
-- a hundred rows, written in about a second where a row each (and its index entry) took
-- four, and a page's ids come from one or two chunks (BENCHMARKS.md, "The audience API").
CREATE TABLE campaign_audience_chunks (
    campaign_id bigint   NOT NULL REFERENCES campaigns(id),
    last_id     bigint   NOT NULL,
    ids         bigint[] NOT NULL,  -- ascending, all <= last_id and > the previous chunk's
    PRIMARY KEY (campaign_id, last_id)
);

INSERT INTO campaign_audience_chunks (campaign_id, last_id, ids)
SELECT campaign_id, max(subscriber_id), array_agg(subscriber_id ORDER BY subscriber_id)
FROM (SELECT campaign_id, subscriber_id,
             (row_number() OVER (PARTITION BY campaign_id ORDER BY subscriber_id) - 1) / 10000 AS k
      FROM campaign_audience) x
GROUP BY campaign_id, k;

DROP TABLE campaign_audience;
