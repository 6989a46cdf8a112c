package engine_test

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
)

// realRecall sets the bundle up with vectorheal's own strategies, the exporter's Measurer
// and the default runbook (deploy/runbook.yml, edited by edit), over a table of tight
// clusters far apart indexed with m = 4, ef_construction = 8: a graph of islands whose recall
// no ef_search up to tune_search's bound lifts to the target.
func realRecall(t *testing.T, edit func(string) string) (*bundle, *engine.Engine, catalog.Index) {
	t.Helper()
	b := setup(t)
	b.reg = mustDefault(t)
	chk := config.Check{Interval: time.Minute, Timeout: time.Minute}
	m := exporter.NewMeasurer(config.Exporter{Structure: config.StructureCheck{Check: chk}, Recall: config.RecallCheck{Check: chk, Queries: 50, K: 10},
		StatisticsTimeout: 10 * time.Second, PageBatch: 64})
	data, err := os.ReadFile("../../deploy/runbook.yml")
	if err != nil {
		t.Fatal(err)
	}
	yml := string(data)
	if edit != nil {
		yml = edit(yml)
	}
	rb, err := runbook.Parse("deploy/runbook.yml", []byte(yml), b.reg, m.Figures())
	if err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE public.items (id bigserial PRIMARY KEY, emb vector(32)) WITH (autovacuum_enabled = false)`,
		`CREATE TABLE public.centers AS SELECT c, array_agg(random()::real) AS v FROM generate_series(1, 100) c,
			generate_series(1, 32) d GROUP BY c`,
		`INSERT INTO public.items (emb) SELECT (SELECT array_agg(v[d] + (random() - 0.5) * 0.02) FROM generate_series(1, 32) d)::vector
			FROM public.centers, generate_series(1, 100) i`,
		`DROP TABLE public.centers`,
		`ANALYZE public.items`,
		`CREATE INDEX items_hnsw ON public.items USING hnsw (emb vector_l2_ops) WITH (m = 4, ef_construction = 8)`,
	} {
		if _, err := b.target.Exec(b.ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	e := b.engine(t, rb, func(o *engine.Options) { o.Strategies, o.Measurer = b.reg, m })
	ix, err := catalog.Resolve(b.ctx, b.target, "public", "items_hnsw")
	if err != nil {
		t.Fatal(err)
	}
	recall, err := m.Measure(b.ctx, b.target, ix, "pgvector_recall_ratio")
	if err != nil || recall >= 0.9 {
		t.Fatalf("precondition: recall %.3f (%v) of the m = 4 graph, want below the alert's 0.9", recall, err)
	}
	t.Logf("recall of the m = 4 graph: %.3f", recall)
	b.notify(t, e, alert("PgvectorRecallBelowTarget", "firing", time.Now().Add(-20*time.Minute),
		map[string]string{"relname": "items", "indexrelname": "items_hnsw", "severity": "warning"}))
	return b, e, ix
}

// awaitRebuildApproval waits until the recall repair stopped before its rebuild step and
// checks what it recorded: tune_search tried and was undone, the rebuild's impact planned.
func awaitRebuildApproval(t *testing.T, b *bundle, e *engine.Engine) engine.Repair {
	t.Helper()
	var r engine.Repair
	waitLong(t, "the recall repair waits for approval of its rebuild", func() bool {
		rs := b.repairs(t)
		if len(rs) != 1 {
			return false
		}
		if rs[0].State != "queued" && rs[0].State != "running" && rs[0].State != "awaiting_approval" {
			t.Fatalf("repair ended %s (%s): %s", rs[0].State, rs[0].Reason, rs[0].Error)
		}
		if rs[0].State != "awaiting_approval" {
			return false
		}
		var err error
		if r, err = e.Repair(b.ctx, rs[0].ID); err != nil {
			t.Fatal(err)
		}
		return true
	})
	if r.Reason != "step_approval_pending" || r.Entry != "recall-below-target" || len(r.Steps) != 2 {
		t.Fatalf("repair %+v: want recall-below-target waiting for its step's approval", r)
	}
	tune, rebuild := r.Steps[0], r.Steps[1]
	if tune.Strategy != "tune_search" || tune.State != "rolled_back" || !strings.Contains(tune.Error, "below target") {
		t.Errorf("tune_search step %+v: want it to miss the target within its bounds and be undone", tune)
	}
	var setting int
	if err := b.target.QueryRow(b.ctx, `SELECT count(*) FROM pg_db_role_setting s, unnest(s.setconfig) c WHERE c LIKE 'hnsw.ef_search=%'`).Scan(&setting); err != nil || setting != 0 {
		t.Errorf("hnsw.ef_search stored %d times (%v) after tune_search was undone", setting, err)
	}
	if rebuild.Strategy != "hnsw_rebuild" || rebuild.State != "planned" || rebuild.Impact == nil ||
		!strings.Contains(strings.Join(rebuild.Impact.Statements, "\n"), "WITH (m = 16, ef_construction = 64)") ||
		!strings.Contains(rebuild.Impact.Notes, "m 4 -> 16") || rebuild.Impact.DiskBytesNeeded <= 0 || rebuild.Impact.EstimatedDuration <= 0 {
		t.Fatalf("rebuild step %+v (impact %+v): want it planned with the new definition, its size and build time", rebuild, rebuild.Impact)
	}
	return r
}

// waitLong is waitUntil with room for tune_search's tries and an index build on a loaded
// machine.
func waitLong(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func indexesOf(t *testing.T, b *bundle, table string) []string {
	t.Helper()
	rows, err := b.target.Query(b.ctx, `SELECT c.relname || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

// TestRecallBelowTargetRebuildsWithLargerParametersOnceApproved: the default runbook's
// answer to recall that ef_search cannot lift is an hnsw_rebuild waiting for approval; once
// approved, the new index (m = 16) replaces the old one and the step is validated by the
// recall measured on it.
func TestRecallBelowTargetRebuildsWithLargerParametersOnceApproved(t *testing.T) {
	b, e, old := realRecall(t, nil)
	r := awaitRebuildApproval(t, b, e)
	before := r.Steps[0].Before["pgvector_recall_ratio"]

	if err := e.Approve(b.ctx, r.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the approved rebuild ends", func() bool {
		rs := b.repairs(t)
		return len(rs) == 1 && (rs[0].State == "succeeded" || rs[0].State == "failed" || rs[0].State == "rolled_back")
	})
	rs := b.repairs(t)
	r, err := e.Repair(b.ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].State != "succeeded" || r.ApprovedBy != "alice" {
		t.Fatalf("repair %+v, steps %+v: want it approved by alice and succeeded", r, r.Steps)
	}
	rebuild := r.Steps[1]
	var v struct {
		Passed   bool     `json:"passed"`
		Measured *float64 `json:"measured"`
	}
	if err := json.Unmarshal(rebuild.Validation, &v); err != nil || !v.Passed || v.Measured == nil {
		t.Fatalf("rebuild validation %s (%v): want a passed validation with the measured recall", rebuild.Validation, err)
	}
	t.Logf("recall %.3f before, %.3f measured after the rebuild; gate %.3f", before, *v.Measured, rebuild.After["new_index_pgvector_recall_ratio"])
	if *v.Measured <= before || *v.Measured < 0.9 {
		t.Errorf("recall after the rebuild %.3f, before %.3f: want higher and at least 0.9", *v.Measured, before)
	}
	now, err := catalog.Resolve(b.ctx, b.target, "public", "items_hnsw")
	if err != nil {
		t.Fatal(err)
	}
	if now.OID == old.OID || now.M != 16 || now.EfConstruction != 64 {
		t.Errorf("index after the rebuild: oid %d (old %d), m %d, ef_construction %d", now.OID, old.OID, now.M, now.EfConstruction)
	}
	if got := indexesOf(t, b, "public.items"); strings.Join(got, ",") != "items_hnsw,items_pkey" {
		t.Errorf("indexes of items: %v, want the rebuilt one under its name, the old one gone", got)
	}
}

