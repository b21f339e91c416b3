-- Conversations: a brand's inbox of replies that are no keyword (`inbound_messages` whose
-- intent is 'other'), one thread per subscriber; how far a thread was read; the answers its
-- users sent from the web UI (queued on the transactional hop, which records the message
-- itself only when its stage persists it: until then the thread shows the answer from here).

-- A thread's inbound messages, and the inbox's latest reply per subscriber.
CREATE INDEX inbound_brand_subscriber ON inbound_messages (brand_id, subscriber_id, id)
    WHERE subscriber_id IS NOT NULL;

CREATE TABLE conversation_reads (
    brand_id       bigint NOT NULL REFERENCES brands(id),
    subscriber_id  bigint NOT NULL,
    read_up_to     bigint NOT NULL,          -- the newest inbound_messages.id seen
    PRIMARY KEY (brand_id, subscriber_id)
);

CREATE TABLE conversation_answers (
    id             bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    brand_id       bigint NOT NULL REFERENCES brands(id),
    subscriber_id  bigint NOT NULL,
    message_id     uuid   NOT NULL UNIQUE,   -- the transactional message (messages.id)
    user_id        bigint REFERENCES users(id) ON DELETE SET NULL,
    body           text   NOT NULL,
    created_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX conversation_answers_thread ON conversation_answers (brand_id, subscriber_id, id);
