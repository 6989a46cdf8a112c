package strategy_test

import (
	"context"
	"strconv"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// dbSetting returns the value of setting stored for the current database (role 0), or "".
func (b *bundle) dbSetting(t *testing.T, role, setting string) string {
	t.Helper()
	var cfg []string
	err := b.pool.QueryRow(context.Background(), `SELECT coalesce((SELECT setconfig FROM pg_db_role_setting
		WHERE setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database())
		  AND setrole = coalesce((SELECT oid FROM pg_roles WHERE rolname = $1), 0)), '{}')`, role).Scan(&cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, kv := range cfg {
		if v, ok := strings.CutPrefix(kv, setting+"="); ok {
			return v
		}
	}
	return ""
}

// hardHNSW is a graph that needs a large ef_search for good recall: uniform random vectors in
// 32 dimensions, few links per element.
func hardHNSW(t *testing.T, b *bundle) catalog.Index {
	t.Helper()
	b.loadVectors(t, "items", 32, 4000, 0.7)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops) WITH (m = 4, ef_construction = 8)", "ANALYZE items")
	return b.resolve(t, "public", "items_emb")
}

func TestTuneSearchRaisesRecallBack(t *testing.T) {
	t.Run("test measurer", func(t *testing.T) {
		// A poor graph: recall grows with ef_search over several steps.
		testTuneSearchRaisesRecallBack(t, strategy.Single(testFigures, sqlMeasurer{k: 10, queries: 20}.Measure), hardHNSW, 10)
	})
	t.Run("exporter measurer", func(t *testing.T) {
		// A sound graph whose ef_search was set below k: pgvector returns at most ef_search
		// rows per scan, so recall@10 is at most 0.5, whichever rows the probe samples.
		sound := func(t *testing.T, b *bundle) catalog.Index {
			b.loadVectors(t, "items", 16, 3000, 0.71)
			b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)", "ANALYZE items")
			return b.resolve(t, "public", "items_emb")
		}
		testTuneSearchRaisesRecallBack(t, exporterMeasurer(), sound, 5)
	})
}

