package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/engine"
)

const okRunbook = `
entries:
  - name: fix-it
    matchers: ['alertname="VecTest"']
    priority: 80
    cooldown: 0s
    steps:
      - strategy: ok
        params: {sleep: 0.05}
        validate: {figure: fake_figure, op: "<=", value: 1, wait: 0s, attempts: 1}
`

// TestFiringAlertRunsRepairOnce: a firing alert runs the matched repair, recorded with its
// steps; the same notification posted twice gives one repair.
func TestFiringAlertRunsRepairOnce(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, okRunbook)
	e := b.engine(t, rb, nil)
	a := alert("VecTest", "firing", time.Now().Add(-time.Minute), map[string]string{"datname": b.datname(t)})
	b.notify(t, e, a)
	b.notify(t, e, a)
	rs := b.waitRepairs(t, 1, "succeeded")
	if rs[0].Entry != "fix-it" || rs[0].Runner != e.ID() {
		t.Fatalf("repair %+v, want entry fix-it run by %s", rs[0], e.ID())
	}
	if n := b.fakes.okRuns.Load(); n != 1 {
		t.Fatalf("strategy ran %d times, want 1", n)
	}
	r, err := e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 1 || r.Steps[0].State != "succeeded" || len(r.Steps[0].Statements) != 1 ||
		r.Steps[0].Impact == nil || r.Steps[0].Impact.LockLevel != "NONE" || r.Steps[0].After["fake_figure"] != 0 {
		t.Fatalf("steps recorded %+v", r.Steps)
	}
	var v struct {
		Passed bool `json:"passed"`
		Tries  int  `json:"tries"`
	}
	if err := json.Unmarshal(r.Steps[0].Validation, &v); err != nil || !v.Passed || v.Tries != 1 {
		t.Fatalf("validation recorded %s (%v)", r.Steps[0].Validation, err)
	}
	// A second, later alert of the same kind runs again once the index is unhealthy again:
	// the per-alert key, not the index, makes a repair unique.
	if _, err := b.target.Exec(b.ctx, `DELETE FROM public.fake_figures`); err != nil {
		t.Fatal(err)
	}
	b.notify(t, e, alert("VecTest", "firing", time.Now(), map[string]string{"datname": b.datname(t)}))
	b.waitRepairs(t, 2, "succeeded")
}

// TestAlreadyHealthySkips: a repair whose index already meets its first step's validation
// (another alert's repair healed it meanwhile) is skipped without running anything.
func TestAlreadyHealthySkips(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, okRunbook)
	e := b.engine(t, rb, nil)
	b.setFigure(t, 0.5)
	b.notify(t, e, alert("VecTest", "firing", time.Now().Add(-time.Minute), map[string]string{"datname": b.datname(t)}))
	rs := b.waitRepairs(t, 1, "skipped")
	if rs[0].Reason != "already_healthy" || !strings.Contains(rs[0].Error, "fake_figure = 0.5 already meets <= 1") {
		t.Fatalf("repair %+v, want skipped as already_healthy with the figure", rs[0])
	}
	if n := b.fakes.okRuns.Load(); n != 0 {
		t.Fatalf("strategy ran %d times on a healthy index", n)
	}
}

