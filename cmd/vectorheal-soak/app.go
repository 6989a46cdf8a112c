package main

import (
	"context"
	"fmt"
	"math"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/workload"
)

// progress is the churn's progress in [0,1], shared by the churn driver and the readers of
// the drifting distribution.
type progress struct{ bits atomic.Uint64 }

func (p *progress) set(f float64) { p.bits.Store(math.Float64bits(f)) }
func (p *progress) get() float64  { return math.Float64frombits(p.bits.Load()) }

// application sends one index's top-10 queries at qps until ctx ends, as the application of
// a twin would, and records their latency. A third of the docs queries keep one category
// (filtered search, pgvector README: a filter leaves fewer rows than ef_search finds); half of
// the events queries ask about the newest data (near the drifting centre), half about the
// original clusters.
func application(ctx context.Context, pool *pgxpool.Pool, spec indexSpec, gen *workload.Generator, qps float64, prog *progress, lat *latencies) {
	t := pgx.Identifier{spec.table}.Sanitize()
	plain := fmt.Sprintf("SELECT id FROM %s ORDER BY embedding %s $1::vector LIMIT %d", t, spec.op, probeK)
	filtered := fmt.Sprintf("SELECT id FROM %s WHERE category = $2 ORDER BY embedding %s $1::vector LIMIT %d", t, spec.op, probeK)
	tk := time.NewTicker(time.Duration(float64(time.Second) / qps))
	defer tk.Stop()
	for i := 0; ; i++ {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		v, k := gen.Point()
		if spec.table == eventsTable && i%2 == 1 {
			v = gen.Near(driftCentre(gen.Centers(), prog.get()))
		}
		isFiltered := spec.table == docsTable && i%3 == 2
		start := time.Now()
		var rows pgx.Rows
		var err error
		if isFiltered {
			rows, err = pool.Query(ctx, filtered, workload.Literal(v), k%categories)
		} else {
			rows, err = pool.Query(ctx, plain, workload.Literal(v))
		}
		n := 0
		if err == nil {
			for rows.Next() {
				n++
			}
			rows.Close()
			err = rows.Err()
		}
		if err != nil {
			if ctx.Err() == nil {
				lat.fail()
			}
			continue
		}
		lat.add(time.Since(start), isFiltered, n < probeK)
	}
}
