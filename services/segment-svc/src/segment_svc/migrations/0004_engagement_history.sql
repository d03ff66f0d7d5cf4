-- Each contact's opens and clicks by hour of the week in the contact's own local time
-- (0 = Monday 00:00-00:59): what send-time suggestions learn from.
CREATE TABLE engagement_hours (
    contact_id   uuid     NOT NULL REFERENCES contacts (id) ON DELETE CASCADE,
    hour_of_week smallint NOT NULL CHECK (hour_of_week BETWEEN 0 AND 167),
    events       integer  NOT NULL,
    PRIMARY KEY (contact_id, hour_of_week)
);

-- A send's open or click counts once, however often its event is delivered.
CREATE TABLE engagements_counted (
    send_id uuid NOT NULL,
    kind    text NOT NULL,
    PRIMARY KEY (send_id, kind)
);
