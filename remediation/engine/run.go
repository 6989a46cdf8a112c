package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"time"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// errTimeout is the cause of a repair's context when its runbook timeout passes.
var errTimeout = errors.New("repair timeout")

// result is how a repair ended.
type result struct {
	outcome string // succeeded, failed, rolled_back, dry_run, cancelled
	reason  string
	err     string
}

// stepResult is how one step ended.
type stepResult struct {
	state   string // succeeded, failed, rolled_back, rollback_failed
	err     string
	stopped string // set when the repair must not go on: timeout, cancelled, interrupted
}

// execute runs the plan's steps. A step that succeeds ends the repair unless it says
// on_success: next; a step that fails is rolled back and the next one tried (escalate), or
// rolled back and the repair stopped (rollback), or left as it is and the repair stopped
// (stop). A timeout, a cancel request or a stop of the process rolls the running step back
// and ends the repair.
func (e *Engine) execute(ctx context.Context, r repairRow, ix catalog.Index, env strategy.Env) result {
	timeout := r.Plan.Timeout
	if timeout <= 0 {
		timeout = e.o.Config.DefaultTimeout
	}
	runCtx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	if r.Plan.DryRun {
		for i, step := range r.Plan.Steps {
			e.planOnly(runCtx, r, i, step, ix, env)
		}
		return result{outcome: "dry_run"}
	}
	var last stepResult
	for i, step := range r.Plan.Steps {
		last = e.runStep(ctx, runCtx, r, i, step, ix, env)
		if last.state == "succeeded" {
			if step.OnSuccess == runbook.OnSuccessNext && i < len(r.Plan.Steps)-1 {
				continue
			}
			return result{outcome: "succeeded"}
		}
		switch {
		case last.stopped == "cancelled":
			return result{outcome: "cancelled", reason: "cancelled", err: last.err}
		case last.stopped != "":
			return result{outcome: outcomeOf(last), reason: last.stopped, err: last.err}
		case step.OnFailure == runbook.OnFailureStop:
			return result{outcome: "failed", reason: "step_failed", err: last.err}
		case step.OnFailure == runbook.OnFailureRollback:
			return result{outcome: outcomeOf(last), reason: "step_failed", err: last.err}
		}
	}
	return result{outcome: outcomeOf(last), reason: "all_steps_failed", err: last.err}
}

// outcomeOf is the repair outcome after a failed step: rolled_back when its rollback worked.
func outcomeOf(s stepResult) string {
	if s.state == "rolled_back" {
		return "rolled_back"
	}
	return "failed"
}

// planOnly records a step's impact estimate for a dry run.
func (e *Engine) planOnly(ctx context.Context, r repairRow, pos int, step PlanStep, ix catalog.Index, env strategy.Env) {
	strat, ok := e.o.Strategies.Get(step.Strategy)
	if !ok {
		e.recordStep(ctx, r.ID, pos, step, "failed", nil, fmt.Sprintf("unknown strategy %q", step.Strategy))
		return
	}
	impact, err := strat.Plan(ctx, env, ix, step.Params)
	if est := e.historyEstimate(ctx, r, step.Strategy); est > 0 {
		impact.EstimatedDuration = est
	}
	msg := ""
	if err != nil {
		msg = "plan: " + err.Error()
	}
	e.recordStep(ctx, r.ID, pos, step, "dry_run", &impact, msg)
	e.metrics.repairs.WithLabelValues(step.Strategy, "dry_run").Inc()
	e.log.Info("dry run: step planned, nothing run", "repair", r.ID, "step", pos, "statements", impact.Statements)
}

