package exporter

import (
	"context"
	"testing"

	"github.com/vectorheal/vectorheal/exporter/hnsw/hnswtest"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestFaultInjectionThroughScrape cuts every in-link of chosen HNSW elements in the index file
// of the stopped cluster: the scrape shows exactly those elements more as orphans and
// unreachable, and after REINDEX none of the damage.
func TestFaultInjectionThroughScrape(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 2000, 16, 20)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64)`)

	// pgvector's build may leave a natural orphan; count those first.
	ctx := context.Background()
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")
	m := NewMeasurer(testConfig())
	orphans0, err := m.Measure(ctx, pool, ix, "pgvector_hnsw_orphan_elements")
	if err != nil {
		t.Fatal(err)
	}
	unreachable0, err := m.Measure(ctx, pool, ix, "pgvector_hnsw_unreachable_elements")
	if err != nil {
		t.Fatal(err)
	}
	pool.Close()

	const cut = 3
	if got := hnswtest.CutInLinks(t, pg, dsn, "public", "items_hnsw", cut); len(got) != cut {
		t.Fatalf("cut %d elements, want %d", len(got), cut)
	}
	s := start(t, testConfig(), map[string]string{"main": dsn})
	h := map[string]string{"target": "main", "indexrelname": "items_hnsw"}
	s.waitSample(t, "pgvector_hnsw_orphan_elements", h, "natural + cut", eq(orphans0+cut))
	s.waitSample(t, "pgvector_hnsw_unreachable_elements", h, "natural + cut", eq(unreachable0+cut))
	s.waitSample(t, "pgvector_hnsw_connectivity_ratio", h, "below 1", func(v float64) bool { return v < 1 })

	testenv.Exec(t, dsn, `REINDEX INDEX items_hnsw`)
	s.waitSample(t, "pgvector_hnsw_orphan_elements", h, "at most a natural one", func(v float64) bool { return v <= 1 })
	s.waitSample(t, "pgvector_hnsw_unreachable_elements", h, "at most a natural one", func(v float64) bool { return v <= 1 })
}
