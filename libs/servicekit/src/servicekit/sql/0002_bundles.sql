-- A row may carry a bundle of messages of one topic (`messages`: see servicekit.outbox),
-- written by bulk work (contact imports) that would otherwise write a row per message.
ALTER TABLE outbox ADD COLUMN messages bytea;
