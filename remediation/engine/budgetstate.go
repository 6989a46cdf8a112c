package engine

import (
	"cmp"
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/riverqueue/river"

	"github.com/vectorheal/vectorheal/remediation/runbook"
)

// This file feeds the budget rules (budget.go) from the state store: one query loads the
// recent repairs of an index (or of all), and every reader — the precheck of a repair, the
// API, the metrics — turns them into a BudgetState with decideBudget.

// budgetKey names an index for the budget. A target is one database, so datname is left out.
type budgetKey struct{ Target, Schema, Index string }

// budgetHistory is what the state store says about the indexes the budget is asked about.
type budgetHistory struct {
	runs    map[budgetKey][]budgetRun
	names   map[budgetKey][2]string // datname, relname of the newest repair, for display
	circuit map[budgetKey]bool      // open
	running map[string]int          // repairs running, by target
}

// lookback is how far back the budget reads repairs: the longest span any of its rules looks
// at, or the cooldown of the entry asked about when that is longer.
func (e *Engine) lookback(cooldown time.Duration) time.Duration {
	c := e.o.Config
	return max(c.Budget.Window, c.FlapWindow, c.Budget.BackoffMax, cooldown)
}

// loadBudget reads the repairs that ran on one index (only, when not nil) or on every index
// within lookback, the circuits, and the repairs running per target.
func (e *Engine) loadBudget(ctx context.Context, only *budgetKey, lookback time.Duration) (budgetHistory, error) {
	h := budgetHistory{runs: map[budgetKey][]budgetRun{}, names: map[budgetKey][2]string{},
		circuit: map[budgetKey]bool{}, running: map[string]int{}}
	var k budgetKey
	if only != nil {
		k = *only
	}
	runs, err := e.repairs.budgetRuns(ctx, k, lookback)
	if err != nil {
		return h, err
	}
	for _, b := range runs {
		if _, seen := h.names[b.key]; !seen {
			h.names[b.key] = [2]string{b.datname, b.relname}
		}
		h.runs[b.key] = append(h.runs[b.key], b.run)
	}
	return h, e.loadBudgetState(ctx, &h, k)
}

// loadBudgetState adds the open circuits and the repairs running per target to h.
func (e *Engine) loadBudgetState(ctx context.Context, h *budgetHistory, k budgetKey) error {
	rows, err := e.o.State.Query(ctx, `SELECT target, schemaname, indexrelname, bool_or(open), min(datname), min(relname)
		FROM circuits WHERE $1 = '' OR (target = $1 AND schemaname = $2 AND indexrelname = $3)
		GROUP BY 1, 2, 3`, k.Target, k.Schema, k.Index)
	if err != nil {
		return fmt.Errorf("read circuits: %w", err)
	}
	for rows.Next() {
		var key budgetKey
		var open bool
		var datname, rel string
		if err := rows.Scan(&key.Target, &key.Schema, &key.Index, &open, &datname, &rel); err != nil {
			rows.Close()
			return fmt.Errorf("read circuits: %w", err)
		}
		h.circuit[key] = open
		if _, seen := h.names[key]; !seen {
			h.names[key] = [2]string{datname, rel}
		}
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read circuits: %w", err)
	}
	h.running, err = e.repairs.runningByTarget(ctx)
	return err
}

// input is what decideBudget needs to judge index k at now, as a whole.
func (e *Engine) budgetInput(now time.Time, h budgetHistory, k budgetKey) budgetInput {
	return budgetInput{Now: now, Budget: e.o.Config.Budget, FlapWindow: e.o.Config.FlapWindow, FlapMax: e.o.Config.FlapMaxRepairs,
		Runs: h.runs[k], RunningOnTarget: h.running[k.Target], CircuitOpen: h.circuit[k]}
}

// budgetOf decides whether automatic repair r may run now.
func (e *Engine) budgetOf(ctx context.Context, r repairRow) (BudgetState, error) {
	k := budgetKey{Target: r.Target, Schema: r.Schema, Index: r.Index}
	h, err := e.loadBudget(ctx, &k, e.lookback(r.Plan.Cooldown))
	if err != nil {
		return BudgetState{}, err
	}
	in := e.budgetInput(time.Now(), h, k)
	in.Entry, in.Cooldown = r.Entry, r.Plan.Cooldown
	if !inWindow(r.Plan, in.Now) {
		in.OutsideWindow, in.WindowOpens = true, windowOpens(r.Plan, in.Now)
	}
	return decideBudget(in), nil
}

// budgetHold applies the budget to an automatic repair before its other prechecks. done means
// the job ends with err: a snooze while the repair waits for its next chance (the rule and the
// time recorded), or nil once it was skipped.
func (e *Engine) budgetHold(ctx context.Context, rec *recorder) (done bool, err error) {
	s, err := e.budgetOf(ctx, rec.r)
	if err != nil {
		return true, err
	}
	if s.Allowed {
		return false, nil
	}
	if !budgetWaits(s, time.Now(), rec.r.CreatedAt, e.o.Config.Budget.Window) {
		return true, rec.skip(ctx, s.HeldBy, budgetDetail(s))
	}
	if err := rec.held(ctx, s.HeldBy, budgetDetail(s)); err != nil {
		return true, err
	}
	// Asked again at least every LockRetry: a reset circuit, a repair ending on the target or
	// a pruned history may free it sooner than foreseen.
	wait := e.o.LockRetry
	if s.NextAllowed != nil {
		wait = max(min(time.Until(*s.NextAllowed), wait), 10*time.Millisecond)
	}
	return true, river.JobSnooze(wait)
}

// Budgets reports the budget state of every index repaired within the lookback (the longest of
// the budget window, the flap window and the longest backoff) or with a circuit. Each entry's
// cooldown counts after its own last run; maintenance windows, which belong to entries, show
// on the repairs they hold.
func (e *Engine) Budgets(ctx context.Context) ([]IndexBudget, error) {
	h, err := e.loadBudget(ctx, nil, e.lookback(0))
	if err != nil {
		return nil, err
	}
	now := time.Now()
	out := make([]IndexBudget, 0, len(h.names))
	for k, n := range h.names {
		out = append(out, IndexBudget{Target: k.Target, Datname: n[0], Schema: k.Schema, Table: n[1], Index: k.Index,
			BudgetState: decideBudget(e.budgetInput(now, h, k))})
	}
	slices.SortFunc(out, func(a, b IndexBudget) int {
		return cmp.Or(cmp.Compare(a.Target, b.Target), cmp.Compare(a.Schema, b.Schema), cmp.Compare(a.Index, b.Index))
	})
	return out, nil
}

// windowOpens is when plan p's maintenance windows next let a repair start after t, to the
// minute within a week and a day; zero when none does.
func windowOpens(p Plan, t time.Time) time.Time {
	ws := make([]runbook.Window, len(p.Windows))
	for i, w := range p.Windows {
		loc, err := time.LoadLocation(w.Location)
		if err != nil {
			loc = time.UTC
		}
		ws[i] = runbook.Window{Days: w.Days, Start: w.Start, End: w.End, Location: loc}
	}
	first := t.Truncate(time.Minute).Add(time.Minute)
	for m := time.Duration(0); m < 8*24*time.Hour; m += time.Minute {
		for _, w := range ws {
			if w.Contains(first.Add(m)) {
				return first.Add(m)
			}
		}
	}
	return time.Time{}
}