// runStep plans, runs, validates and if need be rolls back one step. ctx is the job's
// context (cancelled on shutdown or by a cancel request), runCtx adds the repair's timeout.
func (e *Engine) runStep(ctx, runCtx context.Context, r repairRow, pos int, step PlanStep, ix catalog.Index, env strategy.Env) stepResult {
	log := e.log.With("repair", r.ID, "step", pos, "strategy", step.Strategy)
	strat, ok := e.o.Strategies.Get(step.Strategy)
	if !ok {
		msg := fmt.Sprintf("unknown strategy %q", step.Strategy)
		e.recordStep(ctx, r.ID, pos, step, "failed", nil, msg)
		e.metrics.repairs.WithLabelValues(step.Strategy, "failed").Inc()
		return stepResult{state: "failed", err: msg}
	}
	impact, err := strat.Plan(runCtx, env, ix, step.Params)
	if est := e.historyEstimate(ctx, r, step.Strategy); est > 0 {
		impact.EstimatedDuration = est
	}
	if err != nil {
		msg := "plan: " + err.Error()
		e.recordStep(ctx, r.ID, pos, step, "failed", &impact, msg)
		e.metrics.repairs.WithLabelValues(step.Strategy, "failed").Inc()
		return stepResult{state: "failed", err: msg, stopped: stopCause(ctx, runCtx, e, r)}
	}
	e.recordStep(ctx, r.ID, pos, step, "running", &impact, "")
	before := map[string]float64{}
	if step.Validate != nil {
		if v, err := e.o.Measurer.Measure(runCtx, env.Pool, ix, step.Validate.Figure); err == nil {
			before[step.Validate.Figure] = v
		}
	}
	started := time.Now()
	out, runErr := strat.Run(runCtx, env, ix, step.Params)
	maps.Copy(before, out.Before)
	out.Before = before
	e.saveOutcome(ctx, r.ID, pos, out)

	var failure string
	var validation *validationRecord
	if runErr != nil {
		failure = "run: " + runErr.Error()
	} else if step.Validate != nil {
		validation = e.validate(runCtx, env, ix, *step.Validate)
		if !validation.Passed {
			failure = validation.Error
			if failure == "" && validation.Measured != nil {
				failure = fmt.Sprintf("validation: %s = %g does not meet %s %g after %d tries", step.Validate.Figure,
					*validation.Measured, step.Validate.Op, step.Validate.Value, validation.Tries)
			}
		}
		if validation.Measured != nil {
			if out.After == nil {
				out.After = map[string]float64{}
			}
			out.After[step.Validate.Figure] = *validation.Measured
		}
	}
	e.metrics.duration.WithLabelValues(step.Strategy).Observe(time.Since(started).Seconds())
	if failure == "" {
		e.endStep(ctx, r.ID, pos, "succeeded", out.After, validation, "")
		e.metrics.repairs.WithLabelValues(step.Strategy, "succeeded").Inc()
		log.Info("step succeeded")
		return stepResult{state: "succeeded"}
	}
	stopped := stopCause(ctx, runCtx, e, r)
	state := "failed"
	if step.OnFailure == runbook.OnFailureStop && stopped == "" {
		log.Warn("step failed, kept as it is (on_failure: stop)", "err", failure)
	} else {
		log.Warn("step failed, rolling back", "err", failure, "stopped", stopped)
		state = e.rollback(ctx, r, pos, strat, step, ix, env, out.Undo)
	}
	e.endStep(ctx, r.ID, pos, state, out.After, validation, failure)
	outcome := "rolled_back"
	if state != "rolled_back" {
		outcome = "failed"
	}
	e.metrics.repairs.WithLabelValues(step.Strategy, outcome).Inc()
	return stepResult{state: state, err: failure, stopped: stopped}
}

// stopCause tells why the contexts ended, if they did: the repair's timeout, a cancel
// request through the API, or the process stopping.
func stopCause(ctx, runCtx context.Context, e *Engine, r repairRow) string {
	if runCtx.Err() == nil {
		return ""
	}
	if ctx.Err() == nil && errors.Is(context.Cause(runCtx), errTimeout) {
		return "timeout"
	}
	var by string
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	_ = e.o.State.QueryRow(dctx, `SELECT cancel_requested_by FROM repairs WHERE id = $1`, r.ID).Scan(&by)
	if by != "" {
		return "cancelled"
	}
	return "interrupted"
}

