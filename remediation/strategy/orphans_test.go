package strategy_test

import (
	"context"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/exporter/hnsw/hnswtest"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// exporterMeasurer is the exporter's own Measurer, as the engine uses it.
func exporterMeasurer() strategy.Measurer {
	chk := config.Check{Interval: time.Minute, Timeout: time.Minute}
	return exporter.NewMeasurer(config.Exporter{
		Structure:         config.StructureCheck{Check: chk},
		Recall:            config.RecallCheck{Check: chk, Queries: 10, K: 10},
		StatisticsTimeout: 10 * time.Second,
		PageBatch:         64,
	})
}

// Orphans injected into the pages: VACUUM has no deleted element to repair around and leaves
// them; the runbook escalates to reindex, whose new graph has none. Figures come from the
// exporter's Measurer.
func TestOrphansSurviveVacuumAndReindexFixesThem(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 2000, 0.13)
	// m = 16: pgvector's own build leaves an orphan now and then at small m; count those first.
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops) WITH (m = 16)", "ANALYZE items")
	b.env.Measure = exporterMeasurer()
	const figure = "pgvector_hnsw_orphan_elements"
	natural := b.measure(t, b.resolve(t, "public", "items_emb"), figure)
	cut := hnswtest.CutInLinks(t, b.pg, b.dsn, "public", "items_emb", 5)
	b.pool.Reset() // the cluster restarted
	ix := b.resolve(t, "public", "items_emb")
	injected := natural + float64(len(cut))
	if got := b.measure(t, ix, figure); got != injected {
		t.Fatalf("precondition: %v orphans after cutting the in-links of %d elements (%v before)", got, len(cut), natural)
	}
	p := strategy.Params{"figures": []any{figure, "pgvector_recall_ratio"}}
	out, err := b.strategy(t, "vacuum").Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("vacuum: before %v after %v", out.Before, out.After)
	if out.After[figure] != injected {
		t.Errorf("orphans after vacuum = %v, want still %v (nothing to repair around)", out.After[figure], injected)
	}
	out, err = b.strategy(t, "reindex").Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("reindex: before %v after %v", out.Before, out.After)
	// The new graph is a new random build: as clean as the first one was before the cut.
	if out.Before[figure] != injected || out.After[figure] > natural {
		t.Errorf("orphans before %v after %v, want %v then at most %v", out.Before[figure], out.After[figure], injected, natural)
	}
	if got := b.measure(t, b.resolve(t, "public", "items_emb"), "pgvector_index_structural_faults"); got != 0 {
		t.Errorf("structural faults after reindex = %v", got)
	}
}

// The default figures of the strategies are names the exporter's Measurer knows.
// TestDefaultFiguresAreExporterFigures: every figure a strategy records by default is one the
// exporter's own Measurer produces — read from the registry's specs and the real Measurer, so a
// default naming a figure nobody measures fails here (it would be dropped from before/after).
func TestDefaultFiguresAreExporterFigures(t *testing.T) {
	known := map[string]bool{}
	for _, f := range exporterMeasurer().Figures() {
		known[f] = true
	}
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, spec := range reg.Specs() {
		for _, f := range spec.AllDefaultFigures() {
			n++
			if !known[f] {
				t.Errorf("strategy %s: default figure %q unknown to the exporter's Measurer", spec.Name, f)
			}
		}
	}
	if n == 0 {
		t.Fatal("no strategy has default figures: the check checked nothing")
	}
}

// An alert about an INVALID _ccnew leftover names the leftover itself: reindex drops it
// instead of rebuilding it into a duplicate.
func TestReindexDropsALeftoverItIsGiven(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 500, 0.14)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)")
	release := b.blockWriters(t)
	// A REINDEX that times out on the server while another client holds a lock, outside
	// vectorheal.
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET statement_timeout = '500ms'"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "REINDEX INDEX CONCURRENTLY items_emb")
	conn.Conn().Close(ctx) // not back to the pool with its statement_timeout
	conn.Release()
	if err == nil {
		t.Fatal("precondition: REINDEX finished")
	}
	release()
	left := b.invalidIndexes(t, "items")
	if len(left) != 1 {
		t.Fatalf("precondition: invalid indexes %v, want one _ccnew", left)
	}
	lo := b.resolve(t, "public", left[0])
	re := b.strategy(t, "reindex")
	im, err := re.Plan(ctx, b.env, lo, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Statements) != 1 || im.Statements[0] != `DROP INDEX CONCURRENTLY IF EXISTS "public"."`+left[0]+`"` {
		t.Errorf("plan for the leftover: %+v", im)
	}
	if _, err := re.Run(ctx, b.env, lo, nil); err != nil {
		t.Fatal(err)
	}
	if got := b.indexNames(t, "items"); len(got) != 2 || got[0] != "items_emb" {
		t.Errorf("indexes after dropping the leftover: %v", got)
	}
}

// A CREATE INDEX CONCURRENTLY that failed leaves the index INVALID under its own name: reindex
// rebuilds it into a valid one.
func TestReindexMakesAFailedBuildValid(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 500, 0.16)
	release := b.blockWriters(t)
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, "SET statement_timeout = '500ms'"); err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(ctx, "CREATE INDEX CONCURRENTLY items_emb ON items USING hnsw (emb vector_l2_ops)")
	conn.Conn().Close(ctx)
	conn.Release()
	if err == nil {
		t.Fatal("precondition: the build finished")
	}
	release()
	ix := b.resolve(t, "public", "items_emb")
	if ix.Valid {
		t.Fatal("precondition: the index is valid")
	}
	if _, err := b.strategy(t, "reindex").Run(ctx, b.env, ix, nil); err != nil {
		t.Fatal(err)
	}
	if now := b.resolve(t, "public", "items_emb"); !now.Valid {
		t.Errorf("still invalid: %+v", now)
	}
	if left := b.invalidIndexes(t, "items"); len(left) != 0 {
		t.Errorf("invalid indexes: %v", left)
	}
}
