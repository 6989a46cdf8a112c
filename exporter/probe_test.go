package exporter

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// setSearch sets hnsw.* / ivfflat.* for new sessions of the database, which the probe applies
// on its next run (see currentSearchSettings), e.g. setSearch(t, dsn, "hnsw.ef_search", 1).
func setSearch(t *testing.T, dsn, name string, value int) {
	t.Helper()
	testenv.Exec(t, dsn, fmt.Sprintf(`DO $$ BEGIN EXECUTE format('ALTER DATABASE %%I SET %s = %d', current_database()); END $$`, name, value))
}

func mustProbe(t *testing.T, pool *pgxpool.Pool, ix catalog.Index) *recallResult {
	t.Helper()
	r, err := probe(context.Background(), pool, ix, 20, 10, 10, 2*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if r == nil {
		t.Fatalf("%s: probe found nothing to probe with", ix)
	}
	return r
}

// probeCase is one type and operator class the probe must handle.
type probeCase struct {
	method, typ, opclass string
	// values is a SQL expression of the row number i giving the row's value.
	values string
	rows   int
	exact  bool // recall must be exactly 1.0 with generous settings
}

// randomDense is a random dense vector of dim dimensions (of row i), cast to typ; normalised
// for inner product, whose HNSW graphs over vectors of unequal norms leave many elements
// unreachable.
func randomDense(typ string, dim int, normalised bool) string {
	arr := fmt.Sprintf(`(SELECT array_agg(random() - 0.5) FROM generate_series(1, %d) WHERE i > 0)`, dim)
	if normalised {
		return `l2_normalize(` + arr + `::vector)::` + typ
	}
	return arr + `::` + typ
}

// randomSparse is a sparsevec of 40 dimensions near one of 30 fixed patterns of about 8
// non-zero dimensions each (one always, so there is no zero vector, which has no cosine
// distance), as sparse embeddings share the terms of their topic, with noise on the values
// and a few more terms set at random, so topics overlap as they do in real data.
const randomSparse = `(SELECT array_agg(CASE WHEN ((((i % 30) + 1) * 7919 + d * 104729) * 2654435761 % 1000) < 200 OR d = 1 + i % 30
	THEN ((((i % 30) + 1) * 15485863 + d * 32452843) % 1000) / 1000.0 + 0.5 * random()
	WHEN random() < 0.05 THEN random() ELSE 0 END::float8 ORDER BY d)
	FROM generate_series(1, 40) d)::vector::sparsevec`

// randomBits is a bit(64) near one of 30 fixed patterns (15 % of the bits flipped), as binary
// quantised embeddings cluster.
const randomBits = `(SELECT string_agg(((((((i % 30) + 1) * 7919 + d * 104729) * 2654435761 % 1000) >= 500)
	<> (random() < 0.15))::int::text, '' ORDER BY d) FROM generate_series(1, 64) d)::bit(64)`

func probeCases() []probeCase {
	var out []probeCase
	for _, typ := range []string{"vector", "halfvec"} {
		for _, d := range []string{"l2", "ip", "cosine", "l1"} {
			out = append(out, probeCase{"hnsw", typ + "(12)", typ + "_" + d + "_ops", randomDense(typ+"(12)", 12, d == "ip"), 3000, false})
			if d != "l1" { // IVFFlat has no l1 operator class
				out = append(out, probeCase{"ivfflat", typ + "(12)", typ + "_" + d + "_ops", randomDense(typ+"(12)", 12, false), 3000, false})
			}
		}
	}
	for _, d := range []string{"l2", "ip", "cosine", "l1"} {
		values := randomSparse
		if d == "ip" { // normalised, as for dense vectors
			values = `l2_normalize(` + randomSparse + `)`
		}
		out = append(out, probeCase{"hnsw", "sparsevec(40)", "sparsevec_" + d + "_ops", values, 1500, true})
	}
	out = append(out,
		probeCase{"hnsw", "bit(64)", "bit_hamming_ops", randomBits, 1500, true},
		probeCase{"hnsw", "bit(64)", "bit_jaccard_ops", randomBits, 1500, true},
		probeCase{"ivfflat", "bit(64)", "bit_hamming_ops", randomBits, 3000, false})
	return out
}

// TestProbeEveryOpclass probes an index of every type and operator class pgvector has, each
// on a table of its own. With generous settings (hnsw.ef_search = 64 over 3000 rows, half of
// the IVFFlat lists probed; much more would make the planner prefer a sequential scan, and
// then the probe publishes no recall) the HNSW search finds what exact search with the same
// operator finds: recall 1.0 for sparsevec and bit, and at least 0.9 everywhere. With starved settings (ef_search = 1, one
// list of 20) recall falls below 1, so the two searches really differ.
func TestProbeEveryOpclass(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	cases := probeCases()
	for n, c := range cases {
		tbl := fmt.Sprintf("t%d", n)
		// A careful build, so that recall with a generous ef_search is the search's and not
		// a matter of a few elements the build left hard to reach.
		with := " WITH (ef_construction = 200)"
		if c.method == "ivfflat" {
			with = " WITH (lists = 20)"
		}
		testenv.Exec(t, dsn, `SELECT setseed(0.7)`,
			fmt.Sprintf(`CREATE TABLE %s (id int, v %s)`, tbl, c.typ),
			fmt.Sprintf(`INSERT INTO %s SELECT i, %s FROM generate_series(1, %d) i`, tbl, c.values, c.rows),
			fmt.Sprintf(`CREATE INDEX %s_idx ON %s USING %s (v %s)%s`, tbl, tbl, c.method, c.opclass, with),
			`ANALYZE `+tbl)
	}
	pool := superPool(t, dsn)
	measure := func(what string) []*recallResult {
		out := make([]*recallResult, len(cases))
		for n, c := range cases {
			ix := resolve(t, pool, fmt.Sprintf("t%d_idx", n))
			r := mustProbe(t, pool, ix)
			t.Logf("%s %s %s, %s settings: recall@10 %.3f, index used %v", c.method, c.typ, c.opclass, what, r.ratio, r.indexUsed)
			if !r.indexUsed || len(r.latencies) != 20 {
				t.Errorf("%s %s: index used %v, %d latencies; want the index and 20", c.method, c.opclass, r.indexUsed, len(r.latencies))
			}
			out[n] = r
		}
		return out
	}

	setSearch(t, dsn, "hnsw.ef_search", 64)
	setSearch(t, dsn, "ivfflat.probes", 10)
	high := measure("generous")
	setSearch(t, dsn, "hnsw.ef_search", 1)
	setSearch(t, dsn, "ivfflat.probes", 1)
	low := measure("starved")
	for n, c := range cases {
		want := 0.9
		if c.exact {
			want = 1
		}
		if high[n].ratio < want {
			t.Errorf("%s %s: recall %.3f with generous settings, want >= %g", c.method, c.opclass, high[n].ratio, want)
		}
		if !(low[n].ratio < high[n].ratio && low[n].ratio < 1) {
			t.Errorf("%s %s: recall %.3f with starved settings, %.3f with generous ones; want a fall below 1", c.method, c.opclass, low[n].ratio, high[n].ratio)
		}
	}

	// vectorheal check reads every one of them, structure included, without an error.
	rep, err := Report(context.Background(), pool, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	if len(rep.Indexes) != len(cases) {
		t.Fatalf("check lists %d indexes, want %d", len(rep.Indexes), len(cases))
	}
	for _, ir := range rep.Indexes {
		fig := func(key string) ReportFigure { f, _ := ir.Figure(key); return f }
		var n int
		if _, err := fmt.Sscanf(ir.Relname, "t%d", &n); err != nil {
			t.Fatalf("table %s: %v", ir.Relname, err)
		}
		c := cases[n]
		recall, used := fig("recall_ratio"), fig("probe_index_used")
		if len(ir.Errors) != 0 || recall.Values == nil || used.Value == nil || *used.Value != 1 {
			t.Errorf("check of %s %s: errors %v, recall %v", c.method, c.opclass, ir.Errors, recall.Values)
		}
		elements, faults := fig("hnsw_elements"), fig("index_structural_faults")
		lists, quality := fig("ivfflat_lists"), fig("ivfflat_centroid_quality_ratio")
		switch {
		case c.method == "hnsw" && (elements.Values["live"] != float64(c.rows) || sum(faults.Values) != 0):
			t.Errorf("check of %s %s: elements %v, faults %v; want %d live", c.method, c.opclass, elements.Values, faults.Values, c.rows)
		case c.method == "ivfflat" && (lists.Value == nil || *lists.Value != 20 || quality.Value == nil ||
			!(*quality.Value > 0 && *quality.Value < 1.5) || sum(faults.Values) != 0):
			// Centroid quality is computed only on decoded entries: a number shows bit values decode.
			t.Errorf("check of %s %s: lists %v, centroid quality %v, faults %v", c.method, c.opclass, lists.Value, quality.Value, faults.Values)
		}
	}
}

// TestProbeExpressionAndPartialIndexes: an index on (e::halfvec(8)) over a vector column has 8
// dimensions and is probed through its expression; a partial index (WHERE cat = 1) is probed
// with its predicate, so the planner uses it, query vectors come from its rows, and exact
// search compares on the same rows (recall near 1 with the default ef_search, although two
// thirds of the exact neighbours over the whole table are not in the index).
func TestProbeExpressionAndPartialIndexes(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn, `SELECT setseed(0.3)`,
		`CREATE TABLE items (id int, e vector(8))`,
		`INSERT INTO items SELECT i, `+randomDense("vector(8)", 8, false)+` FROM generate_series(1, 1500) i`,
		`CREATE INDEX items_half ON items USING hnsw ((e::halfvec(8)) halfvec_l2_ops)`,
		`CREATE TABLE docs (id int, cat int, e vector(8))`,
		`INSERT INTO docs SELECT i, i % 3, `+randomDense("vector(8)", 8, false)+` FROM generate_series(1, 3000) i`,
		`CREATE INDEX docs_cat1 ON docs USING hnsw (e vector_cosine_ops) WHERE cat = 1`,
		`ANALYZE items`, `ANALYZE docs`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	half, cat1 := resolve(t, pool, "items_half"), resolve(t, pool, "docs_cat1")
	if half.Dimensions != 8 || half.Column != "" || half.Expression == "" {
		t.Fatalf("expression index: dimensions %d, column %q, expression %q", half.Dimensions, half.Column, half.Expression)
	}

	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	qs, err := sampleVectors(ctx, tx, cat1, statementsFor(cat1, "<=>", 10), 20, 10)
	_ = tx.Rollback(ctx)
	if err != nil || len(qs) != 20 {
		t.Fatalf("sampled %d query vectors, %v", len(qs), err)
	}
	var outside int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM docs WHERE cat <> 1 AND e::text = ANY($1)`, qs).Scan(&outside); err != nil || outside != 0 {
		t.Errorf("%d query vectors from rows outside the partial index, %v", outside, err)
	}

	setSearch(t, dsn, "hnsw.ef_search", 40)
	highHalf, highCat := mustProbe(t, pool, half), mustProbe(t, pool, cat1)
	setSearch(t, dsn, "hnsw.ef_search", 1)
	lowHalf, lowCat := mustProbe(t, pool, half), mustProbe(t, pool, cat1)
	for _, c := range []struct {
		ix        catalog.Index
		high, low *recallResult
	}{{half, highHalf, lowHalf}, {cat1, highCat, lowCat}} {
		t.Logf("%s: recall@10 %.3f with ef_search 40, %.3f with 1", c.ix, c.high.ratio, c.low.ratio)
		if !c.high.indexUsed || !c.low.indexUsed {
			t.Errorf("%s: index used %v / %v, want the index", c.ix, c.high.indexUsed, c.low.indexUsed)
		}
		if c.high.ratio < 0.9 || c.low.ratio > 0.5 {
			t.Errorf("%s: recall %.3f with ef_search 40 and %.3f with 1; want >= 0.9 and at most 0.5", c.ix, c.high.ratio, c.low.ratio)
		}
	}
}

// TestProbeTwoIndexesOnOneColumn: with an HNSW and an IVFFlat index on one column (a move from
// one to the other) each is measured through itself: the probe costs the other method out,
// so both publish their own recall whatever the application's settings make the planner
// prefer. Lowering ivfflat.probes lowers the IVFFlat index's recall and never the HNSW's.
func TestProbeTwoIndexesOnOneColumn(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn, `SELECT setseed(0.9)`,
		`CREATE TABLE items (id int, e vector(16))`,
		`INSERT INTO items SELECT i, `+randomDense("vector(16)", 16, false)+` FROM generate_series(1, 5000) i`,
		`CREATE INDEX items_hnsw ON items USING hnsw (e vector_l2_ops)`,
		`CREATE INDEX items_ivf ON items USING ivfflat (e vector_l2_ops) WITH (lists = 50)`,
		`ANALYZE items`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	hn, ivf := resolve(t, pool, "items_hnsw"), resolve(t, pool, "items_ivf")

	// The planner's own choice flips with probes: without the probe's care one of the two
	// would have no figure (the test checks that it does flip, or it shows nothing).
	chosen := map[string]bool{}
	var ivfLow bool
	for _, probes := range []int{50, 10, 3, 1} {
		setSearch(t, dsn, "ivfflat.probes", probes)
		chosen[plannerChoice(t, dsn)] = true
		h, i := mustProbe(t, pool, hn), mustProbe(t, pool, ivf)
		t.Logf("ivfflat.probes %d: hnsw used %v recall %.3f; ivfflat used %v recall %.3f", probes, h.indexUsed, h.ratio, i.indexUsed, i.ratio)
		if !h.indexUsed || !i.indexUsed || len(h.latencies) == 0 || len(i.latencies) == 0 {
			t.Errorf("ivfflat.probes %d: hnsw used %v, ivfflat used %v; want each measured through itself", probes, h.indexUsed, i.indexUsed)
		}
		if h.ratio < 0.9 {
			t.Errorf("ivfflat.probes %d: hnsw recall %.3f, want >= 0.9 (ef_search is untouched)", probes, h.ratio)
		}
		if probes == 50 && i.ratio < 0.99 {
			t.Errorf("ivfflat.probes 50 of 50 lists: ivfflat recall %.3f, want an exact search", i.ratio)
		}
		if probes == 1 && i.ratio < 0.9 {
			ivfLow = true
		}
	}
	if !chosen["items_hnsw"] || !chosen["items_ivf"] {
		t.Fatalf("the planner chose %v over the probes settings; want both indexes at some setting", chosen)
	}
	if !ivfLow {
		t.Fatal("ivfflat.probes 1 did not give the IVFFlat index a low recall: the test shows nothing")
	}

	// The same through a scrape, and for a repair's validation.
	s := start(t, testConfig(), map[string]string{"main": dsn})
	hl := map[string]string{"target": "main", "indexrelname": "items_hnsw"}
	il := map[string]string{"target": "main", "indexrelname": "items_ivf"}
	s.waitSample(t, "pgvector_probe_index_used", hl, "1", eq(1))
	s.waitSample(t, "pgvector_probe_index_used", il, "1", eq(1))
	s.waitSample(t, "pgvector_recall_ratio", il, "below 0.9", func(v float64) bool { return v < 0.9 })
	s.waitSample(t, "pgvector_recall_ratio", hl, "0.9 or more", func(v float64) bool { return v >= 0.9 })
	if v, err := NewMeasurer(testConfig()).Measure(ctx, pool, hn, "pgvector_recall_ratio"); err != nil || v < 0.9 {
		t.Errorf("Measurer recall of the HNSW index = %v, %v; want 0.9 or more", v, err)
	}
}

// plannerChoice is the vector index a new session's top-k search on items uses.
func plannerChoice(t *testing.T, dsn string) string {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var plan string
	if err := conn.QueryRow(context.Background(), `EXPLAIN (FORMAT JSON) SELECT id FROM items ORDER BY e <-> (SELECT e FROM items LIMIT 1) LIMIT 10`).Scan(&plan); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"items_hnsw", "items_ivf"} {
		if strings.Contains(plan, `"`+name+`"`) {
			return name
		}
	}
	return "none"
}

// TestPartitionedIndex: CREATE INDEX on a partitioned table makes one index per partition and
// a parent without storage. Each partition's index is scanned and probed as an index of its
// own and knows its parent; the parent is skipped without error by the page scan, the probe,
// the exporter's collectors and vectorheal check.
func TestPartitionedIndex(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn, `SELECT setseed(0.1)`,
		`CREATE TABLE docs (id int, e vector(8)) PARTITION BY RANGE (id)`,
		`CREATE TABLE docs_a PARTITION OF docs FOR VALUES FROM (0) TO (1500)`,
		`CREATE TABLE docs_b PARTITION OF docs FOR VALUES FROM (1500) TO (5000)`,
		`INSERT INTO docs SELECT i, `+randomDense("vector(8)", 8, false)+` FROM generate_series(1, 3200) i`,
		`CREATE INDEX docs_hnsw ON docs USING hnsw (e vector_l2_ops)`,
		`ANALYZE docs`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	all, err := catalog.List(ctx, pool)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]int64{"docs_a": 1499, "docs_b": 1701}
	var parent catalog.Index
	parts := 0
	for _, ix := range all {
		if ix.Partitioned {
			parent = ix
			continue
		}
		parts++
		if ix.ParentIndex != "docs_hnsw" || ix.ParentTable != "docs" {
			t.Errorf("%s: parent %q on %q, want docs_hnsw on docs", ix, ix.ParentIndex, ix.ParentTable)
		}
		s, err := scanStructure(ctx, pool, ix, rawPages(), config.Exporter{PageBatch: 16, Structure: config.StructureCheck{Check: config.Check{Timeout: time.Minute}}})
		if err != nil || s == nil || s.hnsw.ElementsLive != rows[ix.Table] {
			t.Fatalf("%s: structure %+v, %v; want %d live elements", ix, s, err, rows[ix.Table])
		}
		if r := mustProbe(t, pool, ix); !r.indexUsed || r.ratio < 0.8 {
			t.Errorf("%s: probe %+v, want the index used and recall >= 0.8", ix, r)
		}
	}
	if parts != 2 || parent.Name != "docs_hnsw" {
		t.Fatalf("%d partition indexes, parent %q", parts, parent.Name)
	}
	if s, err := scanStructure(ctx, pool, parent, rawPages(), testConfig()); s != nil || err != nil {
		t.Errorf("structure of the parent: %+v, %v; want nothing and no error", s, err)
	}
	if r, err := probe(ctx, pool, parent, 10, 5, 10, time.Minute); r != nil || err != nil {
		t.Errorf("probe of the parent: %+v, %v; want nothing and no error", r, err)
	}
	if _, err := NewMeasurer(testConfig()).Measure(ctx, pool, parent, "pgvector_hnsw_elements:live"); err == nil || !strings.Contains(err.Error(), "partitioned") {
		t.Errorf("Measurer on the parent: %v, want an error saying it is partitioned", err)
	}

	rep, err := Report(ctx, pool, testConfig())
	if err != nil {
		t.Fatal(err)
	}
	for _, ir := range rep.Indexes {
		if len(ir.Errors) != 0 {
			t.Errorf("check: %s has errors %v", ir.Indexrelname, ir.Errors)
		}
		recall, rok := ir.Figure("recall_ratio")
		elements, eok := ir.Figure("hnsw_elements")
		if ir.Indexrelname == "docs_hnsw" && (rok || eok) {
			t.Errorf("check: the parent has figures of its own: recall %v, elements %v", recall.Values, elements.Values)
		}
		if ir.Indexrelname != "docs_hnsw" && (!rok || elements.Values["live"] == 0) {
			t.Errorf("check: partition index %s lacks figures: recall %v, elements %v", ir.Indexrelname, recall.Values, elements.Values)
		}
		if p := ir.PartitionOf; ir.Indexrelname != "docs_hnsw" && (p == nil || p.Indexrelname != "docs_hnsw" || p.Relname != "docs") {
			t.Errorf("check: partition index %s is a partition of %+v, want docs_hnsw on docs", ir.Indexrelname, p)
		}
		if ir.Indexrelname != "docs_hnsw" {
			continue
		}
		// The parent shows its partitions' rollup: every row of the table is a live element of
		// one partition's graph; recall is their mean weighted by rows.
		if !ir.Partitioned || len(ir.Partitions) != 2 {
			t.Errorf("check: parent partitioned %v with partitions %+v, want both", ir.Partitioned, ir.Partitions)
		}
		byKey := map[string]ReportFigure{}
		for _, f := range ir.Rollup {
			byKey[f.Key] = f
		}
		if got := byKey["hnsw_elements"].Values["live"]; got != 3200 {
			t.Errorf("check: parent's rollup of live elements %v, want 3200 (rollup %+v)", got, ir.Rollup)
		}
		if f := byKey["recall_ratio"]; len(f.Values) != 1 || f.Values["10"] < 0.8 || f.Values["10"] > 1 {
			t.Errorf("check: parent's weighted recall %v, want one k between 0.8 and 1", f.Values)
		}
		if f := byKey["index_size_bytes"]; f.Value == nil || *f.Value <= 0 {
			t.Errorf("check: parent's summed size %v, want the partitions' bytes", f.Value)
		}
	}

	s := start(t, testConfig(), map[string]string{"main": dsn})
	for _, tbl := range []string{"docs_a", "docs_b"} {
		l := map[string]string{"target": "main", "relname": tbl}
		s.waitSample(t, "pgvector_hnsw_elements", map[string]string{"target": "main", "relname": tbl, "state": "live"}, "the partition's rows", eq(float64(rows[tbl])))
		s.waitSample(t, "pgvector_probe_index_used", l, "1", eq(1))
		s.waitSample(t, "pgvector_index_partition_info", map[string]string{"target": "main", "relname": tbl,
			"parent_schemaname": "public", "parent_relname": "docs", "parent_indexrelname": "docs_hnsw"}, "1", eq(1))
	}
	// Every index, the parent included, has run each check by now (first runs come within a
	// quarter of the 1 s interval); one more interval for good measure.
	time.Sleep(2 * time.Second)
	for _, c := range []string{"structure", "recall", "drift"} {
		if v, ok := s.sample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": c}); !ok || v != 1 {
			t.Errorf("collector %s: success %v (present %v), want 1", c, v, ok)
		}
	}
	pl := map[string]string{"target": "main", "indexrelname": "docs_hnsw"}
	s.waitSample(t, "pgvector_index_info", pl, "1", eq(1))
	for _, name := range []string{"pgvector_recall_ratio", "pgvector_probe_index_used", "pgvector_hnsw_connectivity_ratio", "pgvector_index_partition_info"} {
		if _, ok := s.sample(t, name, pl); ok {
			t.Errorf("%s published for the parent index", name)
		}
	}
}

// TestDriftOfLayouts: drift reads an expression index's expression and only the rows of a
// partial index; sparsevec and bit indexes have no score and no error.
func TestDriftOfLayouts(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn, `SELECT setseed(0.4)`,
		`CREATE TABLE docs (id int, cat int, e vector(8), b bit(64))`,
		`INSERT INTO docs SELECT i, i % 3, (SELECT array_agg(random() * 10) FROM generate_series(1, 8) WHERE i > 0)::vector, `+randomBits+
			` FROM generate_series(1, 1500) i`,
		`CREATE INDEX docs_half ON docs USING hnsw ((e::halfvec(8)) halfvec_l2_ops)`,
		`CREATE INDEX docs_cat1 ON docs USING hnsw (e vector_l2_ops) WHERE cat = 1`,
		`CREATE INDEX docs_bits ON docs USING hnsw (b bit_hamming_ops)`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	half, cat1, bits := resolve(t, pool, "docs_half"), resolve(t, pool, "docs_cat1"), resolve(t, pool, "docs_bits")
	var xid int64
	if err := pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&xid); err != nil {
		t.Fatal(err)
	}
	drift := func(ix catalog.Index) (float64, bool) {
		t.Helper()
		d, ok, err := driftScore(ctx, pool, ix, uint64(xid), 200, nil, time.Minute)
		if err != nil {
			t.Fatalf("drift of %s: %v", ix, err)
		}
		return d, ok
	}
	if d, ok := drift(bits); ok || d != 0 {
		t.Errorf("drift of a bit index = %v, %v; want none", d, ok)
	}
	// Rows far from the others, but outside the partial index.
	far := `(SELECT array_agg(50 + random()) FROM generate_series(1, 8) WHERE i > 0)::vector`
	testenv.Exec(t, dsn, `INSERT INTO docs (id, cat, e) SELECT i, 2, `+far+` FROM generate_series(1, 400) i`)
	dc, ok := drift(cat1)
	dh, okh := drift(half)
	t.Logf("far rows outside the partial index: drift %.2f of the partial index, %.2f of the expression index", dc, dh)
	if !ok || dc > 1.5 || !okh || dh < 2 {
		t.Errorf("drift %.2f (%v) of the partial index, want about 1; %.2f (%v) of the expression index, want >= 2", dc, ok, dh, okh)
	}
	testenv.Exec(t, dsn, `INSERT INTO docs (id, cat, e) SELECT i, 1, `+far+` FROM generate_series(1, 400) i`)
	if dc, ok = drift(cat1); !ok || dc < 2 {
		t.Errorf("drift of the partial index after far rows in it = %.2f, %v; want >= 2", dc, ok)
	}
}

func sum(m map[string]float64) float64 {
	var n float64
	for _, v := range m {
		n += v
	}
	return n
}