// rollback undoes a step with a context of its own, so a timeout or a stop of the repair
// does not stop the rollback too. It returns the step's new state.
func (e *Engine) rollback(ctx context.Context, r repairRow, pos int, strat strategy.Strategy, step PlanStep,
	ix catalog.Index, env strategy.Env, undo json.RawMessage) string {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.RollbackTimeout)
	defer cancel()
	e.metrics.rollbacks.WithLabelValues(step.Strategy).Inc()
	if err := strat.Rollback(rctx, env, ix, step.Params, undo); err != nil {
		e.log.Error("rollback failed", "repair", r.ID, "step", pos, "strategy", step.Strategy, "err", err)
		e.appendStepError(rctx, r.ID, pos, "rollback: "+err.Error())
		return "rollback_failed"
	}
	return "rolled_back"
}

// validationRecord is what validation measured, kept in repair_steps.validation.
type validationRecord struct {
	Validation
	Measured *float64 `json:"measured,omitempty"`
	Tries    int      `json:"tries"`
	Passed   bool     `json:"passed"`
	Error    string   `json:"error,omitempty"`
}

// validate re-measures the figure after the step, up to Attempts times Wait apart, and
// passes on the first value within bounds. The index is looked up again first: a rebuild
// gives it a new relfilenode, and REINDEX CONCURRENTLY even a new OID.
func (e *Engine) validate(ctx context.Context, env strategy.Env, ix catalog.Index, v Validation) *validationRecord {
	rec := &validationRecord{Validation: v}
	attempts := max(v.Attempts, 1)
	for rec.Tries < attempts {
		wait := v.Wait
		if wait > 0 {
			select {
			case <-ctx.Done():
				rec.Error = "validation: " + context.Cause(ctx).Error()
				return rec
			case <-time.After(wait):
			}
		}
		rec.Tries++
		if fresh, err := catalog.Resolve(ctx, env.Pool, ix.Schema, ix.Name); err == nil {
			ix = fresh
		}
		got, err := e.o.Measurer.Measure(ctx, env.Pool, ix, v.Figure)
		if err != nil {
			rec.Error = fmt.Sprintf("validation: measure %s: %v", v.Figure, err)
			if ctx.Err() != nil {
				return rec
			}
			continue
		}
		rec.Measured, rec.Error = &got, ""
		ok, err := v.check(got)
		if err != nil {
			rec.Error = err.Error()
			return rec
		}
		if ok {
			rec.Passed = true
			return rec
		}
	}
	return rec
}

