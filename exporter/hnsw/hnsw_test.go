package hnsw_test

import (
	"context"
	"fmt"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/hnsw/hnswtest"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type bundle struct {
	ctx  context.Context
	pg   *testenv.Postgres
	dsn  string
	pool *pgxpool.Pool
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	b := &bundle{ctx: ctx, pg: pg, dsn: dsn}
	b.connect(t)
	return b
}

func (b *bundle) connect(t *testing.T) {
	t.Helper()
	pool, err := pgxpool.New(b.ctx, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	b.pool = pool
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(b.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

func (b *bundle) count(t *testing.T, sql string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := b.pool.QueryRow(b.ctx, sql, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
	return n
}

// build creates table items(id, v vector(dim), note) with rows random vectors and an HNSW
// index items_v_idx on it.
func (b *bundle) build(t *testing.T, rows, dim int, with string) catalog.Index {
	t.Helper()
	b.exec(t, fmt.Sprintf(`CREATE TABLE items (id int PRIMARY KEY, v vector(%d), note int NOT NULL DEFAULT 0) WITH (fillfactor = 60, autovacuum_enabled = off)`, dim))
	b.exec(t, `SELECT setseed(0.42)`)
	b.exec(t, fmt.Sprintf(`INSERT INTO items (id, v)
		SELECT i, (SELECT array_agg(random()) FROM generate_series(1, %d) WHERE i > 0)::vector
		FROM generate_series(1, %d) AS i`, dim, rows))
	b.exec(t, `CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops) `+with)
	return b.resolve(t)
}

func (b *bundle) resolve(t *testing.T) catalog.Index {
	t.Helper()
	ix, err := catalog.Resolve(b.ctx, b.pool, "public", "items_v_idx")
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func (b *bundle) analyze(t *testing.T, ix catalog.Index) *hnsw.Report {
	t.Helper()
	r := pagescan.NewSQLReader(b.pool, ix.OID, 16, pagescan.RawPageFunc)
	rep, err := hnsw.Analyze(b.ctx, r, hnsw.Options{Heap: hnsw.SQLHeap(b.pool, ix), HeapBatch: 500, ListLimit: 1000})
	if err != nil {
		t.Fatalf("analyze %s: %v", ix, err)
	}
	return rep
}

// independent recomputes the graph figures with hnswtest's map-based decoder and BFS.
type independent struct {
	live, beingDeleted, deleted int64
	levels                      []int64 // live elements by level
	unreachable, orphans        []hnsw.TID
}

func (b *bundle) independent(t *testing.T, ix catalog.Index) independent {
	t.Helper()
	g, err := hnswtest.Load(b.ctx, b.pool, ix)
	if err != nil {
		t.Fatal(err)
	}
	var out independent
	reach := g.Reachable(nil)
	orphans := g.Orphans(nil)
	for _, tid := range g.Order {
		e := g.Elements[tid]
		switch {
		case e.Deleted:
			out.deleted++
		case !e.Live:
			out.beingDeleted++
		default:
			out.live++
			for len(out.levels) <= e.Level {
				out.levels = append(out.levels, 0)
			}
			out.levels[e.Level]++
			if !reach[tid] {
				out.unreachable = append(out.unreachable, tid)
			}
			if orphans[tid] {
				out.orphans = append(out.orphans, tid)
			}
		}
	}
	return out
}

// checkAgainst compares the report with the independent computation.
func checkAgainst(t *testing.T, rep *hnsw.Report, ind independent) {
	t.Helper()
	if rep.ElementsLive != ind.live || rep.ElementsBeingDeleted != ind.beingDeleted || rep.ElementsDeleted != ind.deleted {
		t.Errorf("elements live/being/deleted = %d/%d/%d, independent %d/%d/%d", rep.ElementsLive,
			rep.ElementsBeingDeleted, rep.ElementsDeleted, ind.live, ind.beingDeleted, ind.deleted)
	}
	if len(rep.LayerElements) != len(ind.levels) {
		t.Fatalf("layers = %d, independent %d", len(rep.LayerElements), len(ind.levels))
	}
	var sum int64
	for l := len(ind.levels) - 1; l >= 0; l-- {
		sum += ind.levels[l]
		if rep.LayerElements[l] != sum {
			t.Errorf("layer %d elements = %d, independent %d", l, rep.LayerElements[l], sum)
		}
	}
	if !slices.Equal(rep.UnreachableElements, ind.unreachable) {
		t.Errorf("unreachable = %v, independent %v", rep.UnreachableElements, ind.unreachable)
	}
	if !slices.Equal(rep.OrphanElements, ind.orphans) {
		t.Errorf("orphans = %v, independent %v", rep.OrphanElements, ind.orphans)
	}
	if rep.Unreachable != int64(len(ind.unreachable)) || rep.Orphans != int64(len(ind.orphans)) {
		t.Errorf("unreachable/orphans = %d/%d, independent %d/%d", rep.Unreachable, rep.Orphans, len(ind.unreachable), len(ind.orphans))
	}
}

// memPages copies every page of ix into memory: pages of one state, to patch and analyse.
func (b *bundle) memPages(t *testing.T, ix catalog.Index) pagescan.MemReader {
	t.Helper()
	var pages pagescan.MemReader
	if err := pagescan.Scan(b.ctx, pagescan.NewSQLReader(b.pool, ix.OID, 16, pagescan.RawPageFunc), 16, func(_ uint32, p []byte) error {
		pages = append(pages, slices.Clone(p))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return pages
}

// builtPages builds a 2000-element index (m = 8) and returns its pages in memory with their
// analysis, for tests that patch a real graph.
func (b *bundle) builtPages(t *testing.T) (pagescan.MemReader, *hnsw.Report) {
	t.Helper()
	pages := b.memPages(t, b.build(t, 2000, 16, `WITH (m = 8, ef_construction = 32)`))
	rep, err := hnsw.Analyze(b.ctx, pages, hnsw.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return pages, rep
}

func noFaults(t *testing.T, rep *hnsw.Report) {
	t.Helper()
	if len(rep.Faults) != 0 {
		t.Errorf("faults on a healthy index: %v", rep.Faults)
	}
}

func TestFreshIndex(t *testing.T) {
	b := setup(t)
	const rows = 3000
	ix := b.build(t, rows, 24, `WITH (m = 8, ef_construction = 32)`)
	rep := b.analyze(t, ix)
	t.Logf("report: %+v", *rep)
	noFaults(t, rep)
	if rep.Dimensions != 24 || rep.M != 8 || rep.EfConstruction != 32 {
		t.Errorf("meta dims/m/ef = %d/%d/%d", rep.Dimensions, rep.M, rep.EfConstruction)
	}
	if want := uint32(ix.SizeBytes / pagescan.PageSize); rep.Pages != want {
		t.Errorf("pages = %d, relation has %d", rep.Pages, want)
	}
	n := b.count(t, `SELECT count(*) FROM items`)
	if rep.ElementsLive != n || rep.HeapTIDsLive != n || rep.HeapTIDsDead != 0 || !rep.HeapTIDsExact {
		t.Errorf("live elements %d, live heap TIDs %d, dead %d; table has %d rows", rep.ElementsLive, rep.HeapTIDsLive, rep.HeapTIDsDead, n)
	}
	if rep.LayerElements[0] != n || len(rep.LayerElements) < 2 || rep.LayerElements[len(rep.LayerElements)-1] < 1 {
		t.Errorf("layer elements %v", rep.LayerElements)
	}
	if rep.EntryLevel != len(rep.LayerElements)-1 {
		t.Errorf("entry level %d, top layer %d", rep.EntryLevel, len(rep.LayerElements)-1)
	}
	checkAgainst(t, rep, b.independent(t, ix))
	for _, o := range rep.OrphanElements {
		if c := b.inLinks(t, ix, o); c != 0 {
			t.Errorf("orphan %v is listed in %d neighbour slots", o, c)
		}
	}
	if c := b.inLinks(t, ix, hnsw.TID{Block: 1, Offset: 1}); c == 0 && !slices.Contains(rep.OrphanElements, hnsw.TID{Block: 1, Offset: 1}) {
		t.Errorf("element (1,1) is no orphan but no slot lists it")
	}
	if rep.ConnectivityRatio != float64(n-rep.Unreachable)/float64(n) {
		t.Errorf("connectivity %v with %d unreachable", rep.ConnectivityRatio, rep.Unreachable)
	}
	if rep.EntryPointQuality <= 0.5 || rep.EntryPointQuality > 1 {
		t.Errorf("entry point quality %v on a fresh index", rep.EntryPointQuality)
	}
	if rep.FragmentationRatio != 0 {
		t.Errorf("fragmentation %v on a fresh index", rep.FragmentationRatio)
	}
	for l, f := range rep.NeighborFill {
		if rep.LayerElements[l] > 1 && (f <= 0 || f > 1) {
			t.Errorf("layer %d fill %v", l, f)
		}
	}
}

func TestDeleteThenVacuum(t *testing.T) {
	b := setup(t)
	const rows = 2000
	ix := b.build(t, rows, 16, `WITH (m = 8, ef_construction = 32)`)
	b.exec(t, `DELETE FROM items WHERE id % 10 = 3`)
	deleted := int64(rows / 10)
	rep := b.analyze(t, ix)
	noFaults(t, rep)
	if rep.HeapTIDsDead != deleted || rep.HeapTIDsLive != rows-deleted {
		t.Errorf("before VACUUM: heap TIDs live/dead = %d/%d, want %d/%d", rep.HeapTIDsLive, rep.HeapTIDsDead, rows-deleted, deleted)
	}
	if rep.ElementsLive != rows {
		t.Errorf("before VACUUM: live elements %d, want %d (the graph still holds them)", rep.ElementsLive, rows)
	}
	if want := float64(deleted) / rows; rep.FragmentationRatio < want*0.99 || rep.FragmentationRatio > want*1.01 {
		t.Errorf("before VACUUM: fragmentation %v, want about %v", rep.FragmentationRatio, want)
	}
	b.exec(t, `VACUUM items`)
	rep = b.analyze(t, ix)
	t.Logf("after vacuum: %+v", *rep)
	noFaults(t, rep)
	if rep.HeapTIDsDead != 0 || rep.HeapTIDsLive != rows-deleted || rep.ElementsLive != rows-deleted {
		t.Errorf("after VACUUM: heap TIDs live/dead = %d/%d, live elements %d; want %d/0/%d", rep.HeapTIDsLive, rep.HeapTIDsDead, rep.ElementsLive, rows-deleted, rows-deleted)
	}
	if rep.ElementsDeleted+rep.ElementsBeingDeleted != deleted || rep.ElementsDeleted == 0 {
		t.Errorf("after VACUUM: deleted %d + being deleted %d, want %d", rep.ElementsDeleted, rep.ElementsBeingDeleted, deleted)
	}
	if rep.FragmentationRatio <= 0 {
		t.Errorf("after VACUUM: fragmentation %v, want > 0 (deleted elements hold space)", rep.FragmentationRatio)
	}
	checkAgainst(t, rep, b.independent(t, ix))
}

func TestCutInLinks(t *testing.T) {
	b := setup(t)
	ix := b.build(t, 2500, 16, `WITH (m = 16, ef_construction = 64)`)
	// pgvector's build can itself leave an element without in-links (pruning may drop it from
	// every neighbour list); such natural orphans are counted before and after the cut.
	before := b.independent(t, ix)
	b.pool.Close()
	cut := hnswtest.CutInLinks(t, b.pg, b.dsn, "public", "items_v_idx", 4)
	b.connect(t)
	wantOrphans := sortTIDs(append(slices.Clone(before.orphans), cut...))
	wantUnreachable := sortTIDs(append(slices.Clone(before.unreachable), cut...))
	rep := b.analyze(t, ix)
	noFaults(t, rep)
	if !slices.Equal(rep.OrphanElements, wantOrphans) || !slices.Equal(rep.UnreachableElements, wantUnreachable) {
		t.Errorf("cut %v (natural orphans %v); orphans %v, unreachable %v", cut, before.orphans, rep.OrphanElements, rep.UnreachableElements)
	}
	if rep.Orphans != int64(len(wantOrphans)) || rep.Unreachable != int64(len(wantUnreachable)) {
		t.Errorf("orphans %d, unreachable %d, want %d and %d", rep.Orphans, rep.Unreachable, len(wantOrphans), len(wantUnreachable))
	}
	if want := float64(rep.ElementsLive-int64(len(wantUnreachable))) / float64(rep.ElementsLive); rep.ConnectivityRatio != want {
		t.Errorf("connectivity %v, want %v", rep.ConnectivityRatio, want)
	}
	for _, c := range cut {
		if n := b.inLinks(t, ix, c); n != 0 {
			t.Errorf("%v still listed in %d neighbour slots", c, n)
		}
	}
	checkAgainst(t, rep, b.independent(t, ix))
	b.exec(t, `REINDEX INDEX items_v_idx`)
	ix = b.resolve(t)
	rep = b.analyze(t, ix)
	noFaults(t, rep)
	after := b.independent(t, ix)
	checkAgainst(t, rep, after)
	// The rebuilt graph has none of the cut damage; a natural orphan of the new build is all
	// it may show, and there is at most one in a build of these parameters.
	if rep.Orphans > 1 || rep.Unreachable > 1 {
		t.Errorf("after REINDEX: orphans %d, unreachable %d", rep.Orphans, rep.Unreachable)
	}
	if len(after.orphans) > 0 {
		t.Logf("natural orphans of the rebuilt index: %v", after.orphans)
	}
}

func sortTIDs(ts []hnsw.TID) []hnsw.TID {
	slices.SortFunc(ts, func(x, y hnsw.TID) int {
		if x.Block != y.Block {
			return int(x.Block) - int(y.Block)
		}
		return int(x.Offset) - int(y.Offset)
	})
	return slices.Compact(ts)
}

// inLinks counts, in SQL alone, the neighbour slots of the index that hold the bytes of tid:
// a check that shares no decoding with the package.
func (b *bundle) inLinks(t *testing.T, ix catalog.Index, tid hnsw.TID) int64 {
	t.Helper()
	var raw [pagescan.TIDSize]byte
	pagescan.EncodeTID(raw[:], tid)
	return b.count(t, `
WITH tuples AS (
  SELECT substring(get_raw_page($1::oid::regclass::text, blk::int) FROM p.lp_off + 1 FOR p.lp_len) AS t
  FROM generate_series(1, pg_relation_size($1::oid::regclass) / 8192 - 1) AS blk,
       heap_page_items(get_raw_page($1::oid::regclass::text, blk::int)) AS p
  WHERE p.lp_flags = 1)
SELECT count(*) FROM tuples, generate_series(0, (length(t) - 4) / 6 - 1) AS s
WHERE get_byte(t, 0) = 2 AND substring(t FROM 5 + 6 * s FOR 6) = $2`, ix.OID, raw[:])
}

// TestSQLHeapHOT checks that SQLHeap counts a TID as live when it is the root of a HOT chain
// whose live version sits elsewhere on the page (also after pruning turned the root into a
// redirect), and as dead after a delete or a non-HOT update.
func TestSQLHeapHOT(t *testing.T) {
	b := setup(t)
	const rows = 1200
	ix := b.build(t, rows, 8, `WITH (m = 8, ef_construction = 32)`)
	// HOT updates (the indexed column is unchanged), several rounds with reads in between so
	// that pruning turns chain roots into redirects.
	for range 4 {
		b.exec(t, `UPDATE items SET note = note + 1 WHERE id % 3 = 0`)
		b.count(t, `SELECT count(*) FROM items WHERE note >= 0`)
	}
	// Non-HOT updates: a new vector means a new index entry; the old one points at a dead row.
	b.exec(t, `UPDATE items SET v = v + v WHERE id % 10 = 1`)
	b.exec(t, `DELETE FROM items WHERE id % 10 = 7`)
	redirects := int64(0)
	nblocks := b.count(t, `SELECT pg_relation_size('items') / 8192`)
	for blk := range nblocks {
		redirects += b.count(t, `SELECT count(*) FROM heap_page_items(get_raw_page('items', $1::int)) WHERE lp_flags = 2`, blk)
	}
	t.Logf("HOT redirects: %d", redirects)
	if redirects == 0 {
		t.Fatal("the test made no HOT redirects; it cannot check them")
	}
	rep := b.analyze(t, ix)
	live := b.count(t, `SELECT count(*) FROM items`)
	// Dead: the old versions of the non-HOT updates and the deleted rows.
	dead := int64(rows/10) + int64(rows/10)
	if rep.HeapTIDsLive != live || rep.HeapTIDsDead != dead {
		t.Errorf("heap TIDs live/dead = %d/%d, want %d/%d", rep.HeapTIDsLive, rep.HeapTIDsDead, live, dead)
	}
	b.exec(t, `VACUUM items`)
	rep = b.analyze(t, ix)
	if rep.HeapTIDsLive != live || rep.HeapTIDsDead != 0 {
		t.Errorf("after VACUUM: heap TIDs live/dead = %d/%d, want %d/0", rep.HeapTIDsLive, rep.HeapTIDsDead, live)
	}
}

// TestSQLHeapWithoutSuperuser runs the analysis as a monitoring role inside a read-only
// transaction, reading index pages through a SECURITY DEFINER wrapper: SQLHeap cannot read
// heap pages, must not abort the transaction, and says its dead count is an upper bound.
func TestSQLHeapWithoutSuperuser(t *testing.T) {
	b := setup(t)
	const rows = 600
	ix := b.build(t, rows, 8, `WITH (m = 8, ef_construction = 32)`)
	for range 3 {
		b.exec(t, `UPDATE items SET note = note + 1 WHERE id % 3 = 0`) // HOT
		b.count(t, `SELECT count(*) FROM items WHERE note >= 0`)
	}
	b.exec(t, `DELETE FROM items WHERE id % 10 = 7`)
	for _, s := range []string{
		`CREATE SCHEMA monitor`,
		`CREATE FUNCTION monitor.index_page(rel regclass, blk integer) RETURNS bytea
		 LANGUAGE sql STRICT SECURITY DEFINER SET search_path = pg_catalog AS $$ SELECT public.get_raw_page(rel::text, blk) $$`,
		`DROP ROLE IF EXISTS hnsw_monitor`,
		`CREATE ROLE hnsw_monitor LOGIN`,
		`GRANT USAGE ON SCHEMA monitor TO hnsw_monitor`,
		`GRANT SELECT ON items TO hnsw_monitor`,
	} {
		b.exec(t, s)
	}
	t.Cleanup(func() {
		_, _ = b.pool.Exec(context.Background(), `DROP OWNED BY hnsw_monitor; DROP ROLE hnsw_monitor`)
	})
	cfg, err := pgx.ParseConfig(b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	cfg.User = "hnsw_monitor"
	conn, err := pgx.ConnectConfig(b.ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(b.ctx)
	tx, err := conn.BeginTx(b.ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(b.ctx)
	r := pagescan.NewSQLReader(tx, ix.OID, 8, "monitor.index_page")
	rep, err := hnsw.Analyze(b.ctx, r, hnsw.Options{Heap: hnsw.SQLHeap(tx, ix), HeapBatch: 100})
	if err != nil {
		t.Fatalf("analyze as a monitoring role: %v", err)
	}
	dead := int64(rows / 10)
	if rep.HeapTIDsExact || rep.HeapTIDsDead <= dead || rep.HeapTIDsLive+rep.HeapTIDsDead != rows {
		t.Errorf("exact %v, heap TIDs live/dead %d/%d; want inexact, dead above %d (HOT roots counted), sum %d",
			rep.HeapTIDsExact, rep.HeapTIDsLive, rep.HeapTIDsDead, dead, rows)
	}
	var n int64
	if err := tx.QueryRow(b.ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil {
		t.Errorf("the transaction no longer works after the analysis: %v", err)
	}
	// As superuser the same figures are exact.
	rep = b.analyze(t, ix)
	if !rep.HeapTIDsExact || rep.HeapTIDsDead != dead {
		t.Errorf("superuser: exact %v, dead %d, want %d", rep.HeapTIDsExact, rep.HeapTIDsDead, dead)
	}
}

// items returns the line pointer offsets of block's element and neighbour tuples.
func items(t *testing.T, p []byte) (elems, neighbors []int) {
	t.Helper()
	h, _, err := pagescan.ParseIndexPage(p, hnsw.PageID)
	if err != nil {
		t.Fatal(err)
	}
	for off := 1; off <= pagescan.ItemCount(h); off++ {
		b, err := pagescan.Item(p, h, off)
		if err != nil || len(b) == 0 {
			continue
		}
		if _, err := hnsw.ParseNeighborTuple(b); err == nil {
			neighbors = append(neighbors, off)
		} else if e, err := hnsw.ParseElement(b); err == nil && e.NHeap > 0 {
			elems = append(elems, off)
		}
	}
	return elems, neighbors
}

// TestDanglingNeighbors: a neighbour slot naming a key that holds no element is one dangling
// neighbour, whether the key lies on a page decoded before the list (backward) or after it
// (forward, unknown while the list is read).
func TestDanglingNeighbors(t *testing.T) {
	b := setup(t)
	pages, clean := b.builtPages(t)
	noFaults(t, clean)
	first, last := uint32(1), uint32(len(pages)-1)
	_, firstNeighbors := items(t, pages[first])
	_, lastNeighbors := items(t, pages[last])
	// patch points the first valid slot of the neighbour tuple of the first live element on
	// block at target.
	patch := func(block uint32, target hnsw.TID) {
		p := pages[block]
		h, _, _ := pagescan.ParseIndexPage(p, hnsw.PageID)
		elems, _ := items(t, p)
		eb, _ := pagescan.Item(p, h, elems[0])
		e, _ := hnsw.ParseElement(eb)
		if e.Neighbor.Block != block {
			t.Fatalf("element %d/%d has its neighbour tuple on block %d: the test wants it on its own page", block, elems[0], e.Neighbor.Block)
		}
		nb, _ := pagescan.Item(p, h, int(e.Neighbor.Offset))
		nt, _ := hnsw.ParseNeighborTuple(nb)
		for i := range nt.Count {
			if nt.Slot(i).Valid() {
				pagescan.EncodeTID(nb[4+i*pagescan.TIDSize:], target)
				return
			}
		}
		t.Fatalf("no valid slot on block %d", block)
	}
	patch(first, hnsw.TID{Block: last, Offset: uint16(lastNeighbors[0])})  // forward
	patch(last, hnsw.TID{Block: first, Offset: uint16(firstNeighbors[0])}) // backward
	rep, err := hnsw.Analyze(b.ctx, pages, hnsw.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if got := rep.Faults[hnsw.FaultDanglingNeighbor]; got != 2 || len(rep.Faults) != 1 {
		t.Errorf("faults %v, want 2 dangling neighbours and nothing else", rep.Faults)
	}
}
