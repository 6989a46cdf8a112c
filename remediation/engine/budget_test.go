package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/remediation/engine"
)

// TestBudgetHoldsRepeatedRepair: a repair of an index whose repairs already took more than
// the budget's share of the window waits, queued, with the rule and the time of its next
// chance recorded and shown by the API and the metrics; once that history leaves the window
// it runs.
func TestBudgetHoldsRepeatedRepair(t *testing.T) {
	b := setup(t)
	b.cfg.Budget = config.Budget{Share: 0.1, Window: time.Hour, MaxRunningPerTarget: 2,
		BackoffBase: 30 * time.Minute, BackoffMax: 24 * time.Hour}
	rb := b.parseRunbook(t, `
entries:
  - name: reclaim
    matchers: ['alertname="Churn"']
    cooldown: 0s
    steps: [{strategy: ok}]
`)
	reg := prometheus.NewRegistry()
	e := b.engine(t, rb, func(o *engine.Options) { o.Registerer = reg })
	dat := b.datname(t)
	// An earlier repair of the index ran 7 of the last 60 minutes: more than the 10 % share.
	// The share falls to 10 % once 1 of those minutes has left the window: in 52 minutes.
	if _, err := b.state.Exec(b.ctx, `INSERT INTO repairs (entry, plan, priority, target, datname, schemaname, relname,
		indexrelname, state, started_at, finished_at)
		VALUES ('reclaim', '{}', 50, 'db1', $1, 'public', 't', 't_v_idx', 'succeeded', now() - interval '9 minutes',
		        now() - interval '2 minutes')`, dat); err != nil {
		t.Fatal(err)
	}
	b.notify(t, e, alert("Churn", "firing", time.Now(), map[string]string{"datname": dat}))
	held := waitFor(t, func() (repairRow, bool) {
		rs := b.repairs(t)
		if len(rs) < 2 {
			return repairRow{}, false
		}
		return rs[1], rs[1].Reason == "budget"
	})
	if held.State != "queued" || !strings.Contains(held.Error, "took 11.7% of the last 1h0m0s (budget 10.0%)") ||
		!strings.Contains(held.Error, "next repair may run at ") {
		t.Fatalf("held repair %+v", held)
	}

	budgets, err := e.Budgets(b.ctx)
	if err != nil || len(budgets) != 1 {
		t.Fatalf("budgets %+v (%v)", budgets, err)
	}
	s := budgets[0]
	if s.Index != "t_v_idx" || s.Allowed || s.HeldBy != "budget" || s.NextAllowed == nil ||
		s.UsedRatio < 0.11 || s.UsedRatio > 0.12 {
		t.Fatalf("budget state %+v", s)
	}
	if d := time.Until(*s.NextAllowed); d < 50*time.Minute || d > 53*time.Minute {
		t.Fatalf("next allowed in %s, want about 52m", d)
	}
	if !strings.Contains(held.Error, s.NextAllowed.UTC().Format(time.RFC3339)) {
		t.Fatalf("recorded %q, the API says next allowed %s", held.Error, s.NextAllowed)
	}
	if v := sampleOf(t, reg, "vectorheal_repair_held", "budget"); v != 1 {
		t.Fatalf("vectorheal_repair_held{reason=budget} = %g", v)
	}
	if v := sampleOf(t, reg, "vectorheal_repair_next_allowed_timestamp_seconds", "t_v_idx"); v != float64(s.NextAllowed.Unix()) {
		t.Fatalf("next allowed metric %g, want %d", v, s.NextAllowed.Unix())
	}

	// The earlier repair leaves the window: the held one runs.
	if _, err := b.state.Exec(b.ctx, `UPDATE repairs SET started_at = started_at - interval '2 hours',
		finished_at = finished_at - interval '2 hours' WHERE id <> $1`, held.ID); err != nil {
		t.Fatal(err)
	}
	rs := b.waitRepairs(t, 2, "succeeded")
	if rs[1].Reason != "" || rs[1].Error != "" {
		t.Fatalf("repair ran with reason %q, error %q left", rs[1].Reason, rs[1].Error)
	}
	budgets, err = e.Budgets(b.ctx)
	if err != nil || len(budgets) != 1 || !budgets[0].Allowed || budgets[0].UsedRatio >= 0.1 {
		t.Fatalf("budgets after %+v (%v)", budgets, err)
	}
}

// waitFor polls f until it reports done.
func waitFor[T any](t *testing.T, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		v, done := f()
		if done {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("gave up waiting; last %+v", v)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// sampleOf returns the value of the gauge or counter sample of name with a label of value
// labelValue.
func sampleOf(t *testing.T, reg *prometheus.Registry, name, labelValue string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetValue() == labelValue && m.GetCounter() != nil {
					return m.GetCounter().GetValue()
				}
				if l.GetValue() == labelValue {
					return m.GetGauge().GetValue()
				}
			}
		}
	}
	t.Fatalf("metric %s{…=%q} not found", name, labelValue)
	return 0
}
