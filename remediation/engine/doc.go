// Package engine runs the repairs a runbook maps alerts to.
//
// # Queue
//
// Hook (a webhook.Hook) runs in the transaction that records a notification: for each new
// firing alert it copies every matching runbook entry into a repairs row (the plan, so a
// runbook reload never changes a waiting repair) and inserts a River job of kind "repair" with
// InsertTx, so an accepted alert and its repair are durable together. The same alert
// (fingerprint, startsAt) and entry make one repair however often Alertmanager sends it. A
// resolved alert cancels its repairs that have not started, but for one a person approved. Entries that need approval wait
// as awaiting_approval, without a job, until Approve queues them. River priorities 1-4 come
// from the seed's 0-100 priority score (entry priority, else the alert's severity); each
// process runs at most remediation.max_concurrent_repairs at once.
//
// # One repair per index
//
// A worker takes a session advisory lock (pg_try_advisory_lock on a hash of target, schema and
// index) on a connection of the state store that it holds for the whole repair. A row lock
// would need a transaction open for hours and would not tell a live holder from a dead one;
// the advisory lock ends with its session, so when a process dies PostgreSQL drops the lock,
// and "repair is running but its lock is free" means "its worker is gone". A busy index makes
// the job wait (a River snooze, which does not count as an attempt).
//
// # Checks right before a repair
//
// First the maintenance budget of the index (budget.go, one pure function over its recent
// repairs that the API, the CLI and the metrics ask too): circuit breaker (K failed repairs in
// a row stop auto-healing of the index until ResetCircuit), maintenance window, running limit
// per target, cooldown of the entry on the index (a floor), backoff after repairs that did not
// help, the share of wall time repairs of the index took, flap guard (at most N repairs of the
// index per window). A repair held back stays queued with the rule and its next chance
// recorded, and asks again, or is skipped when that chance is beyond the budget window or the
// circuit is open. Then the alert resolved in the state store, then Alertmanager's v2 API: the alert
// must still be there and active, neither silenced nor inhibited. When Alertmanager is
// configured but does not answer, the repair does not run: it waits (reason
// alertmanager_unreachable) and asks again every LockRetry, and is skipped for that reason
// after an hour. Running on a silence that could not be read would defeat pausing. Then the
// labels are resolved through the catalog, as data: any name PostgreSQL accepts (a schema
// "My Schema") is repaired, and statements use the catalog's names, quoted. Labels naming no
// vector index of the target (hostile text included) skip the repair as index_not_found with
// the values in the record; an unknown target, an excluded index or a datname that is not the
// target's database skip it too, and nothing runs. A partitioned table's index (no storage;
// REINDEX or VACUUM of it would act on every partition at once) is skipped as
// partitioned_index, naming its partitions' indexes, which are alerted on and repaired one at
// a time; a manual repair of it is refused. Then an entry known to be futile on the
// index (its last repair there moved no figure) is skipped as futile while the figure stays
// where it was. Last, the first step's validation figure is measured: an index that already
// meets it (another alert's repair healed it meanwhile) is skipped as already_healthy. Manual
// repairs (Trigger) were asked for by a person and skip the alert, budget (cooldown, backoff,
// flap, circuit), futile and already-healthy checks; their time counts in the budget.
//
// # Steps
//
// Each step's impact is estimated (Strategy.Plan, the expected duration replaced by the mean of
// the strategy's last successful runs) and recorded; the step row is marked running before
// Run and its Undo data saved right after, then the validation figure is re-measured in the
// database (Measurer) up to Attempts times, Wait apart. A failed step is rolled back and the
// next one tried, or the repair stops, as the entry's on_failure says. A step whose strategy
// says "retry later" (strategy.RetryLater: another index build on the table, a lock not had
// in time) is recorded as deferred and the repair goes back to the queue with a delay that
// doubles per deferral (LockRetry up to 10m); it is not a failure and the circuit breaker
// does not count it, until it has waited an hour. A step whose validation fails with its
// figure where it was before is marked futile; when every step of a repair was futile, the
// entry is not run on that index again until the figure moves. The repair's timeout
// cancels the running statement (the context reaches pgx, which cancels the query in
// PostgreSQL) and rolls the step back. Dry runs record the plans and run nothing.
//
// # Crash safety
//
// A repair whose process died stays "running" with its lock free. Every engine with workers
// looks for such repairs at start and every RecoverInterval; it takes the lock, rolls the
// running step back with the saved Undo (none if the process died inside Run: the strategy's
// rollback cleans up what a cut-short Run leaves) and records the repair as rolled_back with
// reason interrupted. River's rescuer later retries the dead job, which finds the repair
// finished. An engine stopped hard (StopAndCancel) rolls its running steps back itself.
//
// # History
//
// repairs and repair_steps hold the alert, entry, plan, steps, SQL run, figures before and
// after, validation, impact, timings, outcome and who approved or cancelled; Prune (hourly)
// deletes them after remediation.history_retention.
//
// Every statement on the repairs and repair_steps tables, those that join them included, is
// a method of repairStore (store.go), which runs it on the state pool or in the caller's
// transaction; the recorder, the intake, the API's reads, the budget and the metrics call it
// and keep their own metrics and logs.
package engine
