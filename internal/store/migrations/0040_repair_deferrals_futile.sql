-- A step may end "deferred": its strategy said "not now" (another index build on the table, a
-- lock not had in time). The repair goes back to the queue with a growing delay, counted in
-- repairs.deferrals, and the circuit breaker does not count it.
ALTER TABLE repairs ADD COLUMN deferrals integer NOT NULL DEFAULT 0;
ALTER TABLE repair_steps DROP CONSTRAINT repair_steps_state_check;
ALTER TABLE repair_steps ADD CONSTRAINT repair_steps_state_check CHECK (state IN ('planned', 'running',
    'succeeded', 'failed', 'rolled_back', 'rollback_failed', 'dry_run', 'deferred'));

-- A step whose validation failed with its figure where it was before the step did nothing
-- for the index: futile.
ALTER TABLE repair_steps ADD COLUMN futile boolean NOT NULL DEFAULT false;

-- A runbook entry whose every step on an index was futile is not run again on that index
-- while the figure stays at the value recorded here; a repair of the index by the entry
-- that succeeds, or a figure that moved, removes the row.
CREATE TABLE futile_repairs (
    target        text             NOT NULL,
    datname       text             NOT NULL,
    schemaname    text             NOT NULL,
    indexrelname  text             NOT NULL,
    entry         text             NOT NULL,
    figure        text             NOT NULL,
    value         double precision NOT NULL,
    repair_id     bigint           NOT NULL,
    recorded_at   timestamptz      NOT NULL DEFAULT now(),
    PRIMARY KEY (target, datname, schemaname, indexrelname, entry)
);
