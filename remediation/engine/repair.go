package engine

import (
	"context"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/riverqueue/river"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// This file is the life of one repair, top to bottom: load → lock → prechecks → resolve →
// bind the steps → already healthy or known futile → start → each step (impact, run,
// validate, escalate or roll back; or defer when it says "retry later"; or wait for approval
// when the step needs it) → finish. Each stage
// is a method below, in that order; what is written to the state store is written by the
// recorder (recorder.go) the stages call.

// giveUpAfter is how long a repair waits for Alertmanager, its target or a busy table before
// it is given up (skipped, or its step failed).
const giveUpAfter = time.Hour

// maxDeferDelay caps the growing delay between two tries of a deferred repair.
const maxDeferDelay = 10 * time.Minute

// errTimeout is the cause of a repair's context when its runbook timeout passes.
var errTimeout = errors.New("repair timeout")

// result is how a repair ended.
type result struct {
	outcome string // succeeded, failed, rolled_back, dry_run, cancelled; deferred: back to the queue; awaiting_approval: a step needs it
	reason  string
	// pausedAt is the step that waits for approval (outcome awaiting_approval).
	pausedAt int
	err      string
	// futile is set when every step that ran left its figure where it was: the entry is not
	// run again on the index until the figure moves.
	futile *futileFigure
}

type futileFigure struct {
	Figure string
	Value  float64
}

// stepResult is how one step ended.
type stepResult struct {
	state   string // succeeded, failed, rolled_back, rollback_failed, deferred
	err     string
	stopped string // set when the repair must not go on: timeout, cancelled, interrupted
	futile  *futileFigure
}

// work runs repair id once River hands its job to this process.
func (e *Engine) work(ctx context.Context, id int64) error {
	// Load, then lock the index: one repair per index at a time, over all replicas.
	r, err := e.repairs.load(ctx, id)
	if errors.Is(err, errNoRepair) {
		return nil // pruned
	}
	if err != nil {
		return err
	}
	if r.terminal() || r.State == "awaiting_approval" {
		return nil
	}
	lock, ok, err := e.lockIndex(ctx, r)
	if err != nil {
		return err
	}
	if !ok {
		e.log.Debug("index busy, repair waits", "repair", r.ID, "index", r.Schema+"."+r.Index)
		return river.JobSnooze(e.o.LockRetry)
	}
	defer lock.release(ctx)
	// Another worker may have finished or started it between our read and the lock.
	if r, err = e.repairs.load(ctx, id); err != nil {
		return err
	}
	switch r.State {
	case "running":
		return e.recoverRepair(ctx, r) // its worker died: whoever ran it held this lock
	case "queued":
	default:
		return nil
	}
	rec := e.recorder(r)

	if !r.Plan.Manual {
		if done, err := e.mayNotRunNow(ctx, rec); done {
			return err
		}
	}

	// Resolve the labels to an index through the catalog of the target.
	ix, env, reason, detail, err := e.resolve(ctx, r)
	if err != nil {
		if time.Since(r.CreatedAt) < giveUpAfter {
			e.log.Warn("target not reachable, repair waits", "repair", r.ID, "err", err)
			return river.JobSnooze(e.o.LockRetry)
		}
		return rec.skip(ctx, "target_unreachable", err.Error())
	}
	if reason != "" {
		return rec.skip(ctx, reason, detail)
	}

	// Bind the plan's steps to their strategies.
	steps, err := bind(e.o.Strategies, r.Plan)
	if err != nil {
		return rec.skip(ctx, "plan_invalid", err.Error())
	}

	// Nothing to do: the index is healthy already, or the entry was futile on it and its
	// figure has not moved since.
	if detail, skip, err := e.knownFutile(ctx, rec, ix, env); err != nil {
		return err
	} else if skip {
		return rec.skip(ctx, "futile", detail)
	}
	detail, healthy, reading := e.alreadyHealthy(ctx, r, steps, ix, env)
	if healthy {
		return rec.skip(ctx, "already_healthy", detail)
	}
	env.Before = reading // the first step reads only what this reading lacks
	return e.run(ctx, rec, steps, ix, env)
}

// mayNotRunNow answers the prechecks of an automatic repair: may it run now? The budget first
// (budget.go), then the alert. done is true when the repair does not run now: it was skipped,
// is snoozed to wait, or err says why it could not be decided.
func (e *Engine) mayNotRunNow(ctx context.Context, rec *recorder) (done bool, err error) {
	if done, err := e.budgetHold(ctx, rec); done {
		return true, err
	}
	r := rec.r
	reason, retry, err := e.precheck(ctx, r)
	if err != nil {
		return true, err
	}
	if retry && time.Since(r.CreatedAt) < giveUpAfter {
		if err := rec.waiting(ctx, reason); err != nil {
			return true, err
		}
		return true, river.JobSnooze(e.o.LockRetry)
	}
	if reason != "" {
		return true, rec.skip(ctx, reason, "")
	}
	return false, nil
}

// run starts the repair, runs its steps and records how it ended: finished, back in the queue
// (deferred), or waiting for the approval of a step.
func (e *Engine) run(ctx context.Context, rec *recorder, steps []strategy.Step, ix catalog.Index, env strategy.Env) error {
	if ok, err := rec.start(ctx, ix.Datname, ix.Table); err != nil || !ok {
		return err // !ok: cancelled meanwhile
	}
	r := rec.r
	e.metrics.active.Inc()
	defer e.metrics.active.Dec()
	e.log.Info("repair started", "repair", r.ID, "entry", r.Entry, "target", r.Target, "index", ix.String(), "dry_run", r.Plan.DryRun)
	res := e.execute(ctx, rec, steps, ix, env)
	if res.outcome == "awaiting_approval" {
		return rec.awaitStepApproval(ctx, res.pausedAt, r.Plan.Steps[res.pausedAt].Strategy)
	}
	if res.outcome == "deferred" {
		if err := rec.deferred(ctx, res.err); err != nil {
			return err
		}
		return river.JobSnooze(deferDelay(e.o.LockRetry, r.Deferrals, maxDeferDelay))
	}
	return rec.finish(ctx, res)
}

// precheck decides whether an automatic repair the budget lets run (budgetHold: circuit,
// window, cooldown, backoff, budget, flap guard) may run now. retry means the answer is not
// known yet (Alertmanager down): the repair waits and asks again, so nothing runs on a
// silence that could not be read. A repair a person approved runs though its alert has
// resolved since (a figure near its threshold flaps; the approval stands, and the check that
// the index is already healthy still skips it when it is); a silence still holds it.
func (e *Engine) precheck(ctx context.Context, r repairRow) (reason string, retry bool, err error) {
	if r.Fingerprint == "" {
		return "", false, nil
	}
	approved := r.ApprovedBy != ""
	var resolved bool
	err = e.o.State.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alerts
		WHERE fingerprint = $1 AND starts_at = $2 AND status = 'resolved')`, r.Fingerprint, r.StartsAt).Scan(&resolved)
	if err != nil {
		return "", false, fmt.Errorf("read alert state: %w", err)
	}
	if resolved && !approved {
		return "resolved", false, nil
	}
	if e.o.Alertmanager == nil {
		return "", false, nil
	}
	st, err := e.o.Alertmanager.Alert(ctx, r.Labels, r.Fingerprint)
	if err != nil {
		e.log.Warn("alertmanager unreachable", "repair", r.ID, "err", err)
		return "alertmanager_unreachable", true, nil
	}
	switch {
	case !st.Firing(time.Now()) && !approved:
		return "resolved", false, nil
	case len(st.SilencedBy) > 0:
		return "silenced", false, nil
	case len(st.InhibitedBy) > 0:
		return "inhibited", false, nil
	}
	return "", false, nil
}

// resolve turns the repair's labels into a catalog index on its target. A reason means the
// labels name nothing to repair; an error means the target did not answer.
//
// Any name PostgreSQL accepts can be repaired: label values are only ever looked up in the
// catalog as data (bound parameters) and statements are built from the catalog's own names,
// quoted. Hostile label text is refused because it names no catalog object, and the skip
// records the value that named nothing.
func (e *Engine) resolve(ctx context.Context, r repairRow) (catalog.Index, strategy.Env, string, string, error) {
	for _, f := range []struct{ name, v string }{
		{"target", r.Target}, {"schemaname", r.Schema}, {"indexrelname", r.Index}, {"datname", r.Datname},
	} {
		if problem := nameProblem(f.v); problem != "" {
			return catalog.Index{}, strategy.Env{}, "index_not_found", fmt.Sprintf("label %s=%q %s", f.name, f.v, problem), nil
		}
	}
	t, ok := e.o.Targets.Get(r.Target)
	if !ok {
		return catalog.Index{}, strategy.Env{}, "unknown_target", fmt.Sprintf("no target named %q", r.Target), nil
	}
	if !t.Watches(r.Schema, r.Index) {
		return catalog.Index{}, strategy.Env{}, "excluded", fmt.Sprintf("%q.%q is excluded by target %q", r.Schema, r.Index, r.Target), nil
	}
	ix, err := catalog.Resolve(ctx, t.Pool, r.Schema, r.Index)
	if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrNotVector) {
		return catalog.Index{}, strategy.Env{}, "index_not_found",
			fmt.Sprintf("labels schemaname=%q indexrelname=%q name no vector index of target %q: %v", r.Schema, r.Index, r.Target, err), nil
	}
	if err != nil {
		return catalog.Index{}, strategy.Env{}, "", "", err
	}
	if r.Datname != "" && ix.Datname != r.Datname {
		return catalog.Index{}, strategy.Env{}, "index_not_found",
			fmt.Sprintf("target %q is database %q, the alert names %q", r.Target, ix.Datname, r.Datname), nil
	}
	if ix.Partitioned {
		detail, err := partitionedRefusal(ctx, t.Pool, ix)
		return catalog.Index{}, strategy.Env{}, "partitioned_index", detail, err
	}
	env := strategy.Env{Target: r.Target, Pool: t.Pool, Measure: e.o.Measurer, Labels: r.Labels,
		Logger:    e.log.With("repair", r.ID, "index", ix.String()),
		Resources: resources(r.Target, t.Builds, e.http),
		History:   indexHistory{repairs: e.repairs, target: r.Target, schema: r.Schema, index: r.Index}}
	return ix, env, "", "", nil
}

// partitionedRefusal says why a repair of a partitioned table's index is refused: it has no
// storage, and every statement on it (REINDEX, VACUUM of its table) would act on every partition
// at once. Repairs act on one partition's index at a time, each alerted on by its own name.
func partitionedRefusal(ctx context.Context, pool catalog.Querier, ix catalog.Index) (string, error) {
	parts, err := catalog.Partitions(ctx, pool, ix)
	if err != nil {
		return "", err
	}
	names := make([]string, len(parts))
	for i, p := range parts {
		names[i] = p.String()
	}
	return fmt.Sprintf("%s is the index of partitioned table %s.%s: it has no storage of its own, and a repair of it would act on every partition at once; repairs act on one partition's index at a time (%d: %s)",
		ix, ix.Schema, ix.Table, len(parts), strings.Join(names, ", ")), nil
}

// knownFutile skips an automatic repair whose entry was futile on this index (every step
// left its figure where it was) while that figure has not moved since. A figure that moved
// clears the mark and the repair runs.
func (e *Engine) knownFutile(ctx context.Context, rec *recorder, ix catalog.Index, env strategy.Env) (string, bool, error) {
	if rec.r.Plan.Manual || rec.r.Plan.DryRun {
		return "", false, nil
	}
	m, err := rec.futileMark(ctx)
	if err != nil || m == nil {
		return "", false, err
	}
	got, err := e.o.Measurer.Measure(ctx, env.Pool, ix, m.Figure)
	if err != nil {
		return "", false, nil // unknown: run as planned
	}
	if !validation.Moved(m.Value, got) {
		return fmt.Sprintf("entry %s was futile on this index in repair %d: %s stayed at %g, and is %g now; it runs again once the figure changes",
			m.Entry, m.RepairID, m.Figure, m.Value, got), true, nil
	}
	return "", false, rec.clearFutile(ctx)
}

// alreadyHealthy re-measures the first step's validation figure of an automatic repair before
// anything runs. One fault often raises several alerts (an IVFFlat imbalance and a distribution
// shift, a warning and a critical tier): the repair of the first heals the index, and the
// others, queued behind the index lock, would rebuild it again for nothing. A manual repair,
// a dry run, a step without validation or a failed measurement runs as planned.
//
// The reading that judges it also holds the figures the first step records, and every other
// figure of the sources it read: it is the repair's one reading before, which the first step
// takes instead of reading the index again (Env.Before).
func (e *Engine) alreadyHealthy(ctx context.Context, r repairRow, steps []strategy.Step, ix catalog.Index, env strategy.Env) (string, bool, measure.Reading) {
	if r.Plan.Manual || r.Plan.DryRun || len(r.Plan.Steps) == 0 || r.Plan.Steps[0].Validate == nil {
		return "", false, nil
	}
	v := *r.Plan.Steps[0].Validate
	figures := append([]string{v.Figure}, steps[0].Figures(ix.Method)...)
	if v.Fallback != "" {
		figures = append(figures, v.Fallback)
	}
	reading := e.o.Measurer.Read(ctx, env.Pool, ix, figures...)
	e.log.Debug("reading before the repair", "repair", r.ID, "index", ix.String(), "reading", reading)
	got := validation.Once(ctx, strategy.WithReading(e.o.Measurer, reading), env.Pool, ix, v)
	if !got.Passed {
		return "", false, reading
	}
	return fmt.Sprintf("%s = %g already meets %s %g", got.Figured(), *got.Measured, v.Op, *got.Bound), true, nil
}

// stepBefore is the validation figure of a step as it was before the step ran.
type stepBefore struct {
	figure   string   // measured by the engine: the figure or fallback it measured; "" when none
	measured *float64 // its value
	recorded string   // the step records this figure itself, in its own reading before it acts
	fallback string   // ... and where that one cannot be known, the engine measured this
}

// measureBefore measures a step's validation figure before it runs. A step that records the
// figure among its own measures it in one reading with the others before it changes anything,
// so the engine takes it from that record (value) and the index's pages are not read once more
// (seconds on a large index); only a fallback the step does not record is measured here.
func (e *Engine) measureBefore(ctx context.Context, step PlanStep, st strategy.Step, ix catalog.Index, env strategy.Env) stepBefore {
	if step.Validate == nil {
		return stepBefore{}
	}
	v := *step.Validate
	figures := st.Figures(ix.Method)
	m := strategy.WithReading(e.o.Measurer, env.Before)
	if !slices.Contains(figures, v.Figure) {
		if fig, got, err := validation.Measure(ctx, m, env.Pool, ix, v); err == nil && !math.IsNaN(got) {
			return stepBefore{figure: fig, measured: &got}
		}
		return stepBefore{}
	}
	b := stepBefore{recorded: v.Figure}
	if v.Fallback != "" && !slices.Contains(figures, v.Fallback) {
		if got, err := m.Measure(ctx, env.Pool, ix, v.Fallback); err == nil && !math.IsNaN(got) {
			b.fallback, b.measured = v.Fallback, &got
		}
	}
	return b
}

// value is the figure before the step and its name, from the step's own record where it keeps
// it (adding the engine's measurement to that record otherwise); nil when unknown.
func (b stepBefore) value(record map[string]float64) (*float64, string) {
	if b.recorded != "" {
		if got, ok := record[b.recorded]; ok {
			return &got, b.recorded
		}
		if got, ok := record[b.fallback]; ok && b.fallback != "" {
			return &got, b.fallback
		}
		b.figure = b.fallback // the figure could not be known: judge by the fallback measured
	}
	if b.measured == nil || b.figure == "" {
		return nil, ""
	}
	if _, ok := record[b.figure]; !ok {
		record[b.figure] = *b.measured
	}
	return b.measured, b.figure
}

// execute runs the plan's steps. A step that succeeds ends the repair unless it says
// on_success: next; a step that fails is rolled back and the next one tried (escalate), or
// rolled back and the repair stopped (rollback), or left as it is and the repair stopped
// (stop). A timeout, a cancel request or a stop of the process rolls the running step back
// and ends the repair. A step that says "retry later" ends the run without a verdict.
func (e *Engine) execute(ctx context.Context, rec *recorder, steps []strategy.Step, ix catalog.Index, env strategy.Env) result {
	r := rec.r
	timeout := r.Plan.Timeout
	if timeout <= 0 {
		timeout = e.o.Config.DefaultTimeout
	}
	runCtx, cancel := context.WithTimeoutCause(ctx, timeout, errTimeout)
	defer cancel()
	if r.Plan.DryRun {
		for i, step := range r.Plan.Steps {
			e.planOnly(runCtx, rec, i, step, steps[i], ix, env)
		}
		return result{outcome: "dry_run"}
	}
	// A repair that waited for the approval of a step goes on with that step; the steps
	// before it have run and are recorded.
	first, resumed, err := rec.approvedStep(ctx)
	if err != nil {
		return result{outcome: "failed", reason: "state_store", err: err.Error()}
	}
	var last stepResult
	allFutile := true
	var firstFutile *futileFigure
	for i, step := range r.Plan.Steps {
		if i < first {
			continue
		}
		// A step that needs approval waits for it, unless its plan already fails (another
		// index method, nothing left to raise): then it fails as it would when run, and no
		// one is asked to approve what cannot run.
		if step.Approval && i != first && e.awaitApproval(runCtx, rec, i, step, steps[i], ix, env) {
			return result{outcome: "awaiting_approval", pausedAt: i}
		}
		last = e.runStep(ctx, runCtx, rec, i, step, steps[i], ix, env, resumed && i == first)
		env.Before = nil // the reading before the repair describes the index before this step only
		if last.state == "awaiting_approval" {
			return result{outcome: "awaiting_approval", pausedAt: i}
		}
		if last.state == "deferred" {
			return result{outcome: "deferred", reason: "retry_later", err: last.err}
		}
		if last.futile == nil {
			allFutile = false
		} else if firstFutile == nil {
			firstFutile = last.futile
		}
		if last.state == "succeeded" {
			if step.OnSuccess == runbook.OnSuccessNext && i < len(r.Plan.Steps)-1 {
				continue
			}
			return result{outcome: "succeeded"}
		}
		res := result{outcome: outcomeOf(last), reason: "step_failed", err: last.err}
		if allFutile {
			res.futile = firstFutile
		}
		switch {
		case last.stopped == "cancelled":
			return result{outcome: "cancelled", reason: "cancelled", err: last.err}
		case last.stopped != "":
			res.reason = last.stopped
			return res
		case step.OnFailure == runbook.OnFailureStop:
			res.outcome = "failed"
			return res
		case step.OnFailure == runbook.OnFailureRollback:
			return res
		}
	}
	res := result{outcome: outcomeOf(last), reason: "all_steps_failed", err: last.err}
	if allFutile {
		res.futile = firstFutile
		res.reason = "futile"
	}
	return res
}

// outcomeOf is the repair outcome after a failed step: rolled_back when its rollback worked.
func outcomeOf(s stepResult) string {
	if s.state == "rolled_back" {
		return "rolled_back"
	}
	return "failed"
}

// awaitApproval records the impact of a step that needs approval before it runs (what an
// operator approves: for a rebuild, the new definition, its size and build time); the step
// stays planned until then. It returns false, recording nothing, when the step's plan fails.
func (e *Engine) awaitApproval(ctx context.Context, rec *recorder, pos int, step PlanStep, st strategy.Step, ix catalog.Index, env strategy.Env) bool {
	impact, err := st.Plan(ctx, env, ix)
	if err != nil {
		return false
	}
	if est := e.historyEstimate(ctx, rec.r, step.Strategy); est > 0 {
		impact.EstimatedDuration = est
	}
	rec.stepBegins(ctx, pos, step, "planned", &impact, "awaiting approval")
	e.log.Info("step needs approval, repair waits", "repair", rec.r.ID, "step", pos, "strategy", step.Strategy, "statements", impact.Statements)
	return true
}

// buildNeedsApproval says why a step whose impact is impact must wait for approval before it
// runs: it writes a new copy of the index (its plan needs disk for one) and the index or the
// build's estimated duration is over the entry's approve_builds_over; "" when it may run. A
// repair a person asked for, or approved as a whole, is not held again.
func buildNeedsApproval(r repairRow, impact strategy.Impact, ix catalog.Index) string {
	if r.Plan.Manual || r.Plan.Approval || impact.DiskBytesNeeded == 0 {
		return ""
	}
	return r.Plan.ApproveBuildsOver.Exceeds(max(impact.IndexBytes, ix.SizeBytes), impact.EstimatedDuration)
}

// planOnly records a step's impact estimate for a dry run.
func (e *Engine) planOnly(ctx context.Context, rec *recorder, pos int, step PlanStep, st strategy.Step, ix catalog.Index, env strategy.Env) {
	impact, err := st.Plan(ctx, env, ix)
	if impact.EstimatedDuration == 0 { // a strategy's own estimate knows more than the mean
		impact.EstimatedDuration = e.historyEstimate(ctx, rec.r, step.Strategy)
	}
	msg := ""
	if err != nil {
		msg = "plan: " + err.Error()
	}
	rec.stepBegins(ctx, pos, step, "dry_run", &impact, msg)
	e.log.Info("dry run: step planned, nothing run", "repair", rec.r.ID, "step", pos, "statements", impact.Statements)
}

// validateStep judges a step that ran by its validation, with the figure measured after it
// (added to out.After). failure is empty when it passed; futile is set when it failed and left
// the figure measured before (before, of beforeFigure) where it was.
func (e *Engine) validateStep(ctx context.Context, step PlanStep, st strategy.Step, ix catalog.Index, env strategy.Env,
	out *strategy.Outcome, before *float64, beforeFigure string) (failure string, vrec *validation.Record, futile *futileFigure) {
	var after map[string]float64 // the step's reading after, where it is one
	if st.Spec().Has(strategy.RecordsReadingAfter) {
		after = out.After
	}
	vrec = validation.AwaitAfter(ctx, e.o.Measurer, env.Pool, ix, *step.Validate, out.Before, after)
	failure = vrec.Failure()
	if vrec.Measured == nil {
		return failure, vrec, nil
	}
	if out.After == nil {
		out.After = map[string]float64{}
	}
	fig := vrec.Figured()
	out.After[fig] = *vrec.Measured
	if failure != "" && vrec.Error == "" && before != nil && beforeFigure == fig && !validation.Moved(*before, *vrec.Measured) {
		futile = &futileFigure{Figure: fig, Value: *vrec.Measured}
		failure += fmt.Sprintf("; futile: the step left %s at %g", fig, *vrec.Measured)
	}
	return failure, vrec, futile
}

// runStep is one step: impact, run, validate, then keep, roll back or defer. ctx is the
// job's context (cancelled on shutdown or by a cancel request), runCtx adds the repair's
// timeout.
//
// approved says a person approved this very step (the repair stopped before it): then a build
// over the entry's approve_builds_over runs; otherwise it stops the repair as awaiting
// approval, its impact and the reason recorded, the step left planned.
func (e *Engine) runStep(ctx, runCtx context.Context, rec *recorder, pos int, step PlanStep, st strategy.Step,
	ix catalog.Index, env strategy.Env, approved bool) stepResult {
	r := rec.r
	log := e.log.With("repair", r.ID, "step", pos, "strategy", step.Strategy)

	// Impact.
	impact, err := st.Plan(runCtx, env, ix)
	if impact.EstimatedDuration == 0 { // a strategy's own estimate knows more than the mean
		impact.EstimatedDuration = e.historyEstimate(ctx, r, step.Strategy)
	}
	if err != nil {
		msg := "plan: " + err.Error()
		rec.stepBegins(ctx, pos, step, "failed", &impact, msg)
		return stepResult{state: "failed", err: msg, stopped: stopCause(ctx, runCtx, e, r)}
	}
	if why := buildNeedsApproval(r, impact, ix); why != "" && !approved {
		rec.stepBegins(ctx, pos, step, "planned", &impact, "awaiting approval: "+why)
		log.Info("build needs approval, repair waits", "why", why)
		return stepResult{state: "awaiting_approval"}
	}
	if h := e.horizonHolder(runCtx, log, r, step, st, ix, env); h != nil {
		return e.heldBack(ctx, rec, pos, step, &impact, h) // horizon.go
	}
	rec.stepBegins(ctx, pos, step, "running", &impact, "")
	// The run's reading before: its plan's, completed with the engine's, both taken a
	// moment ago.
	env.Before = impact.Reading.With(env.Before)

	// Run, with the validation figure (or its fallback, where it cannot be known) measured before.
	b := e.measureBefore(runCtx, step, st, ix, env)
	started := time.Now()
	out, runErr := st.Run(runCtx, env, ix)
	if out.Before == nil {
		out.Before = map[string]float64{}
	}
	before, beforeFigure := b.value(out.Before)
	rec.outcome(ctx, pos, out)
	if runErr != nil && strategy.RetryLater(runErr) && runCtx.Err() == nil && time.Since(r.CreatedAt) < giveUpAfter {
		msg := "retry later: " + runErr.Error()
		rec.stepEnds(ctx, pos, step.Strategy, "deferred", out.After, nil, false, msg)
		log.Info("step deferred", "err", runErr)
		return stepResult{state: "deferred", err: msg}
	}

	var failure string
	var vrec *validation.Record
	var futile *futileFigure
	if runErr != nil {
		failure = "run: " + runErr.Error()
	} else if step.Validate != nil {
		failure, vrec, futile = e.validateStep(runCtx, step, st, ix, env, &out, before, beforeFigure)
	}
	e.metrics.duration.WithLabelValues(step.Strategy).Observe(time.Since(started).Seconds())
	if failure == "" {
		rec.stepEnds(ctx, pos, step.Strategy, "succeeded", out.After, vrec, false, "")
		log.Info("step succeeded")
		return stepResult{state: "succeeded"}
	}

	// Keep or roll back.
	stopped := stopCause(ctx, runCtx, e, r)
	state := "failed"
	if step.OnFailure == runbook.OnFailureStop && stopped == "" {
		log.Warn("step failed, kept as it is (on_failure: stop)", "err", failure)
	} else {
		log.Warn("step failed, rolling back", "err", failure, "stopped", stopped)
		state = e.rollback(ctx, rec, pos, step.Strategy, st, ix, env, out.Undo)
	}
	rec.stepEnds(ctx, pos, step.Strategy, state, out.After, vrec, futile != nil, failure)
	return stepResult{state: state, err: failure, stopped: stopped, futile: futile}
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
	dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 5*time.Second)
	defer cancel()
	by, _ := e.repairs.cancelRequestedBy(dctx, r.ID)
	if by != "" {
		return "cancelled"
	}
	return "interrupted"
}

// rollback undoes a step with a context of its own, so a timeout or a stop of the repair
// does not stop the rollback too. It returns the step's new state.
func (e *Engine) rollback(ctx context.Context, rec *recorder, pos int, strat string, st strategy.Step,
	ix catalog.Index, env strategy.Env, undo []byte) string {
	rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), e.o.RollbackTimeout)
	defer cancel()
	e.metrics.rollbacks.WithLabelValues(strat).Inc()
	if err := st.Rollback(rctx, env, ix, undo); err != nil {
		e.log.Error("rollback failed", "repair", rec.r.ID, "step", pos, "strategy", strat, "err", err)
		rec.stepError(rctx, pos, "rollback: "+err.Error())
		return "rollback_failed"
	}
	return "rolled_back"
}
