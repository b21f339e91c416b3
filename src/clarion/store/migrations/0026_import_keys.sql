-- The phones and emails a running import has read so far, with the row that brought each: a
-- later row with one of them is rejected as a duplicate of that row. Kept here rather than
-- in the importing process, so its memory stays flat whatever the file's size; an import's
-- keys are deleted when it ends. Unlogged: lost in a crash, as the import then is.
CREATE UNLOGGED TABLE import_keys (
    import_id  bigint NOT NULL,
    key        text NOT NULL,
    row_number bigint NOT NULL,
    PRIMARY KEY (import_id, key)
);
