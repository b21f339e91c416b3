-- Receipts that name only the provider's id (SMPP): the id map, written with the send
-- answer, and receipts that came before that answer, kept until it lands.
CREATE TABLE provider_refs (
    provider             text NOT NULL,
    provider_message_id  text NOT NULL,
    message_id           uuid NOT NULL,
    PRIMARY KEY (provider, provider_message_id)
);

CREATE TABLE early_receipts (
    id                   bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    provider             text NOT NULL,
    provider_message_id  text NOT NULL,
    status               text NOT NULL,
    occurred_at          timestamptz NOT NULL,
    error_code           text,
    carrier              text,
    received_at          timestamptz NOT NULL DEFAULT now(),
    UNIQUE (provider, provider_message_id, status)
);
