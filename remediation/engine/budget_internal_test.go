package engine

import (
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
)

// TestDecideBudget: each rule holds alone, the binding one is the one that holds longest, and
// the next allowed time is when the budget, backoff, cooldown or flap guard lets go.
func TestDecideBudget(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	ago := func(d time.Duration) time.Time { return now.Add(-d) }
	at := func(d time.Duration) *time.Time { t := now.Add(d); return &t }
	run := func(state string, start, took time.Duration) budgetRun {
		r := budgetRun{Entry: "e", State: state, Started: ago(start), Cooldown: 15 * time.Minute}
		if state != "running" {
			r.Finished = r.Started.Add(took)
		}
		return r
	}
	b := config.DefaultRemediation().Budget // 10 % of 24h, 2 per target, backoff 30m..24h
	base := budgetInput{Now: now, Budget: b, FlapWindow: 6 * time.Hour, FlapMax: 3, Entry: "e", Cooldown: 15 * time.Minute}
	for _, tc := range []struct {
		name    string
		edit    func(in *budgetInput)
		heldBy  string
		next    *time.Time
		used    float64
		backoff time.Duration
	}{
		{name: "no history", edit: func(*budgetInput) {}},
		{name: "a 7 s repair an hour ago leaves the budget almost whole",
			edit: func(in *budgetInput) { in.Runs = []budgetRun{run("succeeded", time.Hour, 7*time.Second)} },
			used: 7.0 / 86400},
		{name: "cooldown is a floor after the entry's last run",
			edit:   func(in *budgetInput) { in.Runs = []budgetRun{run("succeeded", 10*time.Minute, 7*time.Second)} },
			heldBy: HeldByCooldown, next: at(5*time.Minute + 7*time.Second), used: 7.0 / 86400},
		{name: "another entry's cooldown does not hold this one",
			edit: func(in *budgetInput) {
				r := run("succeeded", 10*time.Minute, 7*time.Second)
				r.Entry = "other"
				in.Runs = []budgetRun{r}
			},
			used: 7.0 / 86400},
		{name: "the index view applies each entry's own cooldown",
			edit: func(in *budgetInput) {
				in.Entry = ""
				r := run("succeeded", 10*time.Minute, 7*time.Second)
				r.Entry, r.Cooldown = "other", time.Hour
				in.Runs = []budgetRun{r}
			},
			heldBy: HeldByCooldown, next: at(50*time.Minute + 7*time.Second), used: 7.0 / 86400},
		{name: "a 3 h rebuild spends the budget until it starts leaving the window",
			// 3h of 24h used; at most 2.4h may be: free when 36m of it has left the window,
			// 24h after its start plus 36m.
			edit:   func(in *budgetInput) { in.Runs = []budgetRun{run("succeeded", 4*time.Hour, 3*time.Hour)} },
			heldBy: HeldByBudget, next: at(20*time.Hour + 36*time.Minute), used: 3.0 / 24},
		{name: "a running repair counts as far as it has run",
			edit:   func(in *budgetInput) { in.Runs = []budgetRun{run("running", 3*time.Hour, 0)} },
			heldBy: HeldByBudget, next: at(21*time.Hour + 36*time.Minute), used: 3.0 / 24},
		{name: "one repair that did not help: base backoff",
			edit:   func(in *budgetInput) { in.Runs = []budgetRun{run("rolled_back", 20*time.Minute, time.Minute)} },
			heldBy: HeldByBackoff, next: at(11 * time.Minute), used: 60.0 / 86400, backoff: 30 * time.Minute},
		{name: "three in a row that did not help: backoff doubled twice",
			edit: func(in *budgetInput) {
				in.Runs = []budgetRun{run("failed", 20*time.Minute, time.Minute), run("rolled_back", 90*time.Minute, time.Minute),
					run("failed", 4*time.Hour, time.Minute), run("succeeded", 5*time.Hour, time.Minute)}
				in.FlapMax = 10
			},
			heldBy: HeldByBackoff, next: at(2*time.Hour - 19*time.Minute), used: 240.0 / 86400, backoff: 2 * time.Hour},
		{name: "a repair that helped resets the backoff",
			edit: func(in *budgetInput) {
				in.Runs = []budgetRun{run("succeeded", 30*time.Minute, time.Minute), run("failed", 2*time.Hour, time.Minute)}
			},
			used: 120.0 / 86400},
		{name: "backoff stops at its maximum",
			edit: func(in *budgetInput) {
				for i := range 12 {
					in.Runs = append(in.Runs, run("failed", time.Duration(i+1)*time.Hour, time.Second))
				}
				in.FlapMax = 100
			},
			heldBy: HeldByBackoff, next: at(23*time.Hour + time.Second), used: 12.0 / 86400, backoff: 24 * time.Hour},
		{name: "flap guard: three repairs within 6h, free when the oldest leaves",
			edit: func(in *budgetInput) {
				in.Runs = []budgetRun{run("succeeded", time.Hour, time.Second), run("succeeded", 2*time.Hour, time.Second),
					run("succeeded", 5*time.Hour, time.Second)}
			},
			heldBy: HeldByFlapping, next: at(time.Hour), used: 3.0 / 86400},
		{name: "running limit: no end known in advance",
			edit:   func(in *budgetInput) { in.RunningOnTarget = 2 },
			heldBy: HeldByRunningLimit},
		{name: "the running limit yields to a hold with a known end",
			edit: func(in *budgetInput) {
				in.RunningOnTarget = 2
				in.Runs = []budgetRun{run("succeeded", 10*time.Minute, 7*time.Second)}
			},
			heldBy: HeldByCooldown, next: at(5*time.Minute + 7*time.Second), used: 7.0 / 86400},
		{name: "outside the maintenance window until it opens",
			edit:   func(in *budgetInput) { in.OutsideWindow, in.WindowOpens = true, now.Add(2*time.Hour) },
			heldBy: HeldByWindow, next: at(2 * time.Hour)},
		{name: "an open circuit holds whatever else does",
			edit: func(in *budgetInput) {
				in.CircuitOpen = true
				in.Runs = []budgetRun{run("failed", 10*time.Minute, time.Minute)}
			},
			heldBy: HeldByCircuit, used: 60.0 / 86400, backoff: 30 * time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := base
			tc.edit(&in)
			s := decideBudget(in)
			if s.Allowed != (tc.heldBy == "") || s.HeldBy != tc.heldBy {
				t.Fatalf("allowed %t, held by %q (holds %+v); want held by %q", s.Allowed, s.HeldBy, s.Holds, tc.heldBy)
			}
			if (s.NextAllowed == nil) != (tc.next == nil) || s.NextAllowed != nil && !s.NextAllowed.Equal(*tc.next) {
				t.Errorf("next allowed %v, want %v", s.NextAllowed, tc.next)
			}
			if diff := s.UsedRatio - tc.used; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("used %g, want %g", s.UsedRatio, tc.used)
			}
			if s.Backoff != tc.backoff {
				t.Errorf("backoff %s, want %s", s.Backoff, tc.backoff)
			}
		})
	}
}