func testTuneSearchRaisesRecallBack(t *testing.T, m strategy.Measurer, build func(*testing.T, *bundle) catalog.Index, degraded int) {
	b := setup(t, strategy.Options{})
	b.env.Measure = m
	ctx := context.Background()
	ix := build(t, b)
	db := ix.Datname
	// Degrade: someone lowered ef_search for the database.
	b.exec(t, `ALTER DATABASE "`+db+`" SET hnsw.ef_search = `+strconv.Itoa(degraded))
	low := b.measure(t, ix, "pgvector_recall_ratio")
	if low >= 0.95 {
		t.Fatalf("precondition: recall %v with ef_search %d, want it below the target 0.95", low, degraded)
	}
	tune := b.strategy(t, "tune_search")
	p := strategy.Params{"target_recall": 0.95, "step": 30, "max": 400}
	if err := tune.CheckParams(p); err != nil {
		t.Fatal(err)
	}
	im, err := tune.Plan(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %+v", im)
	out, err := tune.Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statements %q before %v after %v undo %s", out.Statements, out.Before, out.After, out.Undo)
	if out.Before["hnsw.ef_search"] != float64(degraded) || out.Before["pgvector_recall_ratio"] >= 0.95 {
		t.Errorf("before = %v", out.Before)
	}
	// Never a value below pgvector's default (40), though the database was left at degraded
	// and degraded+step would be one.
	for _, stmt := range out.Statements {
		f := strings.Fields(stmt)
		if n, err := strconv.Atoi(strings.Trim(f[len(f)-1], "'")); err != nil || n < 40 {
			t.Errorf("statement %q: want ef_search set to 40 or more", stmt)
		}
	}
	set := b.dbSetting(t, "", "hnsw.ef_search")
	if set == strconv.Itoa(degraded) || set == "" || out.After["hnsw.ef_search"] > 400 {
		t.Errorf("ef_search now %q (after %v)", set, out.After)
	}
	if r := b.measure(t, ix, "pgvector_recall_ratio"); r < 0.95 {
		t.Errorf("recall on a new session %v, want >= 0.95 (ef_search %s)", r, set)
	}
	// Idempotent: a second run finds the target met and changes nothing.
	out2, err := tune.Run(ctx, b.env, ix, p)
	if err != nil || len(out2.Statements) != 0 || b.dbSetting(t, "", "hnsw.ef_search") != set {
		t.Errorf("second run: err %v statements %q setting %s", err, out2.Statements, b.dbSetting(t, "", "hnsw.ef_search"))
	}
	// Rollback restores what was there before.
	if err := tune.Rollback(ctx, b.env, ix, p, out.Undo); err != nil {
		t.Fatal(err)
	}
	if got := b.dbSetting(t, "", "hnsw.ef_search"); got != strconv.Itoa(degraded) {
		t.Errorf("after rollback ef_search = %q, want %d", got, degraded)
	}
}

func TestTuneSearchRollsBackWhenTargetUnreachable(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	ix := hardHNSW(t, b)
	b.exec(t, `ALTER DATABASE "`+ix.Datname+`" SET hnsw.ef_search = 10`)
	p := strategy.Params{"target_recall": 1, "step": 5, "max": 20}
	if r := b.measure(t, ix, "pgvector_recall_ratio"); r >= 1 {
		t.Fatalf("precondition: recall %v already perfect", r)
	}
	out, err := b.strategy(t, "tune_search").Run(ctx, b.env, ix, p)
	if err == nil {
		t.Fatalf("reached recall 1 with ef_search <= 20: %v", out.After)
	}
	t.Logf("error: %v; statements %q", err, out.Statements)
	if len(out.Statements) != 2 || out.After["hnsw.ef_search"] != 20 {
		t.Errorf("tried %q, after %v; want 15 then 20", out.Statements, out.After)
	}
	if got := b.dbSetting(t, "", "hnsw.ef_search"); got != "10" {
		t.Errorf("ef_search = %q after the failed tune, want 10 restored", got)
	}

	// A latency budget no query can meet stops at the first step and restores the setting too.
	_, err = b.strategy(t, "tune_search").Run(ctx, b.env, ix, strategy.Params{"target_recall": 0.99, "latency_budget": "1ns"})
	if err == nil || !strings.Contains(err.Error(), "latency_budget") {
		t.Errorf("latency budget: err = %v", err)
	}
	if got := b.dbSetting(t, "", "hnsw.ef_search"); got != "10" {
		t.Errorf("ef_search = %q after the budget was hit, want 10 restored", got)
	}
	// The exporter's Measurer does not time probes; the strategy times them itself.
	env := b.env
	env.Measure = exporterMeasurer()
	out, err = b.strategy(t, "tune_search").Run(ctx, env, ix, strategy.Params{"target_recall": 0.99, "latency_budget": "1ns"})
	if err == nil || !strings.Contains(err.Error(), "latency_budget") || out.After["pgvector_probe_latency_seconds"] <= 0 {
		t.Errorf("latency budget with the exporter's measurer: err = %v, after %v", err, out.After)
	}
	if got := b.dbSetting(t, "", "hnsw.ef_search"); got != "10" {
		t.Errorf("ef_search = %q after the budget was hit, want 10 restored", got)
	}
}

func TestTuneSearchRoleScopeAndUnsetPrevious(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 16, 3000, 0.8)
	b.exec(t, "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 60)", "ANALYZE items")
	ix := b.resolve(t, "public", "items_ivf")
	var user string
	if err := b.pool.QueryRow(ctx, "SELECT current_user").Scan(&user); err != nil {
		t.Fatal(err)
	}
	tune := b.strategy(t, "tune_search")
	p := strategy.Params{"scope": "role", "role": user, "target_recall": 0.95, "step": 3}
	out, err := tune.Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statements %q before %v after %v", out.Statements, out.Before, out.After)
	if out.Before["ivfflat.probes"] != 1 || out.After["pgvector_recall_ratio"] < 0.95 || out.Before["pgvector_recall_ratio"] >= 0.95 {
		t.Errorf("before %v after %v", out.Before, out.After)
	}
	if got := b.dbSetting(t, user, "ivfflat.probes"); got == "" || got == "1" {
		t.Errorf("role setting ivfflat.probes = %q", got)
	}
	if err := tune.Rollback(ctx, b.env, ix, p, out.Undo); err != nil {
		t.Fatal(err)
	}
	// It was not set before, so the rollback removes it.
	if got := b.dbSetting(t, user, "ivfflat.probes"); got != "" {
		t.Errorf("after rollback ivfflat.probes = %q, want unset", got)
	}
	if err := tune.Rollback(ctx, b.env, ix, p, out.Undo); err != nil {
		t.Errorf("second rollback: %v", err)
	}
	if _, err := tune.Run(ctx, b.env, ix, strategy.Params{"scope": "role", "role": "no such role"}); err == nil ||
		!strings.Contains(err.Error(), `"role"`) {
		t.Errorf("unknown role: err = %v", err)
	}
}
