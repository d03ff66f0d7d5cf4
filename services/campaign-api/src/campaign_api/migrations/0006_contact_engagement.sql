-- A contact's profile (GET /api/contacts/{id}/engagement): its sends' outcomes and its
-- latest engagements, read by contact rather than by campaign.
CREATE INDEX send_outcomes_by_contact ON send_outcomes (contact_id);
CREATE INDEX engagements_by_contact ON engagements (contact_id, at);
