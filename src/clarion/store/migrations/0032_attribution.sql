-- Revenue attribution: an `ordered` event is attributed to one message, the last one the
-- subscriber clicked within the brand's click window or, failing that, the last one
-- delivered to them within its view window (store/attribution.py).
ALTER TABLE brands
    ADD COLUMN click_window_h real NOT NULL DEFAULT 120 CHECK (click_window_h BETWEEN 0 AND 2160),
    ADD COLUMN view_window_h  real NOT NULL DEFAULT 24  CHECK (view_window_h BETWEEN 0 AND 2160);

CREATE TABLE attributions (
    event_id      bigint PRIMARY KEY REFERENCES events(id) ON DELETE CASCADE,  -- once
    brand_id      bigint NOT NULL,
    subscriber_id bigint NOT NULL,
    campaign_id   bigint NOT NULL,
    message_id    uuid   NOT NULL,
    how           text   NOT NULL CHECK (how IN ('click', 'view')),
    value         numeric(14, 4),
    ordered_at    timestamptz NOT NULL,
    touched_at    timestamptz NOT NULL,  -- the click, or the delivery
    attributed_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX attributions_by_campaign ON attributions (campaign_id);
-- orders of the last days, looked at again as late receipts arrive
CREATE INDEX events_orders_recorded ON events (recorded_at) WHERE type = 'ordered';
