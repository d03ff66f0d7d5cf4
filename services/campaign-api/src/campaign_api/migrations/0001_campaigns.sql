CREATE TABLE campaigns (
    id                         uuid PRIMARY KEY,
    name                       text        NOT NULL,
    description                text        NOT NULL DEFAULT '',
    segment_id                 uuid        NOT NULL,
    flow_id                    uuid,
    content                    jsonb,
    start_date                 date        NOT NULL,
    start_time_of_day          time        NOT NULL,
    timezone                   text        NOT NULL,
    send_in_recipient_timezone boolean     NOT NULL DEFAULT false,
    status                     text        NOT NULL DEFAULT 'draft'
                               CHECK (status IN ('draft', 'active', 'paused', 'completed')),
    warnings                   jsonb       NOT NULL DEFAULT '[]',
    run_id                     uuid,
    created_at                 timestamptz NOT NULL DEFAULT now(),
    updated_at                 timestamptz NOT NULL DEFAULT now(),
    activated_at               timestamptz,
    completed_at               timestamptz
);
CREATE INDEX campaigns_by_creation ON campaigns (created_at, id);
CREATE INDEX campaigns_by_status ON campaigns (status, created_at, id);

CREATE TABLE status_history (
    id          bigserial PRIMARY KEY,
    campaign_id uuid        NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    previous    text,
    status      text        NOT NULL,
    at          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX status_history_by_campaign ON status_history (campaign_id, id);

-- A run's progress: how many sends campaign.scheduled announced, and how many of them
-- reached a terminal status. The run completes when the two meet.
CREATE TABLE runs (
    run_id         uuid PRIMARY KEY,
    campaign_id    uuid    NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    recipients     integer,
    expected_sends integer,
    terminal_sends integer NOT NULL DEFAULT 0
);

-- The latest status of every send; a redelivered email.status changes nothing.
CREATE TABLE send_outcomes (
    send_id     uuid PRIMARY KEY,
    run_id      uuid        NOT NULL,
    campaign_id uuid        NOT NULL,
    step_index  integer     NOT NULL,
    status      text        NOT NULL,
    attempt     integer     NOT NULL,
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX send_outcomes_by_campaign ON send_outcomes (campaign_id, status);
