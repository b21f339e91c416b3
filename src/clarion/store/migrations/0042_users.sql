-- The web UI's people: a user belongs to one brand and signs in with an email and a password
-- (an Argon2id hash; never the password). Emails are unique in the install, compared without
-- case. After repeated failures an account is locked until `locked_until`.
CREATE TABLE users (
    id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id         bigint NOT NULL REFERENCES brands(id),
    email            text   NOT NULL,
    password_hash    text   NOT NULL,
    failed_attempts  integer NOT NULL DEFAULT 0,
    locked_until     timestamptz,
    created_at       timestamptz NOT NULL DEFAULT now(),
    last_sign_in_at  timestamptz
);
CREATE UNIQUE INDEX users_email ON users (lower(email));
CREATE INDEX users_brand ON users (brand_id, id);

-- A signed-in browser. The cookie holds a random token; only its SHA-256 is kept, so a copy
-- of this table signs no one in. `csrf_token` is sent back in every form of the session.
CREATE TABLE web_sessions (
    token_hash  bytea  PRIMARY KEY,
    user_id     bigint NOT NULL REFERENCES users(id) ON DELETE CASCADE,
    csrf_token  text   NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    expires_at  timestamptz NOT NULL,
    revoked     boolean NOT NULL DEFAULT false
);
CREATE INDEX web_sessions_user ON web_sessions (user_id);

-- A campaign's headline figures (sent, delivered, people who clicked, revenue) as last
-- counted: the dashboard reads one row per campaign instead of counting a million messages
-- per campaign on every page; a page asks for the stale ones to be counted again.
CREATE TABLE campaign_figures (
    campaign_id    bigint PRIMARY KEY REFERENCES campaigns(id) ON DELETE CASCADE,
    brand_id       bigint NOT NULL REFERENCES brands(id),
    sent           bigint NOT NULL,
    delivered      bigint NOT NULL,
    unique_clicks  bigint NOT NULL,
    revenue        double precision NOT NULL,
    counted_at     timestamptz NOT NULL
);
