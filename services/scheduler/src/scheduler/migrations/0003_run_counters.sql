-- A run counts its sends as they are stored, instead of counting them through an index
-- that every send paid for on insert.
ALTER TABLE runs ADD COLUMN sends integer NOT NULL DEFAULT 0;
UPDATE runs SET sends = (SELECT count(*) FROM sends WHERE sends.run_id = runs.run_id);
DROP INDEX sends_by_run;