// TestRecallRebuildMissingItsBudgetKeepsTheOldIndex: a latency budget no search can meet
// makes the approved rebuild miss; the old index stays as it was, nothing is left behind.
func TestRecallRebuildMissingItsBudgetKeepsTheOldIndex(t *testing.T) {
	b, e, old := realRecall(t, func(yml string) string {
		return strings.Replace(yml, "latency_budget: 100ms", "latency_budget: 1ns", 1)
	})
	r := awaitRebuildApproval(t, b, e)
	if err := e.Approve(b.ctx, r.ID, "alice"); err != nil {
		t.Fatal(err)
	}
	waitLong(t, "the approved rebuild ends", func() bool {
		rs := b.repairs(t)
		return len(rs) == 1 && (rs[0].State == "succeeded" || rs[0].State == "failed" || rs[0].State == "rolled_back")
	})
	rs := b.repairs(t)
	r, err := e.Repair(b.ctx, r.ID)
	if err != nil {
		t.Fatal(err)
	}
	if rs[0].State != "rolled_back" || r.Steps[1].State != "rolled_back" || !strings.Contains(r.Steps[1].Error, "exceeds latency_budget") {
		t.Fatalf("repair %s, rebuild step %+v: want the miss rolled back", rs[0].State, r.Steps[1])
	}
	now, err := catalog.Resolve(b.ctx, b.target, "public", "items_hnsw")
	if err != nil {
		t.Fatal(err)
	}
	if now.OID != old.OID || now.M != 4 {
		t.Errorf("index after the miss: oid %d (old %d), m %d: want the old index untouched", now.OID, old.OID, now.M)
	}
	if got := indexesOf(t, b, "public.items"); strings.Join(got, ",") != "items_hnsw,items_pkey" {
		t.Errorf("indexes of items: %v, want the old one only, nothing INVALID, no _vhnew", got)
	}
}
