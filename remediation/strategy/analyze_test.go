package strategy_test

import (
	"context"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func TestAnalyzeBringsTheIndexBack(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 3000, 0.9)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)")
	// Statistics go stale: analysed right after a purge left a few rows in many pages, then
	// reloaded without autovacuum. The planner now believes the table holds ~100 rows and
	// prefers a sequential scan and sort to the graph.
	b.exec(t, "DELETE FROM items WHERE id > 30", "ANALYZE items")
	b.loadVectors(t, "items", 8, 3000, 0.91)
	ix := b.resolve(t, "public", "items_emb")
	if used := b.measure(t, ix, "pgvector_probe_index_used"); used != 0 {
		t.Fatalf("precondition: the planner still uses the index with stale statistics")
	}
	an := b.strategy(t, "analyze")
	im, err := an.Plan(ctx, b.env, ix, nil)
	if err != nil || len(im.Statements) != 1 || im.Statements[0] != `ANALYZE "public"."items"` {
		t.Errorf("plan %+v, %v", im, err)
	}
	out, err := an.Run(ctx, b.env, ix, nil)
	if err != nil {
		t.Fatal(err)
	}
	if out.Before["pgvector_probe_index_used"] != 0 || out.After["pgvector_probe_index_used"] != 1 {
		t.Errorf("index used before %v after %v", out.Before, out.After)
	}
	if used := b.measure(t, ix, "pgvector_probe_index_used"); used != 1 {
		t.Error("the planner does not use the index after ANALYZE")
	}
	if used, err := exporterMeasurer().Measure(ctx, b.pool, ix, "pgvector_probe_index_used"); err != nil || used != 1 {
		t.Errorf("the exporter's probe: index used %v (%v)", used, err)
	}
	if _, err := an.Run(ctx, b.env, ix, nil); err != nil {
		t.Errorf("second run: %v", err)
	}
}

// A statement that waits for a lock is cancelled by the step's timeout, on the server too.
func TestMaintenanceTimeoutCancelsTheStatement(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 4, 100, 0.95)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)")
	ix := b.resolve(t, "public", "items_emb")
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "LOCK TABLE items IN SHARE UPDATE EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"vacuum", "analyze"} {
		stepCtx, cancel := context.WithTimeout(ctx, 300*time.Millisecond)
		_, err := b.strategy(t, name).Run(stepCtx, b.env, ix, nil)
		cancel()
		if err == nil {
			t.Errorf("%s: ran despite the lock", name)
		}
		if n := b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND (query LIKE 'VACUUM%' OR query LIKE 'ANALYZE%')`); n != 0 {
			t.Errorf("%s: %d statements still waiting on the server after the timeout", name, n)
		}
	}
}
