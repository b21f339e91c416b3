-- Outbound webhooks (Standard Webhooks): a brand's endpoints and the events they asked for.
-- Events are written by triggers in the transaction of the fact they tell (an outbox: a
-- fold's receipts, a click, a consent, an attribution), once per fact (`key`); a dispatcher
-- posts them, batched, and retries with backoff. With no endpoint enabled, a trigger finds
-- none and writes nothing: the receipts side pays a look at an empty table per fold.

CREATE TABLE webhook_endpoints (
    id              bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id        bigint NOT NULL REFERENCES brands(id),
    url             text NOT NULL,
    secret          text NOT NULL,         -- whsec_…: signs every request
    event_types     text[] NOT NULL,
    enabled         boolean NOT NULL DEFAULT true,
    failing_since   timestamptz,           -- the first failure since the last success
    disabled_at     timestamptz,
    disabled_reason text,
    created_at      timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX webhook_endpoints_brand ON webhook_endpoints (brand_id) WHERE enabled;

CREATE TABLE webhook_events (
    id         bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id   bigint NOT NULL,
    type       text NOT NULL,
    key        text NOT NULL,  -- the fact's own key: a repeated report is one event
    payload    jsonb NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    UNIQUE (type, key)
);

CREATE TABLE webhook_deliveries (
    endpoint_id  bigint NOT NULL REFERENCES webhook_endpoints(id) ON DELETE CASCADE,
    event_id     bigint NOT NULL REFERENCES webhook_events(id),
    status       text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered')),
    attempts     integer NOT NULL DEFAULT 0,
    next_at      timestamptz NOT NULL DEFAULT now(),
    last_code    integer,
    last_error   text,
    delivered_at timestamptz,
    PRIMARY KEY (endpoint_id, event_id)
);
CREATE INDEX webhook_deliveries_due ON webhook_deliveries (next_at) WHERE status = 'pending';

-- Queue events (type, brand, payload) for every enabled endpoint of their brand that asked
-- for their type.
CREATE FUNCTION clarion_queue_webhooks(kind text, events jsonb) RETURNS void
LANGUAGE sql AS $$
    WITH e AS (
        INSERT INTO webhook_events (brand_id, type, key, payload)
        SELECT (x->>'brand_id')::bigint, kind, x->>'key', x->'payload'
        FROM jsonb_array_elements(events) x
        WHERE EXISTS (SELECT 1 FROM webhook_endpoints w
                      WHERE w.brand_id = (x->>'brand_id')::bigint AND w.enabled
                        AND kind = ANY(w.event_types))
        ON CONFLICT (type, key) DO NOTHING
        RETURNING id, brand_id
    )
    INSERT INTO webhook_deliveries (endpoint_id, event_id)
    SELECT w.id, e.id FROM e JOIN webhook_endpoints w
        ON w.brand_id = e.brand_id AND w.enabled AND kind = ANY(w.event_types)
$$;

-- message.delivered and message.failed: the final receipts of messages, as each fold logs
-- them (one row of the receipt log per fold: one look per fold).
CREATE FUNCTION clarion_hook_receipts() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM clarion_queue_webhooks(t.kind, t.events) FROM (
        SELECT CASE WHEN e->>'status' = 'delivered' THEN 'message.delivered'
                    ELSE 'message.failed' END AS kind,
               jsonb_agg(jsonb_build_object(
                   'brand_id', m.brand_id, 'key', m.id::text || ':' || (e->>'status'),
                   'payload', jsonb_build_object(
                       'message_id', m.id, 'status', e->>'status',
                       'error_code', e->>'error_code', 'carrier', e->>'carrier',
                       'occurred_at', e->>'occurred_at', 'campaign_id', m.campaign_id,
                       'subscriber_id', m.subscriber_id, 'channel', m.channel))) AS events
        FROM json_array_elements(NEW.events) AS e
        JOIN messages m ON m.id = clarion_uuid_or_null(e->>'message_id')
        WHERE e->>'status' IN ('delivered', 'undelivered', 'failed')
          AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.brand_id = m.brand_id
                      AND w.enabled)
        GROUP BY 1
    ) t;
    RETURN NULL;
END $$;
CREATE TRIGGER receipt_log_webhooks AFTER INSERT ON receipt_log
    FOR EACH ROW EXECUTE FUNCTION clarion_hook_receipts();

-- subscriber.opted_in and subscriber.opted_out: the consent ledger's decisions.
CREATE FUNCTION clarion_hook_consents() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM clarion_queue_webhooks(t.kind, t.events) FROM (
        SELECT 'subscriber.' || n.status AS kind,
               jsonb_agg(jsonb_build_object('brand_id', n.brand_id, 'key', n.id::text,
                   'payload', jsonb_build_object(
                   'subscriber_id', n.subscriber_id, 'channel', n.channel, 'status', n.status,
                   'source', n.source, 'at', n.created_at))) AS events
        FROM new_consents n
        WHERE n.status IN ('opted_in', 'opted_out')
          AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.brand_id = n.brand_id
                      AND w.enabled)
        GROUP BY 1
    ) t;
    RETURN NULL;
END $$;
CREATE TRIGGER consents_webhooks AFTER INSERT ON consents
    REFERENCING NEW TABLE AS new_consents FOR EACH STATEMENT
    EXECUTE FUNCTION clarion_hook_consents();

-- message.clicked: a person's first click on a link of a message.
CREATE FUNCTION clarion_hook_clicks() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM clarion_queue_webhooks('message.clicked', t.events) FROM (
        SELECT jsonb_agg(jsonb_build_object('brand_id', n.brand_id,
                   'key', n.link_id::text || ':' || n.subscriber_id::text,
                   'payload', jsonb_build_object(
                   'message_id', n.message_id, 'campaign_id', n.campaign_id,
                   'subscriber_id', n.subscriber_id, 'url', l.url, 'at', n.first_at)))
                   AS events
        FROM new_clicks n JOIN links l ON l.id = n.link_id
        WHERE n.kind = 'human'
          AND EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.brand_id = n.brand_id
                      AND w.enabled)
        HAVING count(*) > 0
    ) t;
    RETURN NULL;
END $$;
CREATE TRIGGER clicks_webhooks AFTER INSERT ON clicks
    REFERENCING NEW TABLE AS new_clicks FOR EACH STATEMENT
    EXECUTE FUNCTION clarion_hook_clicks();

-- order.attributed: an order attributed to a message (once, when it is first attributed).
CREATE FUNCTION clarion_hook_attributions() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
    IF NOT EXISTS (SELECT 1 FROM webhook_endpoints WHERE enabled) THEN
        RETURN NULL;
    END IF;
    PERFORM clarion_queue_webhooks('order.attributed', t.events) FROM (
        SELECT jsonb_agg(jsonb_build_object('brand_id', n.brand_id, 'key', n.event_id::text,
                   'payload', jsonb_build_object(
                   'order_event_id', n.event_id, 'message_id', n.message_id,
                   'campaign_id', n.campaign_id, 'subscriber_id', n.subscriber_id,
                   'how', n.how, 'value', n.value, 'ordered_at', n.ordered_at)))
                   AS events
        FROM new_attributions n
        WHERE EXISTS (SELECT 1 FROM webhook_endpoints w WHERE w.brand_id = n.brand_id
                      AND w.enabled)
        HAVING count(*) > 0
    ) t;
    RETURN NULL;
END $$;
CREATE TRIGGER attributions_webhooks AFTER INSERT ON attributions
    REFERENCING NEW TABLE AS new_attributions FOR EACH STATEMENT
    EXECUTE FUNCTION clarion_hook_attributions();
