package strategy_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// loadClusters creates table items with clusters × perCluster vectors of dim dimensions in
// tight clusters far apart: a graph built with m = 4, ef_construction = 8 over them falls
// apart into islands its search cannot leave, so no ef_search finds most neighbours.
func (b *bundle) loadClusters(t *testing.T, table string, dim, clusters, perCluster int) {
	t.Helper()
	tbl := pgx.Identifier{table}.Sanitize()
	b.exec(t, "CREATE TABLE "+tbl+" (id bigserial PRIMARY KEY, emb vector("+itoa(dim)+")) WITH (autovacuum_enabled = false)",
		"SELECT setseed(0.42)",
		`CREATE TEMP TABLE centers AS SELECT c, array_agg(random()::real) AS v FROM generate_series(1, `+itoa(clusters)+`) c,
			generate_series(1, `+itoa(dim)+`) d GROUP BY c`,
		`INSERT INTO `+tbl+` (emb) SELECT (SELECT array_agg(v[d] + (random() - 0.5) * 0.02) FROM generate_series(1, `+itoa(dim)+`) d)::vector
			FROM centers, generate_series(1, `+itoa(perCluster)+`) i`,
		"DROP TABLE centers", "ANALYZE "+tbl)
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestHNSWRebuildRaisesRecallOfAPoorGraph(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadClusters(t, "items", 32, 100, 100)
	b.exec(t, "CREATE INDEX items_hnsw ON items USING hnsw (emb vector_l2_ops) WITH (m = 4, ef_construction = 8)")
	// Recall as the engine measures it: the exporter's probe with queries sampled from the
	// table, at the search settings a new session gets.
	chk := config.Check{Interval: time.Minute, Timeout: time.Minute}
	b.env.Measure = exporter.NewMeasurer(config.Exporter{Structure: config.StructureCheck{Check: chk}, Recall: config.RecallCheck{Check: chk, Queries: 50, K: 10},
		StatisticsTimeout: 10 * time.Second, PageBatch: 64})
	old := b.resolve(t, "public", "items_hnsw")
	before := b.measure(t, old, "pgvector_recall_ratio")
	if before >= 0.9 {
		t.Fatalf("precondition: recall %.3f of the m = 4 graph, want a poor one", before)
	}
	rb := b.strategy(t, "hnsw_rebuild")
	p := strategy.Params{"target_recall": 0.9}
	im, err := rb.Plan(ctx, b.env, old, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("impact: %+v", im)
	wantCreate := `CREATE INDEX CONCURRENTLY "items_hnsw_vhnew" ON "public"."items" USING hnsw (emb public.vector_l2_ops) WITH (m = 16, ef_construction = 64)`
	if !strings.Contains(strings.Join(im.Statements, "\n"), wantCreate) {
		t.Errorf("impact statements %q lack %q", im.Statements, wantCreate)
	}
	if !strings.Contains(im.Notes, "m 4 -> 16, ef_construction 8 -> 64") || im.DiskBytesNeeded <= old.SizeBytes || im.EstimatedDuration <= 0 {
		t.Errorf("impact %+v: want the new definition, a larger estimated size and a build time", im)
	}

	out, err := rb.Run(ctx, b.env, old, p)
	t.Logf("outcome: %+v", out)
	if err != nil {
		t.Fatal(err)
	}
	if got := b.indexNames(t, "items"); strings.Join(got, ",") != "items_hnsw,items_pkey" {
		t.Fatalf("indexes after the rebuild: %v, want the new one under the old name only", got)
	}
	now := b.resolve(t, "public", "items_hnsw")
	if now.OID == old.OID || now.M != 16 || now.EfConstruction != 64 || !now.Valid {
		t.Errorf("index after the rebuild: oid %d (was %d), m %d, ef_construction %d, valid %v", now.OID, old.OID, now.M, now.EfConstruction, now.Valid)
	}
	after := b.measure(t, now, "pgvector_recall_ratio")
	t.Logf("recall %.3f -> %.3f (the gate measured %.3f)", before, after, out.After["new_index_pgvector_recall_ratio"])
	if after <= before || after < 0.9 {
		t.Errorf("recall %.3f after the rebuild, %.3f before: want higher and at least 0.9", after, before)
	}
	if out.Before["m"] != 4 || out.After["m"] != 16 || out.After["new_index_pgvector_recall_ratio"] < 0.9 {
		t.Errorf("outcome figures: before %v after %v", out.Before, out.After)
	}
	var u map[string]any
	if err := json.Unmarshal(out.Undo, &u); err != nil || u["swapped"] != true || u["previous_m"] != float64(4) {
		t.Errorf("undo %s (%v): want the previous parameters and swapped", out.Undo, err)
	}
	// A second run at the caps would make the same graph: refused before anything is built.
	if _, err := rb.Run(ctx, b.env, now, strategy.Params{"max_m": 16, "max_ef_construction": 64}); err == nil ||
		!strings.Contains(err.Error(), "same graph") {
		t.Errorf("rebuild at the caps: %v, want a refusal", err)
	}
	// Rollback after the swap restores the previous build parameters.
	if err := rb.Rollback(ctx, b.env, now, p, out.Undo); err != nil {
		t.Fatal(err)
	}
	back := b.resolve(t, "public", "items_hnsw")
	if back.M != 4 || back.EfConstruction != 8 || strings.Join(b.indexNames(t, "items"), ",") != "items_hnsw,items_pkey" {
		t.Errorf("after rollback: m %d ef_construction %d, indexes %v", back.M, back.EfConstruction, b.indexNames(t, "items"))
	}
}

func TestHNSWRebuildMissKeepsTheOldIndex(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadClusters(t, "items", 16, 20, 100)
	b.exec(t, "CREATE INDEX items_hnsw ON items USING hnsw (emb vector_l2_ops) WITH (m = 4, ef_construction = 8)")
	old := b.resolve(t, "public", "items_hnsw")
	rb := b.strategy(t, "hnsw_rebuild")
	for _, c := range []struct {
		name   string
		params strategy.Params
		want   string
	}{
		// No search is that fast: the new index misses the latency budget. The recall target
		// is set low so that the latency alone decides: the default 0.95 is missed now and
		// then by a graph built at random (0.948 once).
		{"latency", strategy.Params{"latency_budget": "1ns", "target_recall": 0.5}, "exceeds latency_budget"},
		// A recall no graph reaches at the default ef_search on 2,000 rows is not needed to
		// miss: m = 5 over islands of m = 4 misses a target of 1.
		{"recall", strategy.Params{"m": 5, "ef_construction": 10, "target_recall": 1}, "below target_recall"},
	} {
		t.Run(c.name, func(t *testing.T) {
			out, err := rb.Run(ctx, b.env, old, c.params)
			t.Logf("outcome: %+v", out)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Run: %v, want an error with %q", err, c.want)
			}
			if got := b.indexNames(t, "items"); strings.Join(got, ",") != "items_hnsw,items_pkey" {
				t.Errorf("indexes after the miss: %v, want the old one only (nothing INVALID, no _vhnew)", got)
			}
			now := b.resolve(t, "public", "items_hnsw")
			if now.OID != old.OID || now.M != 4 || now.EfConstruction != 8 {
				t.Errorf("index after the miss: oid %d (was %d), m %d: want the old index untouched", now.OID, old.OID, now.M)
			}
			if err := rb.Rollback(ctx, b.env, now, c.params, out.Undo); err != nil {
				t.Fatal(err)
			}
			if b.resolve(t, "public", "items_hnsw").OID != old.OID {
				t.Error("rollback after a miss rebuilt the index; it has nothing to undo")
			}
		})
	}
}

func TestHNSWRebuildSuggestsCosineForInnerProduct(t *testing.T) {
	b := setup(t, strategy.Options{})
	b.loadVectors(t, "items", 8, 500, 0.3)
	b.exec(t, "CREATE INDEX items_ip ON items USING hnsw (emb vector_ip_ops) WITH (m = 8)")
	ix := b.resolve(t, "public", "items_ip")
	im, err := b.strategy(t, "hnsw_rebuild").Plan(context.Background(), b.env, ix, strategy.Params{})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(im.Notes, "vector_cosine_ops") || !strings.Contains(im.Notes, "m 8 -> 16, ef_construction 64 -> 128") {
		t.Errorf("notes %q: want m doubled and the cosine suggestion", im.Notes)
	}
}
