package exporter

import (
	"bytes"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// categorised creates table items of n random 16-d vectors spread over cats categories, with
// an HNSW index items_hnsw at pgvector's default build options.
func categorised(t *testing.T, dsn string, n, cats int) {
	t.Helper()
	testenv.Exec(t, dsn,
		`CREATE TABLE items (id bigserial PRIMARY KEY, category int NOT NULL, embedding vector(16))`,
		`SELECT setseed(0.17)`,
		fmt.Sprintf(`INSERT INTO items (category, embedding)
			SELECT i %% %d, (SELECT array_agg(random()) FROM generate_series(1, 16) WHERE i > 0)::vector
			FROM generate_series(1, %d) i`, cats, n),
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`,
		`ANALYZE items`)
}

func byCategory(name string) config.FilteredQuery {
	return config.FilteredQuery{Name: name, Schema: "public", Index: "items_hnsw", Filters: []string{"category"},
		SQL: `SELECT id FROM items WHERE category = $2 ORDER BY embedding <-> $1 LIMIT $3`,
		K:   10, Samples: 20, Interval: time.Second, Timeout: 30 * time.Second}
}

// TestFilteredQueriesShortThenIterative: a selective filter (10 % of rows, which the planner still serves through the index) with the default
// hnsw.ef_search = 40 comes back short, which the exporter publishes per query set; an
// iterative scan set for the database (as tune_search does) fills the results again, seen by
// the next run without new connections.
func TestFilteredQueriesShortThenIterative(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	categorised(t, dsn, 10000, 10)
	cfg := testConfig()
	cfg.Structure.Disabled, cfg.Drift.Disabled = true, true
	bad := byCategory("bad_column")
	bad.Filters = []string{"no_such_column"}
	missing := byCategory("missing_index")
	missing.Index = "no_such_index"
	cfg.FilteredQueries = []config.FilteredQuery{byCategory("by_category"), bad, missing}
	s := start(t, cfg, map[string]string{"main": dsn})
	q := map[string]string{"target": "main", "indexrelname": "items_hnsw", "query": "by_category"}

	short := s.waitSample(t, "pgvector_filtered_short_ratio", q, "published", exists)
	rows, _ := s.sample(t, "pgvector_filtered_rows_ratio", q)
	exact, _ := s.sample(t, "pgvector_filtered_exact_rows_ratio", q)
	recall, _ := s.sample(t, "pgvector_filtered_recall_ratio", q)
	n, _ := s.sample(t, "pgvector_filtered_samples", q)
	t.Logf("ef_search 40: short %.2f rows %.2f exact rows %.2f recall %.2f samples %v", short, rows, exact, recall, n)
	if short < 0.5 || rows > 0.5 || exact != 1 || recall > 0.5 || n != 20 {
		t.Errorf("want most queries short with a 10%% filter: short %.2f rows %.2f exact %.2f recall %.2f samples %v", short, rows, exact, recall, n)
	}
	s.waitSample(t, "pgvector_filtered_index_used", q, "1", eq(1))
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "filtered:by_category"}, "1", eq(1))
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "filtered:bad_column"}, "0", eq(0))
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "filtered:missing_index"}, "0", eq(0))
	if _, ok := s.sample(t, "pgvector_filtered_short_ratio", map[string]string{"query": "bad_column"}); ok {
		t.Error("a query set that fails publishes figures")
	}

	testenv.Exec(t, dsn, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET hnsw.iterative_scan = strict_order', current_database()); END $$`)
	s.waitSample(t, "pgvector_filtered_short_ratio", q, "0 with iterative scans", eq(0))
	s.waitSample(t, "pgvector_filtered_rows_ratio", q, "1 with iterative scans", eq(1))
	recall = s.waitSample(t, "pgvector_filtered_recall_ratio", q, "≥ 0.8 with iterative scans", func(v float64) bool { return v >= 0.8 })
	t.Logf("strict_order: recall %.2f", recall)
	promtoolCheck(t, s.scrape(t))

	// The Measurer measures the worst query set of the index afresh.
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")
	m := NewMeasurer(config.Exporter{FilteredQueries: []config.FilteredQuery{byCategory("by_category")}})
	if v, err := m.Measure(context.Background(), pool, ix, "pgvector_filtered_short_ratio"); err != nil || v != 0 {
		t.Errorf("Measurer short ratio = %v, %v; want 0 with iterative scans", v, err)
	}
	if _, err := NewMeasurer(testConfig()).Measure(context.Background(), pool, ix, "pgvector_filtered_short_ratio"); err == nil {
		t.Error("Measurer measured a filtered figure for an index without a declared query")
	}
}

// TestReportShowsFilteredQuerySets: `vectorheal check` (Report) runs the filtered query sets
// declared for an index and shows their figures, labelled by the set's name.
func TestReportShowsFilteredQuerySets(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	categorised(t, dsn, 3000, 10)
	cfg := testConfig()
	cfg.Recall.Disabled = true
	cfg.FilteredQueries = []config.FilteredQuery{byCategory("by_category")}
	rep, err := Report(context.Background(), superPool(t, dsn), cfg)
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Indexes) != 1 || len(rep.Indexes[0].Errors) > 0 {
		t.Fatalf("report %+v", rep.Indexes)
	}
	f, ok := rep.Indexes[0].Figure("filtered_samples")
	if !ok || f.Values["by_category"] != 20 {
		var b bytes.Buffer
		_ = rep.WriteText(&b)
		t.Fatalf("filtered_samples of by_category: %+v (found %v), want the 20 samples run; report:\n%s", f, ok, b.String())
	}
	if s, ok := rep.Indexes[0].Figure("filtered_short_ratio"); !ok || s.Values["by_category"] < 0 || s.Values["by_category"] > 1 {
		t.Errorf("filtered_short_ratio of by_category: %+v (found %v)", s, ok)
	}
}
