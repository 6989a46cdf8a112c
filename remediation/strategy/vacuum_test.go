package strategy_test

import (
	"context"
	"testing"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// flushStats makes the statistics of this pool's sessions visible to others now rather than
// within a second or so.
func (b *bundle) flushStats(t *testing.T, stmt string) {
	t.Helper()
	ctx := context.Background()
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, q := range []string{stmt, "SELECT pg_stat_force_next_flush()", "SELECT 1"} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

func TestVacuumRemovesDeadTuplesAfterMassDelete(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 3000, 0.1)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops) WITH (m = 8, ef_construction = 32)")
	b.flushStats(t, "DELETE FROM items WHERE id % 2 = 0")
	ix := b.resolve(t, "public", "items_emb")

	dead := b.measure(t, ix, "pgvector_table_dead_tuples")
	if dead < 1000 {
		t.Fatalf("precondition: %v dead tuples after deleting half of 3000 rows", dead)
	}
	// Dead heap TIDs still in the graph, read from the index pages by the exporter's Measurer.
	pages := exporterMeasurer()
	deadTIDs, err := pages.Measure(ctx, b.pool, ix, "pgvector_hnsw_heap_tids:dead")
	if err != nil || deadTIDs != dead {
		t.Fatalf("precondition: %v dead heap TIDs in the graph (%v), want %v", deadTIDs, err, dead)
	}
	vac := b.strategy(t, "vacuum")
	p := strategy.Params{"analyze": true}
	if err := vac.CheckParams(p); err != nil {
		t.Fatal(err)
	}
	im, err := vac.Plan(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	if im.LockLevel != "SHARE UPDATE EXCLUSIVE" || len(im.Statements) != 1 || im.Statements[0] != `VACUUM (INDEX_CLEANUP ON, ANALYZE) "public"."items"` {
		t.Errorf("impact = %+v", im)
	}
	out, err := vac.Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	if out.Before["pgvector_table_dead_tuples"] != dead {
		t.Errorf("before = %v, want %v", out.Before, dead)
	}
	if got := out.After["pgvector_table_dead_tuples"]; got != 0 {
		t.Errorf("dead tuples after vacuum = %v, want 0 (outcome %+v)", got, out)
	}
	if got := b.measure(t, ix, "pgvector_table_dead_tuples"); got != 0 {
		t.Errorf("dead tuples measured after vacuum = %v", got)
	}
	if got, err := pages.Measure(ctx, b.pool, ix, "pgvector_hnsw_heap_tids:dead"); err != nil || got != 0 {
		t.Errorf("dead heap TIDs in the graph after vacuum = %v (%v)", got, err)
	}
	// The graph no longer points at the deleted rows: recall over the survivors is intact.
	if r := b.measure(t, ix, "pgvector_recall_ratio"); r < 0.9 {
		t.Errorf("recall after vacuum = %v", r)
	}
	// Idempotent: a second run succeeds and changes nothing.
	if _, err := vac.Run(ctx, b.env, ix, p); err != nil {
		t.Fatalf("second run: %v", err)
	}
	if err := vac.Rollback(ctx, b.env, ix, p, out.Undo); err != nil {
		t.Errorf("rollback of a vacuum: %v", err)
	}
}