// TestResolvedCancelsQueued: resolved cancels a repair still waiting; approval makes a
// repair wait until approved.
func TestResolvedCancelsQueuedAndApproval(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, okRunbook+`
  - name: careful
    matchers: ['alertname="NeedsApproval"']
    approval: required
    steps:
      - strategy: ok
`)
	// An intake-only engine queues without running anything.
	intake := b.engine(t, rb, func(o *engine.Options) { o.Workers = false })
	start := time.Now().Add(-time.Minute)
	b.notify(t, intake, alert("VecTest", "firing", start, nil))
	b.notify(t, intake, alert("NeedsApproval", "firing", start, nil))
	rs := b.repairs(t)
	if len(rs) != 2 || rs[0].State != "queued" || rs[1].State != "awaiting_approval" || rs[1].Reason != "approval_pending" {
		t.Fatalf("repairs %+v, want queued and awaiting_approval", rs)
	}
	b.notify(t, intake, alert("VecTest", "resolved", start, nil))
	rs = b.repairs(t)
	if rs[0].State != "cancelled" || rs[0].Reason != "resolved" {
		t.Fatalf("repair after resolved: %+v", rs[0])
	}
	var jobState string
	if err := b.state.QueryRow(b.ctx, `SELECT j.state FROM river_job j JOIN repairs r ON r.job_id = j.id WHERE r.id = $1`,
		rs[0].ID).Scan(&jobState); err != nil || jobState != "cancelled" {
		t.Fatalf("river job is %q (%v), want cancelled", jobState, err)
	}
	// An approved repair waiting for its turn outlives its alert's resolution: a person's
	// decision is not taken back by a figure flapping over its threshold.
	if err := intake.Approve(b.ctx, rs[1].ID, "alice"); err != nil {
		t.Fatal(err)
	}
	b.notify(t, intake, alert("NeedsApproval", "resolved", start, nil))
	if r := b.repairs(t)[1]; r.State != "queued" || r.Approved != "alice" {
		t.Fatalf("approved repair after its alert resolved: %+v, want it still queued", r)
	}
	worker := b.engine(t, rb, nil)
	if err := worker.Approve(b.ctx, rs[0].ID, "alice"); err == nil {
		t.Fatal("approving a cancelled repair worked")
	}
	rs = b.waitRepairs(t, 2, "cancelled", "succeeded")
	if rs[1].State != "succeeded" || rs[1].Approved != "alice" {
		t.Fatalf("approved repair %+v", rs[1])
	}
	if n := b.fakes.okRuns.Load(); n != 1 {
		t.Fatalf("strategy ran %d times, want 1 (the approved repair only)", n)
	}
}

// TestFailingRepairRollsBackAndOpensCircuit: a step whose validation fails is rolled back
// and recorded; after K failures in a row the circuit opens and the next alert is skipped.
func TestFailingRepairRollsBackAndOpensCircuit(t *testing.T) {
	b := setup(t)
	b.cfg.CircuitBreakerFailures = 2
	b.setFigure(t, 5)
	rb := b.parseRunbook(t, `
entries:
  - name: ladder
    matchers: ['alertname="VecTest"']
    cooldown: 0s
    steps:
      - strategy: fail
        params: {error: "boom"}
      - strategy: ok
        validate: {figure: fake_figure, op: "<", value: 1, wait: 0s, attempts: 2}
`)
	reg := prometheus.NewRegistry()
	e := b.engine(t, rb, func(o *engine.Options) { o.Registerer = reg })
	dat := b.datname(t)
	for i := range 3 {
		b.notify(t, e, alert("VecTest", "firing", time.Now().Add(time.Duration(-i)*time.Minute), map[string]string{"datname": dat}))
		b.waitRepairs(t, i+1, "rolled_back", "skipped")
	}
	rs := b.repairs(t)
	for i, want := range []string{"rolled_back", "rolled_back", "skipped"} {
		if rs[i].State != want {
			t.Fatalf("repair %d is %s (%s), want %s; all: %+v", i, rs[i].State, rs[i].Reason, want, rs)
		}
	}
	if rs[2].Reason != "circuit_open" {
		t.Fatalf("third repair skipped for %q, want circuit_open", rs[2].Reason)
	}
	// Both steps of both repairs were rolled back: fail escalated to ok, ok did not validate.
	if f, o := b.rollbacks(t, "fail"), b.rollbacks(t, "ok"); f != 2 || o != 2 {
		t.Fatalf("rollbacks fail=%d ok=%d, want 2 and 2", f, o)
	}
	r, err := e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 2 || r.Steps[0].State != "rolled_back" || !strings.Contains(r.Steps[0].Error, "boom") ||
		r.Steps[1].State != "rolled_back" || r.Steps[1].After["fake_figure"] != 5 || string(r.Steps[1].Undo) != `{"ok": true}` {
		t.Fatalf("steps %+v", r.Steps)
	}
	if got := testutil.ToFloat64(gaugeOf(t, reg, "vectorheal_circuit_open")); got != 1 {
		t.Fatalf("vectorheal_circuit_open = %g, want 1", got)
	}
	if got := testutil.ToFloat64(counterOf(t, reg, "vectorheal_repair_skips_total", "circuit_open")); got != 1 {
		t.Fatalf("skips{circuit_open} = %g", got)
	}
	if _, err := e.ResetCircuit(b.ctx, "db1", "", "public", "t_v_idx", "bob"); err != nil {
		t.Fatal(err)
	}
	cs, err := e.Circuits(b.ctx)
	if err != nil || len(cs) != 1 || cs[0].Open || cs[0].ResetBy != "bob" {
		t.Fatalf("circuits after reset %+v (%v)", cs, err)
	}
}

