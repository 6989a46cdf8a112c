package hnsw_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/heapwatch"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// BenchmarkAnalyzeLarge measures Analyze on an index of VECTORHEAL_BENCH_HNSW_ROWS (default
// 200000) random 128-dimensional vectors against merely fetching the same pages with the same
// Reader. Building the index takes minutes, so it runs only with VECTORHEAL_BENCH_HNSW=1:
//
//	VECTORHEAL_BENCH_HNSW=1 go test -run '^$' -bench AnalyzeLarge -benchtime 3x -timeout 60m ./exporter/hnsw/
func BenchmarkAnalyzeLarge(b *testing.B) {
	if os.Getenv("VECTORHEAL_BENCH_HNSW") != "1" {
		b.Skip("set VECTORHEAL_BENCH_HNSW=1 to build the large index and run this benchmark")
	}
	rows := 200000
	if s := os.Getenv("VECTORHEAL_BENCH_HNSW_ROWS"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			b.Fatal(err)
		}
		rows = n
	}
	ctx := context.Background()
	pool, ix := largeIndex(b, rows)
	reader := pagescan.NewSQLReader(pool, ix.OID, 0, pagescan.RawPageFunc)
	fetch := func() {
		if err := pagescan.Scan(ctx, reader, 0, func(uint32, []byte) error { return nil }); err != nil {
			b.Fatal(err)
		}
	}
	var rep *hnsw.Report
	analyze := func() {
		var err error
		if rep, err = hnsw.Analyze(ctx, reader, hnsw.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	fetch() // warm the buffer cache for both
	var tFetch, tAnalyze time.Duration
	b.ResetTimer()
	for range b.N {
		t0 := time.Now()
		fetch()
		t1 := time.Now()
		analyze()
		tAnalyze += time.Since(t1)
		tFetch += t1.Sub(t0)
	}
	b.StopTimer()
	// The analysis alone: the same pages already in memory, no fetch to overlap with.
	var mem pagescan.MemReader
	if err := pagescan.Scan(ctx, reader, 0, func(_ uint32, p []byte) error {
		mem = append(mem, p)
		return nil
	}); err != nil {
		b.Fatal(err)
	}
	t2 := time.Now()
	if _, err := hnsw.Analyze(ctx, mem, hnsw.Options{}); err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(time.Since(t2).Seconds(), "analyze_mem_s")
	mem = nil
	peak := heapwatch.Peak(analyze)
	el := float64(rep.ElementsLive + rep.ElementsBeingDeleted + rep.ElementsDeleted)
	b.ReportMetric(tAnalyze.Seconds()/float64(b.N), "analyze_s")
	b.ReportMetric(tFetch.Seconds()/float64(b.N), "fetch_s")
	b.ReportMetric(float64(tAnalyze)/float64(tFetch), "x_fetch")
	b.ReportMetric(float64(rep.StateBytes)/el, "state_B/element")
	b.ReportMetric(float64(peak)/el, "peak_heap_B/element")
	b.ReportMetric(el, "elements")
	b.Logf("pages %d, elements %v, layers %v, unreachable %d, orphans %d, faults %v", rep.Pages, el, rep.LayerElements, rep.Unreachable, rep.Orphans, rep.Faults)
}

// BenchmarkAnalyzeFile runs Analyze on the pages of an index file copied from a data
// directory (base/<database oid>/<relfilenode> of a stopped cluster, one segment of up to
// 1 GiB) held in memory: the analysis's own CPU, without the database, for profiling it on an
// index of production size that takes long to build:
//
//	VECTORHEAL_BENCH_HNSW_FILE=/path/to/relfilenode go test -run '^$' -bench AnalyzeFile -benchtime 5x -cpuprofile cpu.out ./exporter/hnsw/
func BenchmarkAnalyzeFile(b *testing.B) {
	path := os.Getenv("VECTORHEAL_BENCH_HNSW_FILE")
	if path == "" {
		b.Skip("set VECTORHEAL_BENCH_HNSW_FILE to an HNSW index file to run this benchmark")
	}
	data, err := os.ReadFile(path)
	if err != nil {
		b.Fatal(err)
	}
	mem := pagescan.SplitPages(data)
	var rep *hnsw.Report
	b.ResetTimer()
	for range b.N {
		if rep, err = hnsw.Analyze(context.Background(), mem, hnsw.Options{}); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	el := float64(rep.ElementsLive + rep.ElementsBeingDeleted + rep.ElementsDeleted)
	b.ReportMetric(float64(rep.StateBytes)/el, "state_B/element")
	b.ReportMetric(el, "elements")
	b.Logf("pages %d, elements %v, layers %v, unreachable %d, orphans %d, faults %v", rep.Pages, el, rep.LayerElements, rep.Unreachable, rep.Orphans, rep.Faults)
}

// large caches the benchmark's index: the benchmark function runs more than once (b.N
// probing) and the build takes minutes.
var large struct {
	pool *pgxpool.Pool
	ix   catalog.Index
}

func largeIndex(b *testing.B, rows int) (*pgxpool.Pool, catalog.Index) {
	if large.pool != nil {
		return large.pool, large.ix
	}
	ctx := context.Background()
	pg := testenv.SharedPostgres(b)
	pool, err := pgxpool.New(ctx, pg.DSN("postgres")+"&pool_max_conns=2")
	if err != nil {
		b.Fatal(err)
	}
	conn, err := pool.Acquire(ctx) // one session, so that the SET holds for the build
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Release()
	start := time.Now()
	for _, s := range []string{
		`CREATE EXTENSION IF NOT EXISTS vector`,
		`CREATE EXTENSION IF NOT EXISTS pageinspect`,
		`SET maintenance_work_mem = '1GB'`,
		`CREATE TABLE items (id int PRIMARY KEY, v vector(128))`,
		`SELECT setseed(0.5)`,
		`INSERT INTO items SELECT i, (SELECT array_agg(random()) FROM generate_series(1, 128) WHERE i > 0)::vector
		 FROM generate_series(1, ` + strconv.Itoa(rows) + `) AS i`,
		`CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops)`,
	} {
		if _, err := conn.Exec(ctx, s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
	}
	b.Logf("built %d rows in %v", rows, time.Since(start))
	ix, err := catalog.Resolve(ctx, pool, "public", "items_v_idx")
	if err != nil {
		b.Fatal(err)
	}
	large.pool, large.ix = pool, ix
	return pool, ix
}
