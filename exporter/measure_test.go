package exporter

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func resolve(t *testing.T, q catalog.Querier, name string) catalog.Index {
	t.Helper()
	ix, err := catalog.Resolve(context.Background(), q, "public", name)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// TestSkewRaisesListCVAndDrift inserts rows far from every IVFFlat center: they all land in
// one list, so the list-size CV rises, and the drift score of both index types rises above 1.
func TestSkewRaisesListCVAndDrift(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 2000, 8, 10)
	testenv.Exec(t, dsn,
		`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 10)`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	ivf, hn := resolve(t, pool, "items_ivf"), resolve(t, pool, "items_hnsw")
	var xid int64
	if err := pool.QueryRow(ctx, `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint`).Scan(&xid); err != nil {
		t.Fatal(err)
	}

	before, err := scanStructure(ctx, pool, ivf, rawPages(), config.Exporter{PageBatch: 16, Structure: config.StructureCheck{Check: config.Check{Timeout: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	if before.ivf.Entries != 2000 || len(before.ivf.Centers) != 10 || before.ivf.ListSizeCV > 0.5 {
		t.Fatalf("entries=%d centers=%d, want 2000 and 10", before.ivf.Entries, len(before.ivf.Centers))
	}
	d0, ok, err := driftScore(ctx, pool, ivf, uint64(xid), 200, before.ivf.Centers, time.Minute)
	if err != nil || !ok || d0 != 1 {
		t.Fatalf("drift before any new row = %v, %v, %v; want 1", d0, ok, err)
	}
	// New rows drawn like the build-time ones: no shift.
	addClustered(t, dsn, 1000)
	for _, c := range []struct {
		ix      catalog.Index
		centers [][]float32
	}{{ivf, before.ivf.Centers}, {hn, nil}} {
		d, ok, err := driftScore(ctx, pool, c.ix, uint64(xid), 200, c.centers, time.Minute)
		t.Logf("drift of %s with rows like the build-time ones: %.2f", c.ix, d)
		if err != nil || !ok || d < 0.7 || d > 1.3 {
			t.Errorf("drift of %s with rows like the build-time ones = %.2f, %v, %v; want about 1", c.ix, d, ok, err)
		}
	}

	// 1500 rows around (30, 30, ...), outside the [0, 10] box the clusters live in.
	testenv.Exec(t, dsn, `INSERT INTO items (embedding)
		SELECT (SELECT array_agg(30 + random()) FROM generate_series(1, 8))::vector FROM generate_series(1, 1500)`)
	after, err := scanStructure(ctx, pool, ivf, rawPages(), config.Exporter{PageBatch: 16, Structure: config.StructureCheck{Check: config.Check{Timeout: time.Minute}}})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("list size CV %.3f -> %.3f, sizes %v", before.ivf.ListSizeCV, after.ivf.ListSizeCV, after.ivf.ListSizes)
	if after.ivf.ListSizeCV < before.ivf.ListSizeCV+0.5 {
		t.Errorf("list size CV %.3f -> %.3f, want a rise of at least 0.5", before.ivf.ListSizeCV, after.ivf.ListSizeCV)
	}
	d1, ok, err := driftScore(ctx, pool, ivf, uint64(xid), 200, after.ivf.Centers, time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	dh, ok, err := driftScore(ctx, pool, hn, uint64(xid), 200, nil, time.Minute)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	t.Logf("drift ivfflat %.2f, hnsw %.2f", d1, dh)
	if d1 < 2 || dh < 2 {
		t.Errorf("drift after skewed inserts: ivfflat %.2f, hnsw %.2f; want both >= 2", d1, dh)
	}

}

// TestRecallFallsWithEfSearch lowers hnsw.ef_search to 1 for new sessions of a clustered
// dataset: the measured recall falls. The Measurer sees the same.
func TestRecallFallsWithEfSearch(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 3000, 16, 30)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 16, ef_construction = 64)`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")
	high, err := probe(ctx, pool, ix, 20, 10, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if !high.indexUsed || len(high.latencies) != 20 {
		t.Fatalf("probe: index used %v, %d latencies", high.indexUsed, len(high.latencies))
	}
	testenv.Exec(t, dsn, `DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET hnsw.ef_search = 1', current_database()); END $$`)
	fresh := superPool(t, dsn) // sessions started after ALTER DATABASE see the setting
	low, err := probe(ctx, fresh, ix, 20, 10, 10, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("recall@10: ef_search 40 -> %.3f, ef_search 1 -> %.3f", high.ratio, low.ratio)
	// The graph's build is random: over repeated runs recall with ef_search 40 ranged
	// 0.85-1.0 with pgvector's default build parameters, with 1 it stays near 0.1.
	if high.ratio < 0.6 || low.ratio >= high.ratio-0.3 {
		t.Errorf("recall@10 %.3f with the default ef_search and %.3f with 1; want >= 0.6 and a fall of 0.3", high.ratio, low.ratio)
	}
	// Sessions that started before the change see it too: the probe applies the settings a
	// new session would have.
	old, err := probe(ctx, pool, ix, 20, 10, 10, time.Minute)
	if err != nil || old.ratio >= high.ratio-0.3 {
		t.Errorf("recall@10 on a session from before ALTER DATABASE = %+v, %v; want below %.3f", old, err, high.ratio-0.3)
	}
	m := NewMeasurer(testConfig())
	got, err := m.Measure(ctx, pool, ix, "pgvector_recall_ratio")
	if err != nil || got >= high.ratio-0.3 {
		t.Errorf("Measurer recall = %.3f, %v; want below %.3f", got, err, high.ratio-0.3)
	}
}

// TestMeasurer re-measures figures directly, including after deletes and a REINDEX
// CONCURRENTLY that gives the index a new OID.
func TestMeasurer(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 2000, 8, 5)
	// The IVFFlat index is on a table of its own, so the planner has one index to choose for
	// each probe.
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`,
		`CREATE TABLE docs AS SELECT * FROM items`,
		`CREATE INDEX docs_ivf ON docs USING ivfflat (embedding vector_l2_ops) WITH (lists = 5)`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	hn, ivf := resolve(t, pool, "items_hnsw"), resolve(t, pool, "docs_ivf")
	m := NewMeasurer(testConfig())
	measure := func(ix catalog.Index, f string) float64 {
		t.Helper()
		v, err := m.Measure(ctx, pool, ix, f)
		if err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		return v
	}
	if v := measure(hn, "pgvector_hnsw_elements:live"); v != 2000 {
		t.Errorf("live elements = %v, want 2000", v)
	}
	if v := measure(ivf, "pgvector_ivfflat_lists"); v != 5 {
		t.Errorf("lists = %v, want 5", v)
	}
	for _, ix := range []catalog.Index{hn, ivf} {
		if v := measure(ix, "pgvector_probe_index_used"); v != 1 {
			t.Errorf("%s: probe index used = %v, want 1", ix, v)
		}
	}
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id <= 50`)
	if v := measure(hn, "pgvector_hnsw_heap_tids:dead"); v != 50 {
		t.Errorf("dead heap TIDs = %v, want 50", v)
	}
	// One reading of two sources: each figure says where and when it was read, and the
	// reading holds the other figures of the page scan, not asked for.
	start := time.Now()
	r := m.Read(ctx, pool, hn, "pgvector_hnsw_heap_tids:dead", "pgvector_recall_ratio")
	for name, src := range map[string]string{"pgvector_hnsw_heap_tids:dead": "structure", "pgvector_recall_ratio": "probe", "pgvector_hnsw_elements:live": "structure"} {
		v, ok := r[name]
		if !ok || v.Err != nil || v.Source != src || v.Server != "primary" || v.At.Before(start) || v.At.After(time.Now()) {
			t.Errorf("reading of %s: %+v (held %v), want a value from %s on primary read since %s", name, v, ok, src, start.Format(time.RFC3339Nano))
		}
	}
	if v, _ := r.Get("pgvector_hnsw_heap_tids:dead"); v != 50 {
		t.Errorf("dead heap TIDs in the reading = %v, want 50", v)
	}
	testenv.Exec(t, dsn, `VACUUM items`, `REINDEX INDEX CONCURRENTLY items_hnsw`)
	if v := measure(hn, "pgvector_hnsw_heap_tids:dead"); v != 0 {
		t.Errorf("dead heap TIDs after VACUUM and REINDEX = %v, want 0", v)
	}
	if v := measure(hn, "pgvector_hnsw_elements:live"); v != 1950 {
		t.Errorf("live elements after REINDEX = %v, want 1950", v)
	}
	if _, err := m.Measure(ctx, pool, ivf, "pgvector_hnsw_orphan_elements"); err == nil || !strings.Contains(err.Error(), "ivfflat") {
		t.Errorf("hnsw figure of an ivfflat index: %v", err)
	}
	if _, err := m.Measure(ctx, pool, hn, "pgvector_nonsense"); err == nil || !strings.Contains(err.Error(), `unknown figure "pgvector_nonsense"`) {
		t.Errorf("unknown figure: %v", err)
	}
	for _, f := range m.Figures() {
		name, _, _ := strings.Cut(f, ":")
		if !isListed(name) {
			t.Errorf("figure %s names no metric of Metrics()", f)
		}
	}
}

func isListed(name string) bool {
	for _, m := range Metrics() {
		if m.Name == name {
			return true
		}
	}
	return false
}

// TestPageReaderPrivileges: a non-superuser role gets no structure metrics and
// page_reader_available 0; after the wrapper is installed and the role is granted pg_monitor,
// the structure metrics appear. The wrapper refuses relations that are not vector indexes.
func TestPageReaderPrivileges(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	// Enough rows that the planner uses the index: the probe publishes recall only then.
	const rows = 1500
	clustered(t, dsn, rows, 4, 3)
	role := fmt.Sprintf("monitor_%d", time.Now().UnixNano()%1e9)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`,
		`CREATE ROLE `+role+` LOGIN`, `GRANT SELECT ON items TO `+role)
	t.Cleanup(func() {
		testenv.Exec(t, dsn, `DROP OWNED BY `+role)
		testenv.Exec(t, pg.DSN("postgres"), `DROP ROLE IF EXISTS `+role)
	})
	monitorDSN := strings.Replace(dsn, "://"+pg.User+"@", "://"+role+"@", 1)

	// Install refuses a role that is not superuser.
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, monitorDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	opts := InstallOptions{Schema: config.DefaultPageReaderSchema}
	if _, err := InstallPageReader(ctx, conn, opts); !errors.Is(err, ErrNotSuperuser) {
		t.Fatalf("install as %s: %v, want ErrNotSuperuser", role, err)
	}

	s := start(t, testConfig(), map[string]string{"mon": monitorDSN})
	tgt := map[string]string{"target": "mon"}
	hl := map[string]string{"target": "mon", "indexrelname": "items_hnsw", "state": "live"}
	s.waitSample(t, "vectorheal_page_reader_available", tgt, "0", eq(0))
	s.waitSample(t, "pgvector_index_info", map[string]string{"target": "mon", "indexrelname": "items_hnsw"}, "1", eq(1))
	s.waitSample(t, "pgvector_recall_ratio", map[string]string{"target": "mon"}, "present", exists)
	if _, ok := s.sample(t, "pgvector_hnsw_elements", hl); ok {
		t.Fatal("structure metrics published without page access")
	}

	// As migrate does, with a superuser connection.
	superConn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer superConn.Close(ctx)
	if _, err := InstallPageReader(ctx, superConn, opts); err != nil {
		t.Fatal(err)
	}
	s.waitSample(t, "vectorheal_page_reader_available", tgt, "0 without pg_monitor", eq(0))
	var page []byte
	err = conn.QueryRow(ctx, `SELECT vectorheal_pages.index_page('items_hnsw'::regclass, 0)`).Scan(&page)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("wrapper without pg_monitor: %v", err)
	}
	testenv.Exec(t, dsn, `GRANT pg_monitor TO `+role)
	s.waitSample(t, "vectorheal_page_reader_available", tgt, "1", eq(1))
	s.waitSample(t, "pgvector_hnsw_elements", hl, "= rows", eq(rows))

	conn2, err := pgx.Connect(ctx, monitorDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn2.Close(ctx)
	if err := conn2.QueryRow(ctx, `SELECT vectorheal_pages.index_page('items_hnsw'::regclass, 0)`).Scan(&page); err != nil || len(page) != 8192 {
		t.Fatalf("wrapper on an index: %d bytes, %v", len(page), err)
	}
	for _, rel := range []string{"items", "items_pkey"} {
		err := conn2.QueryRow(ctx, `SELECT vectorheal_pages.index_page($1::regclass, 0)`, rel).Scan(&page)
		if err == nil || !strings.Contains(err.Error(), "is not an hnsw or ivfflat index") {
			t.Errorf("wrapper on %s: %v, want a refusal", rel, err)
		}
	}
}

// TestProbeSamplesNewestRows: the probe takes its share of query vectors from the rows
// written last, on a small table (every row a candidate) and a large one (a block sample and
// the table's tail), so recall is measured where new data lands even while that data is a
// small share of the table.
func TestProbeSamplesNewestRows(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	for _, rows := range []int{3000, 20000} {
		t.Run(fmt.Sprint(rows), func(t *testing.T) {
			dsn := pg.CreateDatabase(t)
			testenv.Exec(t, dsn, `CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(2))`,
				fmt.Sprintf(`INSERT INTO items (embedding) SELECT ARRAY[random(), random()]::vector FROM generate_series(1, %d)`, rows),
				`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 10)`, `ANALYZE items`,
				// New data in a region the lists were not built for: 1 % of the rows.
				fmt.Sprintf(`INSERT INTO items (embedding) SELECT ARRAY[10 + random(), 10 + random()]::vector FROM generate_series(1, %d)`, rows/100))
			ctx := context.Background()
			pool := superPool(t, dsn)
			ix := resolve(t, pool, "items_ivf")
			tx, err := pool.Begin(ctx)
			if err != nil {
				t.Fatal(err)
			}
			defer func() { _ = tx.Rollback(ctx) }()
			newRegion := func(qs []string) (n int) {
				for _, q := range qs {
					x, err := strconv.ParseFloat(strings.SplitN(strings.TrimPrefix(q, "["), ",", 2)[0], 64)
					if err != nil {
						t.Fatalf("query vector %q: %v", q, err)
					}
					if x >= 10 {
						n++
					}
				}
				return n
			}
			stmts := statementsFor(ix, "<->", 10)
			qs, err := sampleVectors(ctx, tx, ix, stmts, 20, 10)
			if err != nil || len(qs) != 20 {
				t.Fatalf("sampled %d vectors, %v; want 20", len(qs), err)
			}
			if got := newRegion(qs); got < 10 {
				t.Errorf("%d of 20 query vectors from the 1 %% of rows written last, want at least the newest share of 10: %v", got, qs)
			}
			if uniform, err := sampleVectors(ctx, tx, ix, stmts, 20, 0); err != nil || len(uniform) != 20 || newRegion(uniform) > 5 {
				t.Errorf("uniform sample: %d vectors, %d from the newest 1 %% of rows, %v; want 20, at most 5", len(uniform), newRegion(uniform), err)
			}
		})
	}
}

// TestProbeSamplesLargeTables: above 10 000 rows query vectors come from a block sample.
func TestProbeSamplesLargeTables(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn, `CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(2))`,
		`INSERT INTO items (embedding) SELECT ARRAY[random(), random()]::vector FROM generate_series(1, 20000)`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`, `ANALYZE items`)
	ctx := context.Background()
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")
	tx, err := pool.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = tx.Rollback(ctx) }()
	qs, err := sampleVectors(ctx, tx, ix, statementsFor(ix, "<->", 10), 10, 5)
	if err != nil || len(qs) != 10 {
		t.Fatalf("sampled %d vectors, %v; want 10", len(qs), err)
	}
	seen := map[string]bool{}
	for _, q := range qs {
		seen[q] = true
	}
	if len(seen) < 9 {
		t.Errorf("sample has %d distinct vectors of 10", len(seen))
	}
	r, err := probe(ctx, pool, ix, 10, 5, 10, time.Minute)
	if err != nil || r.ratio < 0.8 || !r.indexUsed {
		t.Fatalf("probe: %+v, %v", r, err)
	}
}
