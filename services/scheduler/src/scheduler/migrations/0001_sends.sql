-- A campaign run as campaign.activated described it; `state` follows campaign.status.
CREATE TABLE runs (
    run_id                     uuid PRIMARY KEY,
    campaign_id                uuid        NOT NULL,
    steps                      jsonb       NOT NULL,
    start_date                 date        NOT NULL,
    start_time_of_day          time        NOT NULL,
    timezone                   text        NOT NULL,
    send_in_recipient_timezone boolean     NOT NULL,
    activated_at               timestamptz NOT NULL,
    state                      text        NOT NULL DEFAULT 'active'
                               CHECK (state IN ('active', 'paused', 'completed')),
    scheduled_published        boolean     NOT NULL DEFAULT false
);
CREATE INDEX runs_by_campaign ON runs (campaign_id);

-- The segment.evaluated batches received; the run is fully scheduled once every batch
-- up to the last one is here.
CREATE TABLE evaluated_batches (
    run_id   uuid    NOT NULL,
    batch_no integer NOT NULL,
    is_last  boolean NOT NULL,
    PRIMARY KEY (run_id, batch_no)
);

-- Recipients may arrive before their run (the two topics are not ordered together):
-- they wait here, unplanned, until it does.
CREATE TABLE run_recipients (
    run_id     uuid    NOT NULL,
    contact_id uuid    NOT NULL,
    recipient  jsonb   NOT NULL,
    planned    boolean NOT NULL DEFAULT false,
    PRIMARY KEY (run_id, contact_id)
);
CREATE INDEX run_recipients_unplanned ON run_recipients (run_id) WHERE NOT planned;

-- One row per (run, recipient, SEND_EMAIL step): the durable timer.
CREATE TABLE sends (
    send_id     uuid PRIMARY KEY,
    run_id      uuid        NOT NULL,
    campaign_id uuid        NOT NULL,
    contact_id  uuid        NOT NULL,
    step_index  integer     NOT NULL,
    due_at      timestamptz NOT NULL,
    attempt     integer     NOT NULL DEFAULT 1,
    state       text        NOT NULL DEFAULT 'pending'
                CHECK (state IN ('pending', 'emitted', 'done', 'cancelled')),
    emitted_at  timestamptz
);
CREATE INDEX sends_due ON sends (due_at) WHERE state = 'pending';
CREATE INDEX sends_by_run ON sends (run_id, state);
