-- Subscribers over the API: when a subscriber last changed, and erasure. An erased
-- subscriber keeps its row (the consent ledger refers to it: the legal record of who agreed
-- to what, when, stays) but no personal data: phone, email, names and attributes are gone,
-- and only a hash of the phone and the email remains, so the brand can still show that the
-- number it is asked about consented, without keeping the number.
ALTER TABLE subscribers
    ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now(),
    ADD COLUMN erased_at  timestamptz,
    ADD COLUMN phone_hash bytea,  -- sha256 of "<brand id>:<phone>", set at erasure
    ADD COLUMN email_hash bytea;  -- sha256 of "<brand id>:<email>", set at erasure
ALTER TABLE subscribers DROP CONSTRAINT IF EXISTS subscribers_check;
ALTER TABLE subscribers ADD CONSTRAINT subscribers_reachable_or_erased
    CHECK (phone IS NOT NULL OR email IS NOT NULL OR erased_at IS NOT NULL);

-- The evidence a consent came with (a sign-up's page, IP address, user agent; the API key
-- that recorded it), kept beside the disclosure shown.
ALTER TABLE consents ADD COLUMN evidence jsonb;
