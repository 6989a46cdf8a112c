package engine

import (
	"fmt"
	"slices"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
)

// The rules that hold an automatic repair of an index back, as recorded in repairs.reason and
// shown by the API, the CLI and the metrics. The budget is the main brake; the cooldown of the
// runbook entry is a floor under it; the flap guard and the circuit breaker stay as the outer
// safety nets.
const (
	HeldByCircuit      = "circuit_open"  // failures in a row: a human resets it
	HeldByWindow       = "window"        // outside the entry's maintenance windows
	HeldByRunningLimit = "running_limit" // budget.max_running_per_target repairs run on the target
	HeldByCooldown     = "cooldown"      // the entry ran on the index less than its cooldown ago
	HeldByBackoff      = "backoff"       // the last repairs of the index did not help
	HeldByBudget       = "budget"        // repairs took more than budget.share of the window
	HeldByFlapping     = "flapping"      // flap_max_repairs repairs within flap_window
)

// budgetRun is one repair of an index as the budget sees it.
type budgetRun struct {
	Entry    string
	State    string // running, succeeded, failed, rolled_back
	Started  time.Time
	Finished time.Time     // zero while running
	Cooldown time.Duration // of the entry the repair followed
}

// helped reports whether a finished repair left the index better: one that failed or was
// rolled back (futile ones included) did not.
func (r budgetRun) helped() bool { return r.State == "succeeded" }

// budgetInput is what the budget rules decide on. Runs are the repairs of one index that ran,
// newest start first, reaching back at least the longest of the budget window, the flap window,
// the longest backoff and the cooldown.
type budgetInput struct {
	Now    time.Time
	Budget config.Budget
	// FlapWindow and FlapMax are the flap guard (remediation.flap_window, flap_max_repairs).
	FlapWindow time.Duration
	FlapMax    int
	Runs       []budgetRun
	// RunningOnTarget counts the repairs running on the index's target, other indexes included.
	RunningOnTarget int
	CircuitOpen     bool
	// Entry and Cooldown are those of the repair asked about; an empty Entry asks for the index
	// as a whole, and then each entry's cooldown holds after its own last run.
	Entry    string
	Cooldown time.Duration
	// OutsideWindow is set when the entry's maintenance windows exclude Now; WindowOpens is
	// when the next one opens (zero: unknown).
	OutsideWindow bool
	WindowOpens   time.Time
}

// decideBudget applies the budget rules to an index's recent repairs. It is pure: the engine's
// precheck, the API, the CLI and the metrics all ask it, so they never disagree.
func decideBudget(in budgetInput) BudgetState {
	s := BudgetState{Share: in.Budget.Share, Window: in.Budget.Window, RunningOnTarget: in.RunningOnTarget, Holds: []Hold{}}
	hold := func(rule string, until time.Time) {
		h := Hold{Rule: rule}
		if !until.IsZero() {
			h.Until = &until
		}
		s.Holds = append(s.Holds, h)
	}
	if in.CircuitOpen {
		hold(HeldByCircuit, time.Time{})
	}
	if in.OutsideWindow {
		hold(HeldByWindow, in.WindowOpens)
	}
	if in.RunningOnTarget >= in.Budget.MaxRunningPerTarget {
		hold(HeldByRunningLimit, time.Time{})
	}
	if until := cooldownUntil(in); until.After(in.Now) {
		hold(HeldByCooldown, until)
	}
	s.Unhelpful, s.Backoff = backoff(in.Runs, in.Budget)
	if s.Unhelpful > 0 {
		if until := lastFinished(in.Runs).Add(s.Backoff); until.After(in.Now) {
			hold(HeldByBackoff, until)
		}
	}
	// A running repair counts as far as it has run: no other starts on the index meanwhile.
	spent := closeRunning(in.Runs, in.Now)
	s.UsedRatio = usedAt(spent, in.Now, in.Budget.Window)
	if s.UsedRatio > in.Budget.Share {
		hold(HeldByBudget, budgetFreesAt(spent, in.Now, in.Budget))
	}
	if until, held := flapUntil(in); held {
		hold(HeldByFlapping, until)
	}
	s.Allowed = len(s.Holds) == 0
	s.HeldBy, s.NextAllowed = binding(s.Holds)
	return s
}

// binding picks the hold to show: an open circuit first (only a human ends it), then the one
// with the latest known end; the running limit only when nothing else holds, since it ends
// with the next repair that finishes on the target.
func binding(holds []Hold) (string, *time.Time) {
	var rule string
	var next *time.Time
	for _, h := range holds {
		switch {
		case h.Rule == HeldByCircuit:
			return h.Rule, nil
		case h.Until == nil:
			if rule == "" {
				rule = h.Rule
			}
		case next == nil || h.Until.After(*next):
			rule, next = h.Rule, h.Until
		}
	}
	return rule, next
}

// cooldownUntil is when the entry's cooldown ends after its last finished run on the index;
// asked about the index as a whole, the latest end over every entry's own cooldown.
func cooldownUntil(in budgetInput) time.Time {
	var until time.Time
	for _, r := range in.Runs {
		if r.Finished.IsZero() {
			continue
		}
		cd := r.Cooldown
		if in.Entry != "" {
			if r.Entry != in.Entry {
				continue
			}
			cd = in.Cooldown
		}
		if end := r.Finished.Add(cd); end.After(until) {
			until = end
		}
	}
	return until
}

