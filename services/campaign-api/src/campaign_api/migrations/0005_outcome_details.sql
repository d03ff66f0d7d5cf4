-- What email.status says of each send besides its status, for the report's list of
-- recipients: the contact, and the SMTP server's answer. Older rows have none.
ALTER TABLE send_outcomes ADD COLUMN contact_id uuid, ADD COLUMN smtp_code integer, ADD COLUMN smtp_message text;
-- The recipients of a campaign in a stable order (pages), and its sends over time (activity).
CREATE INDEX send_outcomes_by_campaign_order ON send_outcomes (campaign_id, updated_at, send_id);
CREATE INDEX engagements_by_campaign ON engagements (campaign_id, at);
