-- The recipient is kept as the JSON text the contract validated when it arrived, and is
-- only ever read back whole into send.due: PostgreSQL need not parse it into jsonb.
ALTER TABLE run_recipients ALTER COLUMN recipient TYPE text USING recipient::text;
