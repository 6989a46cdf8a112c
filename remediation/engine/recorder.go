package engine

import (
	"context"
	"fmt"
	"log/slog"
	"time"

	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// recorder writes the history of one repair: every row of repairs, repair_steps, circuits and
// futile_repairs a stage changes goes through it, with the matching metric, so the stages in
// repair.go read as what happens and this file as what is kept. The statements on repairs
// and repair_steps are the store's (store.go); the recorder adds the metrics and logs.
//
// Writes of step history use a context of their own: a step's record must land even when the
// repair's context has just been cancelled. A failed step write is logged and the repair goes
// on; the repair's final state is written by finish, which does return errors.
type recorder struct {
	e *Engine
	r repairRow
}

func (e *Engine) recorder(r repairRow) *recorder { return &recorder{e: e, r: r} }

func (rec *recorder) ctx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

func (rec *recorder) logStepErr(what string, pos int, err error) {
	if err != nil {
		rec.e.log.Error(what, "repair", rec.r.ID, "step", pos, "err", err)
	}
}

// waiting notes why a repair that may run later has not run yet.
func (rec *recorder) waiting(ctx context.Context, reason string) error {
	if err := rec.e.repairs.setReason(ctx, rec.r.ID, reason); err != nil {
		return err
	}
	rec.e.log.Warn("repair waits", "repair", rec.r.ID, "reason", reason)
	return nil
}

// skip finishes a repair that did not run.
func (rec *recorder) skip(ctx context.Context, reason, detail string) error {
	if err := rec.e.repairs.skip(ctx, rec.r.ID, reason, detail); err != nil {
		return err
	}
	rec.e.metrics.skip(reason, rec.r.firstStrategy())
	rec.e.log.Info("repair skipped", "repair", rec.r.ID, "reason", reason, "detail", detail)
	return nil
}

// start marks the repair running on this process; false when it was cancelled meanwhile.
func (rec *recorder) start(ctx context.Context, datname, table string) (bool, error) {
	started, err := rec.e.repairs.start(ctx, rec.r.ID, rec.e.o.ID, datname, table)
	if err != nil {
		return false, err
	}
	rec.r.Datname, rec.r.Table = datname, table
	return started, nil
}

// deferred puts a running repair back in the queue after a step said "retry later"; the
// circuit is not touched.
func (rec *recorder) deferred(ctx context.Context, why string) error {
	ctx, cancel := rec.ctx(ctx)
	defer cancel()
	if err := rec.e.repairs.requeue(ctx, rec.r.ID, why); err != nil {
		return err
	}
	rec.e.metrics.deferrals.WithLabelValues(rec.r.firstStrategy()).Inc()
	rec.e.log.Info("repair deferred: a step said retry later", "repair", rec.r.ID, "deferrals", rec.r.Deferrals+1, "why", why)
	return nil
}

// awaitStepApproval stops a running repair at step pos, which needs approval: the repair
// waits as awaiting_approval, without a job, until Approve queues it again.
func (rec *recorder) awaitStepApproval(ctx context.Context, pos int, strat string) error {
	ctx, cancel := rec.ctx(ctx)
	defer cancel()
	if err := rec.e.repairs.awaitStepApproval(ctx, rec.r.ID); err != nil {
		return err
	}
	rec.e.log.Info("repair awaits approval of a step", "repair", rec.r.ID, "step", pos, "strategy", strat)
	return nil
}

// approvedStep is the step a repair goes on with after the approval of a step: the one left
// planned when it stopped (resumed true); 0 for a repair that has not stopped for one.
func (rec *recorder) approvedStep(ctx context.Context) (pos int, resumed bool, err error) {
	p, err := rec.e.repairs.firstPlannedStep(ctx, rec.r.ID)
	if err != nil {
		return 0, false, err
	}
	if p == nil {
		return 0, false, nil
	}
	return *p, true, nil
}

// stepBegins inserts or replaces a step's row with its plan, impact and state.
func (rec *recorder) stepBegins(ctx context.Context, pos int, step PlanStep, state string, impact *strategy.Impact, errMsg string) {
	ctx, cancel := rec.ctx(ctx)
	defer cancel()
	err := rec.e.repairs.beginStep(ctx, rec.r.ID, pos, step, state, impact, errMsg)
	rec.logStepErr("record step", pos, err)
	if state == "dry_run" {
		rec.e.metrics.repairs.WithLabelValues(step.Strategy, "dry_run").Inc()
	} else if state == "failed" {
		rec.e.metrics.repairs.WithLabelValues(step.Strategy, "failed").Inc()
	}
}

// outcome stores what Run did, above all its undo data, before anything else happens, so a
// rollback after a crash finds it.
func (rec *recorder) outcome(ctx context.Context, pos int, out strategy.Outcome) {
	ctx, cancel := rec.ctx(ctx)
	defer cancel()
	err := rec.e.repairs.saveOutcome(ctx, rec.r.ID, pos, out)
	rec.logStepErr("record step outcome", pos, err)
}

// stepEnds records a step's final state and counts it by outcome.
func (rec *recorder) stepEnds(ctx context.Context, pos int, strat, state string, after map[string]float64,
	v *validation.Record, futile bool, errMsg string) {
	ctx, cancel := rec.ctx(ctx)
	defer cancel()
	err := rec.e.repairs.endStep(ctx, rec.r.ID, pos, state, after, v, futile, errMsg)
	rec.logStepErr("record end of step", pos, err)
	switch state {
	case "succeeded":
		rec.e.metrics.repairs.WithLabelValues(strat, "succeeded").Inc()
	case "rolled_back":
		rec.e.metrics.repairs.WithLabelValues(strat, "rolled_back").Inc()
	case "deferred":
	default:
		rec.e.metrics.repairs.WithLabelValues(strat, "failed").Inc()
	}
	if futile {
		rec.e.metrics.futile.WithLabelValues(strat).Inc()
	}
}

// stepError appends msg to a step's error.
func (rec *recorder) stepError(ctx context.Context, pos int, msg string) {
	ctx, cancel := rec.ctx(ctx)
	defer cancel()
	err := rec.e.repairs.appendStepError(ctx, rec.r.ID, pos, msg)
	rec.logStepErr("record step error", pos, err)
}

// finish records how a repair ended, updates its index's circuit and its entry's futile mark.
func (rec *recorder) finish(ctx context.Context, res result) error {
	r := rec.r
	ctx, cancel := rec.ctx(ctx)
	defer cancel()
	tx, err := rec.e.o.State.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record end of repair %d: %w", r.ID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if err := rec.e.repairs.finish(ctx, tx, r.ID, res); err != nil {
		return err
	}
	switch res.outcome {
	case "succeeded":
		_, err = tx.Exec(ctx, `INSERT INTO circuits (target, datname, schemaname, indexrelname, relname, failures)
			VALUES ($1, $2, $3, $4, $5, 0)
			ON CONFLICT (target, datname, schemaname, indexrelname) DO UPDATE SET failures = 0`,
			r.Target, r.Datname, r.Schema, r.Index, r.Table)
		if err == nil {
			_, err = tx.Exec(ctx, `DELETE FROM futile_repairs WHERE target = $1 AND datname = $2 AND schemaname = $3
				AND indexrelname = $4 AND entry = $5`, r.Target, r.Datname, r.Schema, r.Index, r.Entry)
		}
	case "failed", "rolled_back":
		_, err = tx.Exec(ctx, `INSERT INTO circuits AS c (target, datname, schemaname, indexrelname, relname, failures, open, opened_at)
			VALUES ($1, $2, $3, $4, $5, 1, 1 >= $6, CASE WHEN 1 >= $6 THEN now() END)
			ON CONFLICT (target, datname, schemaname, indexrelname) DO UPDATE
			   SET failures = c.failures + 1, relname = EXCLUDED.relname,
			       open = c.open OR c.failures + 1 >= $6,
			       opened_at = CASE WHEN NOT c.open AND c.failures + 1 >= $6 THEN now() ELSE c.opened_at END`,
			r.Target, r.Datname, r.Schema, r.Index, r.Table, rec.e.o.Config.CircuitBreakerFailures)
		if err == nil && res.futile != nil && !r.Plan.Manual {
			_, err = tx.Exec(ctx, `INSERT INTO futile_repairs (target, datname, schemaname, indexrelname, entry, figure, value, repair_id)
				VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
				ON CONFLICT (target, datname, schemaname, indexrelname, entry) DO UPDATE
				   SET figure = EXCLUDED.figure, value = EXCLUDED.value, repair_id = EXCLUDED.repair_id, recorded_at = now()`,
				r.Target, r.Datname, r.Schema, r.Index, r.Entry, res.futile.Figure, res.futile.Value, r.ID)
		}
	}
	if err != nil {
		return fmt.Errorf("update circuit of repair %d: %w", r.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record end of repair %d: %w", r.ID, err)
	}
	rec.e.log.Info("repair finished", "repair", r.ID, "outcome", res.outcome, "reason", res.reason, "err", res.err)
	return nil
}

// futileMark is the entry's futile record on the index, if any.
func (rec *recorder) futileMark(ctx context.Context) (*FutileMark, error) {
	r := rec.r
	var m FutileMark
	err := rec.e.o.State.QueryRow(ctx, `SELECT figure, value, repair_id, recorded_at FROM futile_repairs
		WHERE target = $1 AND ($2 = '' OR datname = $2) AND schemaname = $3 AND indexrelname = $4 AND entry = $5
		ORDER BY recorded_at DESC LIMIT 1`, r.Target, r.Datname, r.Schema, r.Index, r.Entry).
		Scan(&m.Figure, &m.Value, &m.RepairID, &m.RecordedAt)
	if isNoRows(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read futile mark: %w", err)
	}
	m.Target, m.Datname, m.Schema, m.Index, m.Entry = r.Target, r.Datname, r.Schema, r.Index, r.Entry
	return &m, nil
}

// clearFutile removes the entry's futile mark on the index: its figure moved.
func (rec *recorder) clearFutile(ctx context.Context) error {
	r := rec.r
	_, err := rec.e.o.State.Exec(ctx, `DELETE FROM futile_repairs WHERE target = $1 AND ($2 = '' OR datname = $2)
		AND schemaname = $3 AND indexrelname = $4 AND entry = $5`, r.Target, r.Datname, r.Schema, r.Index, r.Entry)
	if err != nil {
		return fmt.Errorf("clear futile mark: %w", err)
	}
	return nil
}

// held notes the rule that holds a queued repair back and when it may run next; the repair
// stays queued and asks again.
func (rec *recorder) held(ctx context.Context, reason, detail string) error {
	if err := rec.e.repairs.hold(ctx, rec.r.ID, reason, detail); err != nil {
		return err
	}
	level := slog.LevelDebug // asked again every lock retry: logged once per rule
	if rec.r.Reason != reason {
		level = slog.LevelInfo
	}
	rec.e.log.Log(ctx, level, "repair held back", "repair", rec.r.ID, "reason", reason, "detail", detail)
	return nil
}
