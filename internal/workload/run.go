package workload

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// Fork returns a generator of the same dataset (same centres) drawing from its own random
// stream, so concurrent workers need not share one.
func (g *Generator) Fork(seed uint64) *Generator {
	return &Generator{ds: g.ds, rng: rand.New(rand.NewPCG(seed, g.ds.Seed)), centers: g.centers}
}

// Options shape the workload Run drives.
type Options struct {
	// QueriesPerSecond is the target rate of nearest-neighbour queries. Default 20.
	QueriesPerSecond float64
	// K is each query's LIMIT. Default 10.
	K int
	// WritesPerSecond is the rate of single-row writes. 0: none.
	WritesPerSecond float64
	// UpdateShare is the share of writes that update a row instead of inserting one. Updates
	// leave dead tuples behind, so a validation that expects none cannot pass while they run.
	// Default 0: inserts only.
	UpdateShare float64
}

// Stats counts what Run did; it is safe to read while Run works.
type Stats struct {
	Queries     atomic.Int64
	Writes      atomic.Int64
	Errors      atomic.Int64
	QueryMicros atomic.Int64 // summed query latency
}

// MeanQueryLatency is the mean latency of the queries so far.
func (s *Stats) MeanQueryLatency() time.Duration {
	n := s.Queries.Load()
	if n == 0 {
		return 0
	}
	return time.Duration(s.QueryMicros.Load()/n) * time.Microsecond
}

// Run sends queries (and writes, if asked) at the given rates until ctx ends. Errors are
// counted rather than returned, because the faults injected alongside it (rebuilds, restarts)
// can make single statements fail; Run only returns early when the first query fails, which
// means the table is not there.
func (g *Generator) Run(ctx context.Context, pool *pgxpool.Pool, o Options, st *Stats) error {
	if o.QueriesPerSecond <= 0 {
		o.QueriesPerSecond = 20
	}
	if o.K <= 0 {
		o.K = 10
	}
	q := fmt.Sprintf("SELECT id FROM %s ORDER BY embedding <-> $1::vector LIMIT %d", g.table(), o.K)
	if err := g.query(ctx, pool, q, st); err != nil {
		return fmt.Errorf("first workload query: %w", err)
	}
	queryTick := time.NewTicker(time.Duration(float64(time.Second) / o.QueriesPerSecond))
	defer queryTick.Stop()
	var writeC <-chan time.Time
	if o.WritesPerSecond > 0 {
		wt := time.NewTicker(time.Duration(float64(time.Second) / o.WritesPerSecond))
		defer wt.Stop()
		writeC = wt.C
	}
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-queryTick.C:
			if err := g.query(ctx, pool, q, st); err != nil && ctx.Err() == nil {
				st.Errors.Add(1)
			}
		case <-writeC:
			if err := g.write(ctx, pool, o.UpdateShare); err != nil && ctx.Err() == nil {
				st.Errors.Add(1)
			} else if err == nil {
				st.Writes.Add(1)
			}
		}
	}
}

func (g *Generator) query(ctx context.Context, pool *pgxpool.Pool, q string, st *Stats) error {
	v, _ := g.Point()
	start := time.Now()
	rows, err := pool.Query(ctx, q, Literal(v))
	if err != nil {
		return err
	}
	for rows.Next() {
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	st.Queries.Add(1)
	st.QueryMicros.Add(time.Since(start).Microseconds())
	return nil
}

var errNoRow = errors.New("no row to update")

func (g *Generator) write(ctx context.Context, pool *pgxpool.Pool, updateShare float64) error {
	v, k := g.Point()
	if g.rng.Float64() >= updateShare {
		_, err := pool.Exec(ctx, "INSERT INTO "+g.table()+" (cluster, embedding) VALUES ($1, $2::vector)", k, Literal(v))
		return err
	}
	tag, err := pool.Exec(ctx, "UPDATE "+g.table()+" SET embedding = $1::vector WHERE id = (SELECT id FROM "+g.table()+
		" WHERE cluster = $2 ORDER BY random() LIMIT 1)", Literal(v), k)
	if err == nil && tag.RowsAffected() == 0 {
		return errNoRow
	}
	return err
}
