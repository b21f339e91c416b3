-- Provider accounts, each a brand's (or shared) way to a provider. Secrets are never stored:
-- a secret setting holds a reference to an environment variable ("env:ACME_TWILIO_TOKEN"),
-- resolved when the workers start.
CREATE TABLE provider_accounts (
    name      text PRIMARY KEY,
    kind      text NOT NULL CHECK (kind IN ('sim', 'twilio', 'smpp', 'smtp', 'sendgrid')),
    settings  jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at timestamptz NOT NULL DEFAULT now()
);
