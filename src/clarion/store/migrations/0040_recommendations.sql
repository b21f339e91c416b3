-- Product recommendations (intelligence/recs.py): each subscriber's products, best first, as
-- one 'recs' model version chose them (in stock when it was trained). A subscriber with no
-- row is a newcomer to that version: the model's popularity list, best first, is kept in its
-- `models.summary` ("popular"), which outlives the rows (a superseded version's rows are
-- pruned; a campaign that named it still knows what was popular).
CREATE TABLE recommendations (
    model_id      bigint NOT NULL REFERENCES models(id),
    subscriber_id bigint NOT NULL,
    product_ids   text[] NOT NULL,
    PRIMARY KEY (model_id, subscriber_id)
);
