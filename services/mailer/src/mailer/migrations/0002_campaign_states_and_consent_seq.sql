-- Each campaign's state as its newest status said it (by status sequence), fed by
-- campaign.status and campaign.activated. Every mailer instance keeps it in memory,
-- re-read by updated_at, and checks it before each SMTP transaction.
CREATE TABLE campaign_states (
    campaign_id uuid PRIMARY KEY,
    state       text        NOT NULL CHECK (state IN ('active', 'paused', 'completed')),
    status_seq  bigint      NOT NULL DEFAULT 0,
    updated_at  timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX campaign_states_by_change ON campaign_states (updated_at);

-- `held`: not sent because the campaign was paused (tried again at the same attempt on
-- resume); `cancelled`: not sent because it was completed. A deferral keeps its retry
-- time, so that the answer can be given again to a send.due that comes round again.
ALTER TABLE ledger DROP CONSTRAINT ledger_status_check;
ALTER TABLE ledger ADD CONSTRAINT ledger_status_check
    CHECK (status IN ('sending', 'sent', 'failed', 'deferred', 'skipped_no_consent', 'held', 'cancelled'));
ALTER TABLE ledger ADD COLUMN retry_at timestamptz;

-- The contact's change sequence of the cached consent: a recipient evaluated later (a
-- higher sequence) is newer than the cache. NULL for what was cached before sequences.
ALTER TABLE consent ADD COLUMN change_seq bigint;