// TestBudgetWaits: a held repair waits for its next chance when it comes within the wait
// allowed, or ends with a running repair while that wait lasts; otherwise, or with the circuit
// open, it is skipped.
func TestBudgetWaits(t *testing.T) {
	created := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *time.Time { t := created.Add(d); return &t }
	for _, tc := range []struct {
		s    BudgetState
		now  time.Duration // after the queueing
		want bool
	}{
		{BudgetState{Allowed: true}, 0, false},
		{BudgetState{HeldBy: HeldByCircuit}, 0, false},
		{BudgetState{HeldBy: HeldByRunningLimit}, 59 * time.Minute, true},
		{BudgetState{HeldBy: HeldByRunningLimit}, time.Hour, false},
		{BudgetState{HeldBy: HeldByCooldown, NextAllowed: at(15 * time.Minute)}, 0, true},
		{BudgetState{HeldBy: HeldByBudget, NextAllowed: at(time.Hour)}, 0, true},
		{BudgetState{HeldBy: HeldByBackoff, NextAllowed: at(time.Hour + time.Second)}, 0, false},
	} {
		if got := budgetWaits(tc.s, created.Add(tc.now), created, time.Hour); got != tc.want {
			t.Errorf("%+v waits = %t, want %t", tc.s, got, tc.want)
		}
	}
}
