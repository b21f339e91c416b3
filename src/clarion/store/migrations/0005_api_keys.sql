-- API keys: each belongs to one brand. Only a hash is stored; the key is shown once.
CREATE TABLE api_keys (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    bigint NOT NULL REFERENCES brands(id),
    name        text NOT NULL,
    key_hash    bytea NOT NULL UNIQUE,    -- sha256 of the key
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
