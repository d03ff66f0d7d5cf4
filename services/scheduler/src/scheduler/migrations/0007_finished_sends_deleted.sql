-- A finished send's row is deleted now (adapters/postgres.Sends.finish), no longer kept
-- as `done`: those kept before go too. 'done' stays allowed by the CHECK, for a scheduler
-- of the previous version running beside this one during a rollout.
DELETE FROM sends WHERE state = 'done';
