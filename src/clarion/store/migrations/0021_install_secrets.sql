-- Secrets an install makes for itself when none is configured (the unsubscribe links'
-- key), so that every process of the install uses the same one and none is a default.
CREATE TABLE install_secrets (
    name        text PRIMARY KEY,
    value       text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
