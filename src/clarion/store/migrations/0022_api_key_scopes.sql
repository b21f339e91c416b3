-- API keys carry scopes (read, write, send), a hint (the secret's last four characters, to
-- tell keys apart in a list), when they were last used, and an optional rate of their own.
-- Keys made before this migration keep every scope: they could do everything.
ALTER TABLE api_keys
    ADD COLUMN scopes       text[] NOT NULL DEFAULT ARRAY['read', 'write', 'send'],
    ADD COLUMN hint         text NOT NULL DEFAULT '',
    ADD COLUMN last_used_at timestamptz,
    ADD COLUMN rate_per_s   double precision CHECK (rate_per_s IS NULL OR rate_per_s > 0);

CREATE INDEX api_keys_by_brand ON api_keys (brand_id, id);
