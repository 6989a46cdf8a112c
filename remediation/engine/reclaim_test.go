package engine_test

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/pgvector"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/strategy/strategytest"
)

// reclaimBundle registers the shipped strategies and the exporter's Measurer, and churns
// t_v_idx: 20 % of t's rows deleted.
func reclaimBundle(t *testing.T) (*bundle, strategy.Measurer) {
	t.Helper()
	b := setup(t)
	b.reg = mustDefault(t)
	for _, q := range []string{`ALTER TABLE public.t SET (autovacuum_enabled = false)`, `DELETE FROM public.t WHERE id % 5 = 0`} {
		if _, err := b.target.Exec(b.ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	chk := config.Check{Interval: time.Minute, Timeout: time.Minute}
	return b, exporter.NewMeasurer(config.Exporter{Structure: config.StructureCheck{Check: chk}, Recall: config.RecallCheck{Check: chk, Queries: 10, K: 10},
		StatisticsTimeout: 10 * time.Second, PageBatch: 64})
}

const reclaimRunbook = `
entries:
  - name: reclaim-it
    matchers: ['alertname="VecTest"']
    cooldown: 0s
    steps:
      - strategy: reclaim
        validate: {figure: "pgvector_hnsw_heap_tids:dead", op: "<", value: 1}
`

// A reclaim run by the engine records in its impact the estimate it chose by and the pgvector
// version installed; the next reclaim of the index scales its estimate by that run's duration,
// read back from history.
func TestReclaimImpactAndHistory(t *testing.T) {
	b, m := reclaimBundle(t)
	rb, err := runbook.Parse("runbook.yml", []byte(reclaimRunbook), b.reg, m.Figures())
	if err != nil {
		t.Fatal(err)
	}
	reads := &strategytest.PageReads{Measurer: m}
	e := b.engine(t, rb, func(o *engine.Options) { o.Measurer = reads })
	in, err := pgvector.Installed(b.ctx, b.target)
	if err != nil {
		t.Fatal(err)
	}
	var impacts []*strategy.Impact
	for i := range 2 {
		reads.Reset()
		b.notify(t, e, alert("VecTest", "firing", time.Now().Add(time.Duration(i)*time.Second), map[string]string{"datname": b.datname(t)}))
		rs := b.waitRepairs(t, i+1, "succeeded", "failed", "rolled_back")
		r, err := e.Repair(b.ctx, rs[i].ID)
		if err != nil {
			t.Fatal(err)
		}
		if rs[i].State != "succeeded" || len(r.Steps) != 1 || r.Steps[0].Impact == nil || r.Steps[0].Impact.Cost == nil {
			t.Fatalf("repair %d: %+v, steps %+v", i, rs[i], r.Steps)
		}
		im := r.Steps[0].Impact
		t.Logf("repair %d impact: %s; estimated %s", i, im.Notes, im.EstimatedDuration)
		c := im.Cost
		if c.PgvectorVersion != in.Raw || !strings.HasPrefix(im.Notes, "chose "+string(c.Path)) || c.Reason == "" {
			t.Errorf("repair %d: cost %+v, notes %q: want pgvector %s and the reason", i, c, im.Notes, in.Raw)
		}
		if im.EstimatedDuration <= 0 {
			t.Errorf("repair %d: no estimated duration", i)
		}
		// Once before: the engine's check that the index is not already healthy, whose
		// reading the plan chooses on and the run records as before; once after: the run's
		// reading, which the validation takes.
		if n := reads.Count(); n != 2 {
			t.Errorf("repair %d read the index pages %d times, want 2 (before and after)", i, n)
		}
		impacts = append(impacts, im)
		if _, err := b.target.Exec(b.ctx, `DELETE FROM public.t WHERE id IN (SELECT id FROM public.t ORDER BY id LIMIT 40)`); err != nil {
			t.Fatal(err)
		}
	}
	first, second := impacts[0].Cost, impacts[1].Cost
	for _, est := range second.Estimates {
		want := 0
		if est.Path == first.Path {
			want = 1
		}
		if est.FromHistory != want {
			t.Errorf("second reclaim: %s estimate from %d earlier runs, want %d (the first ran %s)", est.Path, est.FromHistory, want, first.Path)
		}
	}
	if !strings.Contains(second.Reason, "from 1 earlier runs") {
		t.Errorf("second reason %q does not say it used history", second.Reason)
	}
}

// A rebuild whose free space comes from a Prometheus query (here a real Prometheus answering
// a constant) is refused when it does not fit, naming the query and the shortfall, and leaves
// no _ccnew index behind.
func TestBuildRefusedByPrometheusFreeSpace(t *testing.T) {
	b, m := reclaimBundle(t)
	prom := testenv.StartPrometheus(t, "global:\n  scrape_interval: 1m\n")
	var size int64
	if err := b.target.QueryRow(b.ctx, `SELECT pg_relation_size('public.t_v_idx')`).Scan(&size); err != nil {
		t.Fatal(err)
	}
	query := fmt.Sprintf("vector(%d)", size/2)
	ts, err := targets.Open(b.ctx, []config.Target{{Name: "db1", DSN: config.Secret{Value: b.dsn}, MaxConnections: 8,
		Builds: config.Builds{FreeSpaceQuery: query, PrometheusURL: prom.URL}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	rb, err := runbook.Parse("runbook.yml", []byte(`
entries:
  - name: rebuild-it
    matchers: ['alertname="VecTest"']
    cooldown: 0s
    steps:
      - strategy: reindex
`), b.reg, m.Figures())
	if err != nil {
		t.Fatal(err)
	}
	e := b.engine(t, rb, func(o *engine.Options) { o.Measurer, o.Targets = m, ts })
	b.notify(t, e, alert("VecTest", "firing", time.Now(), map[string]string{"datname": b.datname(t)}))
	rs := b.waitRepairs(t, 1, "succeeded", "failed", "rolled_back")
	r, err := e.Repair(b.ctx, rs[0].ID)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].State == "succeeded" || len(r.Steps) != 1 {
		t.Fatalf("repair %+v, steps %+v: want the build refused", rs[0], r.Steps)
	}
	msg := r.Steps[0].Error
	want := fmt.Sprintf("Prometheus query builds.free_space_query %s of target \"db1\"", query)
	if !strings.Contains(msg, want) || !strings.Contains(msg, "short by") {
		t.Errorf("step error %q: want the query (%s) and the shortfall", msg, want)
	}
	var n int
	if err := b.target.QueryRow(b.ctx, `SELECT count(*) FROM pg_class WHERE relname LIKE 't_v_idx%' AND relkind = 'i'`).Scan(&n); err != nil || n != 2 {
		t.Errorf("%d indexes named t_v_idx*, want t_v_idx and t_v_idx2 only (%v)", n, err)
	}
}
