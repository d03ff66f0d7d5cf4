-- Counts a campaign's status changes (its draft is 1); each campaign.status carries it, so
-- that consumers keep the newest state whatever order the events reach them in.
ALTER TABLE campaigns ADD COLUMN status_seq integer NOT NULL DEFAULT 1;
UPDATE campaigns c SET status_seq = (SELECT count(*) FROM status_history h WHERE h.campaign_id = c.id);

-- Sends held while their campaign was paused (due again on resume), and sends the mailer
-- cancelled because their campaign was completed.
ALTER TABLE step_stats ADD COLUMN held bigint NOT NULL DEFAULT 0, ADD COLUMN cancelled bigint NOT NULL DEFAULT 0;
