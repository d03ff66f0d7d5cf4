-- A run's batches may come twice: redelivered by Kafka (the same event), or published
-- again by a second evaluation after segment-svc crashed mid-run (new events, whose
-- recipients may fall into other batch numbers than the first attempt's when contacts
-- changed in between). Each batch event is kept by its event id: a redelivery adds
-- nothing, a batch published again adds the recipients the run does not hold yet. Rows
-- from before have no event id; they are kept as the nil id.
ALTER TABLE evaluated_batches ADD COLUMN event_id uuid NOT NULL DEFAULT '00000000-0000-0000-0000-000000000000';
ALTER TABLE evaluated_batches ALTER COLUMN event_id DROP DEFAULT;
ALTER TABLE evaluated_batches DROP CONSTRAINT evaluated_batches_pkey;
ALTER TABLE evaluated_batches ADD PRIMARY KEY (run_id, batch_no, event_id);
