package main

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/workload"
)

// probeK is the k of recall@k and of the application's queries.
const probeK = 10

// hit is one row of a top-k result.
type hit struct {
	id   int64
	dist float64
}

// recallOf is recall@k of approx against exact (exact sorted by distance). A row missing from
// exact but as near as exact's k-th row counts: with ties at the k-th distance either row is
// a correct answer.
func recallOf(approx, exact []hit, k int) float64 {
	if len(exact) == 0 {
		return math.NaN()
	}
	want := min(k, len(exact))
	kth := exact[want-1].dist
	in := map[int64]bool{}
	for _, h := range exact[:want] {
		in[h.id] = true
	}
	found := 0
	for _, h := range approx {
		if found == want {
			break
		}
		if in[h.id] || h.dist <= kth+1e-9 {
			found++
		}
	}
	return float64(found) / float64(want)
}

// probeResult is recall@k over a set of queries on one index.
type probeResult struct {
	recall  float64
	short   int // queries whose index search returned fewer than k rows
	queries int
	setting string // the search setting a new session gets
}

// probeRecall measures recall@k of spec's index at the settings a new session gets: it opens
// its own connection, so pooled sessions with older settings cannot mask a change. Both
// searches of a query run in one repeatable-read transaction, so the churn between them
// cannot count as a miss; the exact one with index scans off.
func probeRecall(ctx context.Context, dsn string, spec indexSpec, queries [][]float32) (probeResult, error) {
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return probeResult{}, fmt.Errorf("probe connect: %w", err)
	}
	defer conn.Close(context.WithoutCancel(ctx))
	var r probeResult
	if err := conn.QueryRow(ctx, "SELECT current_setting($1)", spec.setting).Scan(&r.setting); err != nil {
		return r, fmt.Errorf("probe setting: %w", err)
	}
	q := fmt.Sprintf("SELECT id, embedding %s $1::vector FROM %s ORDER BY embedding %s $1::vector LIMIT %d",
		spec.op, pgx.Identifier{spec.table}.Sanitize(), spec.op, probeK)
	exactQ := fmt.Sprintf("SELECT id, d FROM (SELECT id, embedding %s $1::vector AS d FROM %s) s ORDER BY d, id LIMIT %d",
		spec.op, pgx.Identifier{spec.table}.Sanitize(), probeK)
	var sum float64
	for _, v := range queries {
		lit := workload.Literal(v)
		var approx, exact []hit
		err := pgx.BeginTxFunc(ctx, conn, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
			var err error
			if approx, err = hits(ctx, tx, q, lit); err != nil {
				return err
			}
			for _, s := range []string{"SET LOCAL enable_indexscan = off", "SET LOCAL enable_bitmapscan = off", "SET LOCAL enable_indexonlyscan = off"} {
				if _, err := tx.Exec(ctx, s); err != nil {
					return err
				}
			}
			exact, err = hits(ctx, tx, exactQ, lit)
			return err
		})
		if err != nil {
			return r, fmt.Errorf("probe %s: %w", spec.index, err)
		}
		if len(approx) < probeK {
			r.short++
		}
		if rc := recallOf(approx, exact, probeK); !math.IsNaN(rc) {
			sum += rc
			r.queries++
		}
	}
	r.recall = math.NaN()
	if r.queries > 0 {
		r.recall = sum / float64(r.queries)
	}
	return r, nil
}

func hits(ctx context.Context, tx pgx.Tx, q, lit string) ([]hit, error) {
	rows, err := tx.Query(ctx, q, lit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (hit, error) {
		var h hit
		err := row.Scan(&h.id, &h.dist)
		return h, err
	})
}

// tableStats are the statistics of one index and its table.
type tableStats struct {
	sizeBytes     int64
	live, dead    int64
	autovacuums   int64
	vacuumRunning bool
}

// readStats reads the size of the table's valid vector indexes (so a rebuild's new index
// counts once it replaces the old one, under whatever name) and the statistics collector's
// tuple counts.
func readStats(ctx context.Context, pool *pgxpool.Pool, spec indexSpec) (tableStats, error) {
	var s tableStats
	err := pool.QueryRow(ctx, `SELECT
		(SELECT coalesce(sum(pg_relation_size(i.indexrelid)), 0) FROM pg_index i
			JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_am a ON a.oid = c.relam
			WHERE i.indrelid = $1::regclass AND i.indisvalid AND a.amname IN ('hnsw', 'ivfflat'))::bigint,
		coalesce(n_live_tup, 0), coalesce(n_dead_tup, 0), coalesce(autovacuum_count, 0),
		EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p WHERE p.relid = $1::regclass)
		FROM pg_stat_user_tables WHERE relid = $1::regclass`, spec.table).
		Scan(&s.sizeBytes, &s.live, &s.dead, &s.autovacuums, &s.vacuumRunning)
	if err != nil {
		return s, fmt.Errorf("stats of %s: %w", spec.table, err)
	}
	return s, nil
}

// latencies collects the application's query latencies of one index between two samples.
type latencies struct {
	mu            sync.Mutex
	d             []float64 // seconds
	errors        int
	filtered      int
	filteredShort int
}

func (l *latencies) add(d time.Duration, filtered, short bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.d = append(l.d, d.Seconds())
	if filtered {
		l.filtered++
		if short {
			l.filteredShort++
		}
	}
}

func (l *latencies) fail() {
	l.mu.Lock()
	l.errors++
	l.mu.Unlock()
}

// window is what the application saw between two samples.
type window struct {
	queries, errors         int
	p50, p99                float64
	filtered, filteredShort int
}

// take returns the window since the last take and starts a new one.
func (l *latencies) take() window {
	l.mu.Lock()
	d, w := l.d, window{errors: l.errors, filtered: l.filtered, filteredShort: l.filteredShort}
	l.d, l.errors, l.filtered, l.filteredShort = nil, 0, 0, 0
	l.mu.Unlock()
	w.queries = len(d)
	w.p50, w.p99 = quantile(d, 0.5), quantile(d, 0.99)
	return w
}

// quantile is the nearest-rank q-quantile of xs (NaN for none); xs is sorted in place.
func quantile(xs []float64, q float64) float64 {
	if len(xs) == 0 {
		return math.NaN()
	}
	slices.Sort(xs)
	i := int(math.Ceil(q*float64(len(xs)))) - 1
	return xs[min(max(i, 0), len(xs)-1)]
}
