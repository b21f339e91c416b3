-- Saved segments: a name and a definition (JSON, checked by `domain.segments`); counted live
-- from the subscribers, their consent, events and messages, never a stored list.
CREATE TABLE segments (
    id          bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id    bigint NOT NULL REFERENCES brands(id),
    name        text NOT NULL,
    definition  jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX segments_by_brand ON segments (brand_id, id);
