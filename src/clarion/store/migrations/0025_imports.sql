-- Subscriber imports (a CSV through the API or the CLI): progress as the rows go in, and the
-- rejected rows with their row number and reason (the first 10,000 of them; the count is
-- always whole).
CREATE TABLE imports (
    id           bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id     bigint NOT NULL REFERENCES brands(id),
    source       text NOT NULL,            -- where the subscribers' consent was collected
    status       text NOT NULL DEFAULT 'running'
                 CHECK (status IN ('running', 'done', 'failed')),
    rows_read    bigint NOT NULL DEFAULT 0,
    created      bigint NOT NULL DEFAULT 0,  -- new subscribers
    existing     bigint NOT NULL DEFAULT 0,  -- rows whose phone or email the brand had already
    rejected     bigint NOT NULL DEFAULT 0,
    error        text,                     -- why a failed import stopped
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),  -- a running import moves it every batch
    finished_at  timestamptz
);
CREATE INDEX imports_by_brand ON imports (brand_id, id);

CREATE TABLE import_rejections (
    import_id  bigint NOT NULL REFERENCES imports(id),
    row_number bigint NOT NULL,  -- the CSV record's number, the header being row 1
    field      text,
    reason     text NOT NULL,
    PRIMARY KEY (import_id, row_number)
);
