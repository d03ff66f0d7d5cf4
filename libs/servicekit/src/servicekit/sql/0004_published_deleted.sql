-- The relay deletes a row once its messages are on Kafka (which keeps them): published
-- rows, bundles of a million-contact import among them, had only grown the table.
DELETE FROM outbox WHERE published_at IS NOT NULL;
DROP INDEX outbox_unpublished;
ALTER TABLE outbox DROP COLUMN published_at;