// gaugeOf returns the single sample of a metric family as a collector for testutil.
func gaugeOf(t *testing.T, reg *prometheus.Registry, name string) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "x"},
				func() float64 { return mf.GetMetric()[0].GetGauge().GetValue() })
		}
	}
	t.Fatalf("metric %s with one sample not found", name)
	return nil
}

func counterOf(t *testing.T, reg *prometheus.Registry, name, labelValue string) prometheus.Collector {
	t.Helper()
	v := sampleOf(t, reg, name, labelValue)
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: "x"}, func() float64 { return v })
}

// TestTimeoutCancelsSQL: the repair's timeout cancels the statement running in PostgreSQL.
func TestTimeoutCancelsSQL(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, `
entries:
  - name: slow
    matchers: ['alertname="VecTest"']
    timeout: 1s
    steps:
      - strategy: block
`)
	e := b.engine(t, rb, nil)
	b.notify(t, e, alert("VecTest", "firing", time.Now(), nil))
	rs := b.waitRepairs(t, 1, "rolled_back", "failed")
	if rs[0].State != "rolled_back" || rs[0].Reason != "timeout" {
		t.Fatalf("repair %+v, want rolled_back for timeout", rs[0])
	}
	if !strings.Contains(rs[0].Error, "canceling statement") && !strings.Contains(rs[0].Error, "context deadline") {
		t.Fatalf("error %q does not say the statement was cancelled", rs[0].Error)
	}
	var running int
	if err := b.target.QueryRow(b.ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE query LIKE '%vectorheal-block%' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&running); err != nil {
		t.Fatal(err)
	}
	if running != 0 {
		t.Fatalf("%d pg_sleep statements still running after the timeout", running)
	}
	if b.rollbacks(t, "block") != 1 {
		t.Fatal("timed-out step was not rolled back")
	}
}

