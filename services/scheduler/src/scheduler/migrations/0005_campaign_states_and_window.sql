-- Each campaign's state as its newest status said it. campaign.status and
-- campaign.activated travel on different topics and may come late or twice: a state is
-- only ever replaced by one of a higher status sequence, so a pause that arrives before
-- the activation holds. It is kept per campaign, not per run, because it can arrive
-- before the run does.
CREATE TABLE campaign_states (
    campaign_id uuid PRIMARY KEY,
    state       text   NOT NULL CHECK (state IN ('active', 'paused', 'completed')),
    status_seq  bigint NOT NULL DEFAULT 0
);
INSERT INTO campaign_states (campaign_id, state)
SELECT campaign_id, CASE WHEN bool_or(state = 'completed') THEN 'completed'
                         WHEN bool_or(state = 'paused') THEN 'paused' ELSE 'active' END
FROM runs GROUP BY campaign_id;
CREATE INDEX campaign_states_active ON campaign_states (campaign_id) WHERE state = 'active';
ALTER TABLE runs DROP COLUMN state;

-- The due-poller shares a window of emitted, unanswered sends between the runs that have
-- sends due: it reads each run's due sends in due order, and counts each run's sends in
-- flight (also how it finds those whose outcome is overdue).
CREATE INDEX sends_due_by_run ON sends (run_id, due_at) WHERE state = 'pending';
DROP INDEX sends_due;
CREATE INDEX sends_in_flight ON sends (run_id, emitted_at) WHERE state = 'emitted';
