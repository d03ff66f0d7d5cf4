-- Outbox messages no broker will ever take (too large), set aside by the relay with the
-- error, so that the rows after them go out; an operator finds them here.
CREATE TABLE outbox_rejected (
    id          bigserial   PRIMARY KEY,
    outbox_id   bigint      NOT NULL,
    topic       text        NOT NULL,
    key         bytea       NOT NULL,
    value       bytea,
    headers     jsonb       NOT NULL,
    error       text        NOT NULL,
    rejected_at timestamptz NOT NULL DEFAULT now()
);
