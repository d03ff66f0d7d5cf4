-- One row per send_id: written `sending` before the SMTP transaction starts and with its
-- outcome after it ends. A send whose row says `sent` is never sent again.
CREATE TABLE ledger (
    send_id          uuid PRIMARY KEY,
    campaign_id      uuid        NOT NULL,
    run_id           uuid        NOT NULL,
    contact_id       uuid        NOT NULL,
    step_index       integer     NOT NULL,
    attempt          integer     NOT NULL,
    status           text        NOT NULL
                     CHECK (status IN ('sending', 'sent', 'failed', 'deferred', 'skipped_no_consent')),
    smtp_code        integer,
    smtp_message     text,
    first_attempt_at timestamptz NOT NULL DEFAULT now(),
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- The consent cache, fed by the compacted contact.changed topic.
CREATE TABLE consent (
    contact_id       uuid PRIMARY KEY,
    email            text,
    marketing_opt_in boolean     NOT NULL,
    deleted          boolean     NOT NULL DEFAULT false,
    updated_at       timestamptz NOT NULL DEFAULT now()
);

-- Sends found `sending` when they came round again: a crash caught them mid-transaction,
-- and they are sent again (at-least-once). Counted for the metric and the report.
CREATE TABLE resent_after_crash (
    send_id uuid PRIMARY KEY,
    at      timestamptz NOT NULL DEFAULT now()
);
