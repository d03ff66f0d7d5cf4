-- Counters per campaign and flow step, kept as email.status arrives and as recipients open,
-- click and unsubscribe: the stats endpoint reads a handful of rows, never the sends.
CREATE TABLE step_stats (
    campaign_id        uuid    NOT NULL,
    step_index         integer NOT NULL,
    sent               bigint  NOT NULL DEFAULT 0,
    failed             bigint  NOT NULL DEFAULT 0,
    skipped_no_consent bigint  NOT NULL DEFAULT 0,
    deferred           bigint  NOT NULL DEFAULT 0,
    opens              bigint  NOT NULL DEFAULT 0,
    clicks             bigint  NOT NULL DEFAULT 0,
    unsubscribes       bigint  NOT NULL DEFAULT 0,
    machine_opens      bigint  NOT NULL DEFAULT 0,
    PRIMARY KEY (campaign_id, step_index)
);
INSERT INTO step_stats (campaign_id, step_index, sent, failed, skipped_no_consent, deferred)
SELECT campaign_id, step_index, count(*) FILTER (WHERE status = 'sent'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'skipped_no_consent'), count(*) FILTER (WHERE status = 'deferred')
FROM send_outcomes GROUP BY campaign_id, step_index;

-- A send's first engagement of each kind: what makes a second open or click count nothing.
CREATE TABLE engagements (
    send_id     uuid        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('open', 'machine_open', 'click', 'unsubscribe')),
    campaign_id uuid        NOT NULL,
    step_index  integer     NOT NULL,
    contact_id  uuid        NOT NULL,
    url         text,
    at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (send_id, kind)
);

-- Each recipient at their own best hour (segment-svc learns it from their engagement).
ALTER TABLE campaigns ADD COLUMN optimize_send_time boolean NOT NULL DEFAULT false;
