-- The due-poller's claim walks sends_due in due order only when the planner knows how
-- many sends are due; a bulk load leaves the statistics stale, and the claim turns into a
-- scan and sort of every due send. Analyse these tables after 1% of them changed.
ALTER TABLE sends SET (autovacuum_analyze_scale_factor = 0.01, autovacuum_vacuum_scale_factor = 0.02);
ALTER TABLE run_recipients SET (autovacuum_analyze_scale_factor = 0.01);
