package main

import (
	"bytes"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/remediation/engine"
)

// TestPrintBudgets: each index says when its next automatic repair may run and which rule
// holds it back, with the budget used and the backoff.
func TestPrintBudgets(t *testing.T) {
	now := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	next := now.Add(52 * time.Minute)
	ix := func(name string, s engine.BudgetState) engine.IndexBudget {
		s.Share, s.Window = 0.1, 24*time.Hour
		return engine.IndexBudget{Target: "db1", Schema: "public", Index: name, BudgetState: s}
	}
	var out bytes.Buffer
	err := printBudgets(&out, []engine.IndexBudget{
		ix("a_idx", engine.BudgetState{Allowed: true, UsedRatio: 0.0001}),
		ix("b_idx", engine.BudgetState{HeldBy: engine.HeldByBudget, NextAllowed: &next, UsedRatio: 0.117}),
		ix("c_idx", engine.BudgetState{HeldBy: engine.HeldByBackoff, NextAllowed: &next, Unhelpful: 2, Backoff: time.Hour}),
		ix("d_idx", engine.BudgetState{HeldBy: engine.HeldByCircuit, Unhelpful: 3, Backoff: 2 * time.Hour}),
		ix("e_idx", engine.BudgetState{HeldBy: engine.HeldByRunningLimit}),
	}, now)
	if err != nil {
		t.Fatal(err)
	}
	want := `
next automatic repair per index:
TARGET  INDEX         NEXT REPAIR                                 BUDGET USED                  BACKOFF
db1     public.a_idx  now                                         0.0% of 10.0% over 24h0m0s   -
db1     public.b_idx  2026-12-06T12:52:00Z, in 52m0s (budget)     11.7% of 10.0% over 24h0m0s  -
db1     public.c_idx  2026-12-06T12:52:00Z, in 52m0s (backoff)    0.0% of 10.0% over 24h0m0s   1h0m0s after 2 unhelpful
db1     public.d_idx  after reset-circuit (circuit_open)          0.0% of 10.0% over 24h0m0s   2h0m0s after 3 unhelpful
db1     public.e_idx  when a running repair ends (running_limit)  0.0% of 10.0% over 24h0m0s   -
`
	if out.String() != want {
		t.Errorf("got\n%s\nwant\n%s", out.String(), want)
	}
}
