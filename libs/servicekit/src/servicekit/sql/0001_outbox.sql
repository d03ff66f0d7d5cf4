-- The transactional outbox: events written in the same transaction as the change that
-- implies them, published to Kafka by servicekit.outbox.relay and then marked.
CREATE TABLE outbox (
    id           bigserial PRIMARY KEY,
    topic        text        NOT NULL,
    key          bytea       NOT NULL,
    value        bytea,
    headers      jsonb       NOT NULL DEFAULT '[]',
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
