-- Carrier lanes, lanes shared by every process, and per-subscriber sequencing.

-- The carrier of a number, from a lookup before its first send (or a receipt). Carrier
-- lanes need it before the message goes.
ALTER TABLE subscribers ADD COLUMN carrier text;

-- Work for one subscriber is routed by key: subscriber id % 8 picks the bus partition. The
-- audience walks each partition in keyset pages, so every batch belongs to one partition.
CREATE INDEX subscribers_brand_partition ON subscribers (brand_id, (id % 8), id);
ALTER TABLE campaigns ADD COLUMN audience_cursors bigint[] NOT NULL DEFAULT array_fill(0::bigint, ARRAY[8]);

-- Sequencing (a marketing message never overtakes an older waiting one to the same
-- subscriber) reads messages through `messages_subscriber`; no index on `status`, so status
-- updates stay HOT.

-- Why a message last waited before it went (quiet hours, a daily cap, a lane...): the claim
-- moves the deferral reason here, so `error_code` holds errors only.
ALTER TABLE messages ADD COLUMN waited text;

-- The last plan computed for a campaign (`clarion campaign plan`), for plan versus actual.
ALTER TABLE campaigns ADD COLUMN plan jsonb;

-- Lane state shared by every send process: tokens, AIMD rate, and today's use of a daily
-- quota. Processes lease tokens per batch (`lane_lease`) and give back what they did not use.
CREATE TABLE lane_state (
    kind      text NOT NULL,
    key       text NOT NULL,
    max_rate  double precision,     -- configured rate (per second); NULL: no rate
    burst     double precision,
    rate      double precision,     -- current rate (AIMD moves it between 0.1 and max_rate)
    tokens    double precision NOT NULL DEFAULT 0,
    at_s      double precision NOT NULL DEFAULT 0,  -- epoch seconds of the last refill
    per_day   integer,              -- daily quota (midnight Pacific); NULL: none
    day       text,
    used      double precision NOT NULL DEFAULT 0,
    PRIMARY KEY (kind, key)
);

-- Lease up to `wants` tokens from each lane (one call per batch; lanes locked in key order so
-- concurrent batches cannot deadlock). Returns per lane: tokens granted, the current rate,
-- and whether a spent daily quota is what limited it.
CREATE FUNCTION lane_lease(
    kinds text[], keys text[], wants double precision[], max_rates double precision[],
    bursts double precision[], per_days integer[], now_s double precision, today text
) RETURNS TABLE (kind text, key text, granted double precision, rate double precision,
                 daily_spent boolean)
LANGUAGE plpgsql AS $$
#variable_conflict use_column
DECLARE
    r record;
    s lane_state%ROWTYPE;
    avail double precision;
    day_left double precision;
    g double precision;
BEGIN
    FOR r IN
        SELECT * FROM unnest(kinds, keys, wants, max_rates, bursts, per_days)
            AS d(kind, key, want, max_rate, burst, per_day)
        ORDER BY 1, 2
    LOOP
        INSERT INTO lane_state AS ls (kind, key, max_rate, burst, rate, tokens, at_s, per_day, day)
        VALUES (r.kind, r.key, r.max_rate, r.burst, r.max_rate, coalesce(r.burst, 0), now_s,
                r.per_day, today)
        ON CONFLICT ON CONSTRAINT lane_state_pkey DO UPDATE
            SET max_rate = excluded.max_rate, burst = excluded.burst, per_day = excluded.per_day,
                rate = CASE WHEN excluded.max_rate IS NULL THEN NULL
                            ELSE least(coalesce(ls.rate, excluded.max_rate), excluded.max_rate) END
        RETURNING * INTO s;
        avail := 'Infinity';
        IF s.rate IS NOT NULL THEN
            s.tokens := least(s.burst, s.tokens + greatest(0, now_s - s.at_s) * s.rate);
            s.at_s := greatest(s.at_s, now_s);
            avail := greatest(0, s.tokens);
        END IF;
        day_left := 'Infinity';
        IF s.per_day IS NOT NULL THEN
            IF s.day IS DISTINCT FROM today THEN
                s.day := today;
                s.used := 0;
            END IF;
            day_left := greatest(0, s.per_day - s.used);
        END IF;
        g := least(r.want, avail, day_left);
        IF s.per_day IS NOT NULL THEN
            g := floor(g);  -- a quota counts whole messages
        END IF;
        IF s.rate IS NOT NULL THEN
            s.tokens := s.tokens - g;
        END IF;
        IF s.per_day IS NOT NULL THEN
            s.used := s.used + g;
        END IF;
        UPDATE lane_state AS ls SET tokens = s.tokens, at_s = s.at_s, day = s.day, used = s.used
            WHERE ls.kind = r.kind AND ls.key = r.key;
        kind := r.kind;
        key := r.key;
        granted := g;
        rate := s.rate;
        daily_spent := day_left < r.want;
        RETURN NEXT;
    END LOOP;
END;
$$;