// TestBadLabelsNothingRuns: labels naming no index, or carrying SQL or shell text, are
// skipped with a reason and nothing runs. Hostile text is refused because the catalog knows
// no object of that name, not for its characters (any name PostgreSQL accepts is healable).
func TestBadLabelsNothingRuns(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, okRunbook)
	e := b.engine(t, rb, nil)
	now := time.Now()
	cases := []struct{ label, value, reason string }{
		{"indexrelname", "t_v_idx; DROP TABLE public.t", "index_not_found"},
		{"indexrelname", "$(rm -rf /)", "index_not_found"},
		{"schemaname", "public' OR '1'='1", "index_not_found"},
		{"indexrelname", "no_such_index", "index_not_found"},
		{"indexrelname", "t_pkey", "index_not_found"},
		{"target", "elsewhere", "unknown_target"},
		{"datname", "otherdb", "index_not_found"},
	}
	var alerts []map[string]any
	for i, c := range cases {
		alerts = append(alerts, alert("VecTest", "firing", now, map[string]string{c.label: c.value, "case": strconv.Itoa(i)}))
	}
	b.notify(t, e, alerts...)
	b.waitRepairs(t, len(cases), "skipped")
	rows, err := b.state.Query(b.ctx, `SELECT (labels->>'case')::int, reason, error FROM repairs`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var (
			i              int
			reason, detail string
		)
		if err := rows.Scan(&i, &reason, &detail); err != nil {
			t.Fatal(err)
		}
		if reason != cases[i].reason {
			t.Errorf("%s=%q skipped for %q (%s), want %q", cases[i].label, cases[i].value, reason, detail, cases[i].reason)
		}
	}
	if n := b.fakes.okRuns.Load(); n != 0 {
		t.Fatalf("strategy ran %d times", n)
	}
	var exists bool
	if err := b.target.QueryRow(b.ctx, `SELECT to_regclass('public.t') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		t.Fatalf("table t is gone (%v)", err)
	}
}

// TestPartitionedParentRefused: a partitioned table's index has no storage, and any statement
// on it would act on every partition at once. An alert naming it is skipped as
// partitioned_index, naming the partitions' indexes that are repaired one at a time; a manual
// repair of it is refused.
func TestPartitionedParentRefused(t *testing.T) {
	b := setup(t)
	for _, q := range []string{
		`CREATE TABLE parts (id int, v vector(3)) PARTITION BY RANGE (id)`,
		`CREATE TABLE parts_a PARTITION OF parts FOR VALUES FROM (0) TO (10)`,
		`CREATE TABLE parts_b PARTITION OF parts FOR VALUES FROM (10) TO (20)`,
		`CREATE INDEX parts_v_idx ON parts USING hnsw (v vector_l2_ops)`,
	} {
		if _, err := b.target.Exec(b.ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e := b.engine(t, b.parseRunbook(t, okRunbook), nil)
	b.notify(t, e, alert("VecTest", "firing", time.Now(), map[string]string{"relname": "parts", "indexrelname": "parts_v_idx"}))
	rs := b.waitRepairs(t, 1, "skipped")
	if rs[0].Reason != "partitioned_index" || !strings.Contains(rs[0].Error, "public.parts_a_v_idx, public.parts_b_v_idx") {
		t.Errorf("repair of the parent skipped for %q: %s; want partitioned_index naming both partitions' indexes", rs[0].Reason, rs[0].Error)
	}
	if n := b.fakes.okRuns.Load(); n != 0 {
		t.Fatalf("strategy ran %d times", n)
	}
	_, err := e.Trigger(b.ctx, engine.TriggerRequest{Target: "db1", Schema: "public", Index: "parts_v_idx", Strategy: "ok"}, "test")
	if !errors.Is(err, engine.ErrInvalid) || !strings.Contains(err.Error(), "partitioned table") {
		t.Errorf("manual repair of the parent: %v, want it refused as the index of a partitioned table", err)
	}
}

// TestDryRunRecordsPlanOnly: a dry run records the impact and runs nothing.
func TestDryRunRecordsPlanOnly(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, `
entries:
  - name: look
    matchers: ['alertname="VecTest"']
    dry_run: true
    steps:
      - strategy: ok
      - strategy: vacuum
`)
	e := b.engine(t, rb, nil)
	b.notify(t, e, alert("VecTest", "firing", time.Now(), nil))
	rs := b.waitRepairs(t, 1, "dry_run")
	r, err := e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if len(r.Steps) != 2 || r.Steps[1].State != "dry_run" || r.Steps[1].Impact == nil || len(r.Steps[1].Impact.Statements) == 0 {
		t.Fatalf("dry-run steps %+v", r.Steps)
	}
	if !strings.Contains(r.Steps[1].Impact.Statements[0], "VACUUM") {
		t.Fatalf("vacuum plan %v", r.Steps[1].Impact.Statements)
	}
	if n := b.fakes.okRuns.Load(); n != 0 {
		t.Fatalf("dry run ran the strategy %d times", n)
	}
}

// TestRealVacuumValidated: the real vacuum strategy removes dead tuples after deletes, and
// validation re-measures them in the database.
func TestRealVacuumValidated(t *testing.T) {
	b := setup(t)
	if _, err := b.target.Exec(b.ctx, `ALTER TABLE public.t SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	if _, err := b.target.Exec(b.ctx, `DELETE FROM public.t WHERE id % 2 = 0`); err != nil {
		t.Fatal(err)
	}
	var dead float64
	deadline := time.Now().Add(20 * time.Second)
	for dead == 0 && time.Now().Before(deadline) {
		var err error
		if dead, err = b.measurer.Measure(b.ctx, b.target, mustIndex(t, b), "pgvector_table_dead_tuples"); err != nil {
			t.Fatal(err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if dead == 0 {
		t.Fatal("deletes left no dead tuples in the statistics")
	}
	rb := b.parseRunbook(t, vacuumDeadRunbook)
	e := b.engine(t, rb, nil)
	b.notify(t, e, alert("DeadTuples", "firing", time.Now(), map[string]string{"datname": b.datname(t)}))
	rs := b.waitRepairs(t, 1, "succeeded", "rolled_back", "failed")
	r, err := e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].State != "succeeded" {
		t.Fatalf("vacuum repair %+v, steps %+v", rs[0], r.Steps)
	}
	st := r.Steps[0]
	if st.Before["pgvector_table_dead_tuples"] != dead || st.After["pgvector_table_dead_tuples"] != 0 ||
		len(st.Statements) == 0 || !strings.Contains(st.Statements[0], "VACUUM") {
		t.Fatalf("vacuum step %+v, want %g dead before and 0 after", st, dead)
	}
}

func mustIndex(t *testing.T, b *bundle) catalog.Index {
	t.Helper()
	ix, err := catalog.Resolve(b.ctx, b.target, "public", "t_v_idx")
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestPrune deletes finished history past the retention.
func TestPrune(t *testing.T) {
	b := setup(t)
	rb := b.parseRunbook(t, okRunbook)
	e := b.engine(t, rb, nil)
	b.notify(t, e, alert("VecTest", "firing", time.Now(), nil))
	rs := b.waitRepairs(t, 1, "succeeded")
	if _, err := b.state.Exec(b.ctx, `UPDATE repairs SET finished_at = now() - interval '2000 hours' WHERE id = $1`, rs[0].ID); err != nil {
		t.Fatal(err)
	}
	n, err := e.Prune(context.Background())
	if err != nil || n < 1 {
		t.Fatalf("pruned %d rows (%v)", n, err)
	}
	if got := b.repairs(t); len(got) != 0 {
		t.Fatalf("repairs left after prune: %+v", got)
	}
}

// TestGuards: cooldown per entry and index, the flap guard over all entries, and maintenance
// windows each skip a repair with their reason: each holds longer than the budget window of
// the tests, so the repair does not wait. The window opens after the flap guard lets go, so
// it is the rule that holds longest.
func TestGuards(t *testing.T) {
	b := setup(t)
	b.cfg.FlapMaxRepairs = 2
	now := time.Now().UTC()
	later := func(h time.Duration) string { return now.Add(h).Format("15:04") }
	rb := b.parseRunbook(t, `
entries:
  - name: cool
    matchers: ['alertname="Cool"']
    cooldown: 1h
    steps: [{strategy: ok}]
  - name: hot
    matchers: ['alertname="Hot"']
    cooldown: 0s
    steps: [{strategy: ok}]
  - name: night
    matchers: ['alertname="Night"']
    windows: [{start: "`+later(7*time.Hour)+`", end: "`+later(8*time.Hour)+`"}]
    steps: [{strategy: ok}]
`)
	e := b.engine(t, rb, nil)
	dat := b.datname(t)
	steps := []struct {
		alert, state, reason string
	}{
		{"Cool", "succeeded", ""},
		{"Cool", "skipped", "cooldown"},
		{"Hot", "succeeded", ""},
		{"Hot", "skipped", "flapping"}, // two repairs of the index within the flap window
		{"Night", "skipped", "window"},
	}
	for i, s := range steps {
		b.notify(t, e, alert(s.alert, "firing", now.Add(time.Duration(-i)*time.Minute), map[string]string{"datname": dat}))
		rs := b.waitRepairs(t, i+1, "succeeded", "skipped")
		if got := rs[i]; got.State != s.state || got.Reason != s.reason {
			t.Fatalf("alert %d (%s): %s/%s, want %s/%s", i, s.alert, got.State, got.Reason, s.state, s.reason)
		}
	}
}

// TestPriorityOrder: with one worker, queued repairs run by runbook priority (the seed's
// score mapped onto River's priorities), not by arrival.
func TestPriorityOrder(t *testing.T) {
	b := setup(t)
	b.cfg.MaxConcurrentRepairs = 1
	rb := b.parseRunbook(t, `
entries:
  - {name: low, matchers: ['alertname="Low"'], priority: 20, steps: [{strategy: ok}]}
  - {name: mid, matchers: ['alertname="Mid"'], priority: 50, steps: [{strategy: ok}]}
  - {name: top, matchers: ['alertname="Top"'], priority: 100, steps: [{strategy: ok}]}
`)
	intake := b.engine(t, rb, func(o *engine.Options) { o.Workers = false })
	now := time.Now()
	for _, name := range []string{"Low", "Mid", "Top"} {
		b.notify(t, intake, alert(name, "firing", now, nil))
	}
	b.engine(t, rb, nil)
	rs := b.waitRepairs(t, 3, "succeeded")
	sort.Slice(rs, func(i, j int) bool { return rs[i].Started.Before(*rs[j].Started) })
	if rs[0].Entry != "top" || rs[1].Entry != "mid" || rs[2].Entry != "low" {
		t.Fatalf("run order %s, %s, %s; want top, mid, low", rs[0].Entry, rs[1].Entry, rs[2].Entry)
	}
}