// backoff counts the finished repairs in a row, newest first, that did not help, and the wait
// they impose: base doubled for each after the first, at most max. A repair that helped ends
// the count.
func backoff(runs []budgetRun, b config.Budget) (int, time.Duration) {
	n := 0
	for _, r := range runs {
		if r.Finished.IsZero() {
			continue
		}
		if r.helped() {
			break
		}
		n++
	}
	if n == 0 {
		return 0, 0
	}
	d := b.BackoffBase
	for i := 1; i < n && d < b.BackoffMax; i++ {
		d *= 2
	}
	return n, min(d, b.BackoffMax)
}

// lastFinished is when the newest finished repair ended.
func lastFinished(runs []budgetRun) time.Time {
	var t time.Time
	for _, r := range runs {
		if r.Finished.After(t) {
			t = r.Finished
		}
	}
	return t
}

// closeRunning returns the runs with those still running ended at now.
func closeRunning(runs []budgetRun, now time.Time) []budgetRun {
	out := slices.Clone(runs)
	for i := range out {
		if out[i].Finished.IsZero() {
			out[i].Finished = now
		}
	}
	return out
}

// usedAt is the share of the window ending at t that the (finished) runs took.
func usedAt(runs []budgetRun, t time.Time, window time.Duration) float64 {
	from := t.Add(-window)
	var busy time.Duration
	for _, r := range runs {
		end := r.Finished
		if end.After(t) {
			end = t
		}
		start := r.Started
		if start.Before(from) {
			start = from
		}
		if end.After(start) {
			busy += end.Sub(start)
		}
	}
	return float64(busy) / float64(window)
}

// budgetFreesAt is the first time after now at which the runs, as they slide out of the window,
// take no more than the share (no new repair assumed). The share used only falls with time and
// falls linearly between the points where a run's start or end leaves the window, so the answer
// is found between two such points.
func budgetFreesAt(runs []budgetRun, now time.Time, b config.Budget) time.Time {
	var points []time.Time
	for _, r := range runs {
		for _, p := range []time.Time{r.Started.Add(b.Window), r.Finished.Add(b.Window)} {
			if p.After(now) {
				points = append(points, p)
			}
		}
	}
	slices.SortFunc(points, func(a, c time.Time) int { return a.Compare(c) })
	prev, prevUsed := now, usedAt(runs, now, b.Window)
	for _, p := range points {
		used := usedAt(runs, p, b.Window)
		if used <= b.Share {
			// Linear between prev and p: where it crosses the share.
			frac := (prevUsed - b.Share) / (prevUsed - used)
			return ceilSecond(prev.Add(time.Duration(frac * float64(p.Sub(prev)))))
		}
		prev, prevUsed = p, used
	}
	return prev // not reached: once every run has left the window, none is used
}

// ceilSecond rounds t up to a whole second, so the time shown is one at which the repair may run.
func ceilSecond(t time.Time) time.Time {
	if tr := t.Truncate(time.Second); !tr.Equal(t) {
		return tr.Add(time.Second)
	}
	return t
}

// flapUntil reports whether the flap guard holds (flap_max_repairs repairs of the index started
// within flap_window) and until when: the oldest of them leaves the window.
func flapUntil(in budgetInput) (time.Time, bool) {
	var starts []time.Time
	for _, r := range in.Runs {
		if !r.Finished.IsZero() && r.Started.After(in.Now.Add(-in.FlapWindow)) {
			starts = append(starts, r.Started)
		}
	}
	if in.FlapMax <= 0 || len(starts) < in.FlapMax {
		return time.Time{}, false
	}
	slices.SortFunc(starts, func(a, c time.Time) int { return c.Compare(a) }) // newest first
	return starts[in.FlapMax-1].Add(in.FlapWindow), true
}

// budgetWaits reports whether a repair held back at now waits for its next chance instead of being
// skipped: when that chance comes within maxWait of its queueing, or is not known in advance
// but transient (the running limit) and maxWait has not passed yet. An open circuit waits for
// a human, so the repair is skipped.
func budgetWaits(s BudgetState, now, created time.Time, maxWait time.Duration) bool {
	switch {
	case s.Allowed || s.HeldBy == HeldByCircuit:
		return false
	case s.NextAllowed == nil:
		return now.Before(created.Add(maxWait))
	}
	return !s.NextAllowed.After(created.Add(maxWait))
}

// budgetDetail says in words why a repair is held back, for the repair's record.
func budgetDetail(s BudgetState) string {
	msg := "held by " + s.HeldBy
	switch s.HeldBy {
	case HeldByBudget:
		msg += fmt.Sprintf(": repairs of this index took %.1f%% of the last %s (budget %.1f%%)", 100*s.UsedRatio, s.Window, 100*s.Share)
	case HeldByBackoff:
		msg += fmt.Sprintf(": the last %d repair(s) of this index did not help; wait %s", s.Unhelpful, s.Backoff)
	case HeldByRunningLimit:
		msg += fmt.Sprintf(": %d repair(s) running on the target", s.RunningOnTarget)
	}
	if s.NextAllowed != nil {
		msg += "; next repair may run at " + s.NextAllowed.UTC().Format(time.RFC3339)
	}
	return msg
}