// finish records how a repair ended and updates its index's circuit.
func (e *Engine) finish(ctx context.Context, r repairRow, res result) error {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	tx, err := e.o.State.Begin(ctx)
	if err != nil {
		return fmt.Errorf("record end of repair %d: %w", r.ID, err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	if _, err := tx.Exec(ctx, `UPDATE repairs SET state = $2, reason = $3, error = $4, finished_at = now() WHERE id = $1`,
		r.ID, res.outcome, res.reason, res.err); err != nil {
		return fmt.Errorf("record end of repair %d: %w", r.ID, err)
	}
	switch res.outcome {
	case "succeeded":
		_, err = tx.Exec(ctx, `INSERT INTO circuits (target, datname, schemaname, indexrelname, relname, failures)
			VALUES ($1, $2, $3, $4, $5, 0)
			ON CONFLICT (target, datname, schemaname, indexrelname) DO UPDATE SET failures = 0`,
			r.Target, r.Datname, r.Schema, r.Index, r.Table)
	case "failed", "rolled_back":
		_, err = tx.Exec(ctx, `INSERT INTO circuits AS c (target, datname, schemaname, indexrelname, relname, failures, open, opened_at)
			VALUES ($1, $2, $3, $4, $5, 1, 1 >= $6, CASE WHEN 1 >= $6 THEN now() END)
			ON CONFLICT (target, datname, schemaname, indexrelname) DO UPDATE
			   SET failures = c.failures + 1, relname = EXCLUDED.relname,
			       open = c.open OR c.failures + 1 >= $6,
			       opened_at = CASE WHEN NOT c.open AND c.failures + 1 >= $6 THEN now() ELSE c.opened_at END`,
			r.Target, r.Datname, r.Schema, r.Index, r.Table, e.o.Config.CircuitBreakerFailures)
	}
	if err != nil {
		return fmt.Errorf("update circuit of repair %d: %w", r.ID, err)
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("record end of repair %d: %w", r.ID, err)
	}
	e.log.Info("repair finished", "repair", r.ID, "outcome", res.outcome, "reason", res.reason, "err", res.err)
	return nil
}

// recoverRepair finishes a repair whose worker died while it ran: a step that had succeeded
// makes it succeeded; a step caught running is rolled back with the undo data saved after Run
// (none if it died inside Run, and the strategy's rollback then cleans up what a Run cut
// short leaves, such as an INVALID *_ccnew index).
func (e *Engine) recoverRepair(ctx context.Context, r repairRow) error {
	e.log.Warn("recovering repair interrupted by a stopped process", "repair", r.ID)
	steps, err := e.steps(ctx, r.ID)
	if err != nil {
		return err
	}
	for _, s := range steps {
		if s.State == "succeeded" {
			return e.finish(ctx, r, result{outcome: "succeeded", reason: "recovered"})
		}
	}
	ix, env, reason, detail, err := e.resolve(ctx, r)
	if err != nil {
		return err // target down: River retries later
	}
	if reason != "" {
		return e.finish(ctx, r, result{outcome: "failed", reason: "interrupted", err: "cannot roll back: " + detail})
	}
	res := result{outcome: "rolled_back", reason: "interrupted", err: "the process running the repair stopped"}
	for _, s := range steps {
		if s.State != "running" {
			continue
		}
		strat, ok := e.o.Strategies.Get(s.Strategy)
		if !ok {
			res.outcome = "failed"
			continue
		}
		step := PlanStep{Strategy: s.Strategy, Params: s.Params}
		state := e.rollback(ctx, r, s.Position, strat, step, ix, env, s.Undo)
		e.endStep(ctx, r.ID, s.Position, state, nil, nil, "interrupted")
		outcome := "rolled_back"
		if state != "rolled_back" {
			res.outcome, outcome = "failed", "failed"
		}
		e.metrics.repairs.WithLabelValues(s.Strategy, outcome).Inc()
	}
	return e.finish(ctx, r, res)
}

// recoverOrphans recovers, at start, repairs left running by a process that is gone: a
// running repair whose index lock is free has no live worker.
func (e *Engine) recoverOrphans(ctx context.Context) error {
	rows, err := e.o.State.Query(ctx, `SELECT id FROM repairs WHERE state = 'running' ORDER BY id`)
	if err != nil {
		return fmt.Errorf("find interrupted repairs: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return fmt.Errorf("find interrupted repairs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("find interrupted repairs: %w", err)
	}
	for _, id := range ids {
		if err := e.recoverOne(ctx, id); err != nil {
			// A target that is down now is tried again on the next round.
			e.log.Warn("recover interrupted repair", "repair", id, "err", err)
		}
	}
	return nil
}

func (e *Engine) recoverOne(ctx context.Context, id int64) error {
	r, err := e.load(ctx, e.o.State, id)
	if err != nil {
		return err
	}
	lock, ok, err := e.lockIndex(ctx, r)
	if err != nil || !ok {
		return err // !ok: a live worker runs it
	}
	defer lock.release(ctx)
	if r, err = e.load(ctx, e.o.State, id); err != nil || r.State != "running" {
		return err
	}
	return e.recoverRepair(ctx, r)
}
