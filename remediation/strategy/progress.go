package strategy

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Progress is one sample of a running maintenance statement, read from
// pg_stat_progress_create_index or pg_stat_progress_vacuum.
type Progress struct {
	Target  string
	Index   catalog.Index
	Command string  // e.g. "REINDEX CONCURRENTLY", "VACUUM"
	Phase   string  // the view's phase column
	Ratio   float64 // 0..1 within the current phase; -1 when the phase reports no counts
}

// Build progress: blocks while scanning the table, tuples while loading the graph; the ratio
// is of whichever the current phase counts.
const createIndexProgressSQL = `
SELECT command, phase,
       CASE WHEN blocks_total > 0 THEN blocks_done::float8 / blocks_total
            WHEN tuples_total > 0 THEN tuples_done::float8 / tuples_total
            ELSE -1 END
FROM pg_stat_progress_create_index WHERE pid = $1`

// Vacuum progress: the heap scan, then the second heap pass, count blocks; the index passes
// (where pgvector repairs the graph) report no counts.
const vacuumProgressSQL = `
SELECT 'VACUUM', phase,
       CASE WHEN heap_blks_total = 0 THEN -1
            WHEN phase = 'scanning heap' THEN heap_blks_scanned::float8 / heap_blks_total
            WHEN phase = 'vacuuming heap' THEN heap_blks_vacuumed::float8 / heap_blks_total
            ELSE -1 END
FROM pg_stat_progress_vacuum WHERE pid = $1`

// watchProgress samples the progress view for backend pid every interval until the returned
// stop function is called. It reads through pool, not through the busy session.
func watchProgress(ctx context.Context, env Env, opts Options, ix catalog.Index, query string, pid uint32) (stop func()) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		t := time.NewTicker(opts.progressInterval())
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
			p, ok := sampleProgress(ctx, env.Pool, query, pid)
			if !ok {
				continue
			}
			p.Target, p.Index = env.Target, ix
			logger(env).Info("maintenance progress", slog.String("index", ix.String()),
				slog.String("command", p.Command), slog.String("phase", p.Phase), slog.Float64("ratio", p.Ratio))
			if opts.OnProgress != nil {
				opts.OnProgress(p)
			}
		}
	}()
	return func() { cancel(); wg.Wait() }
}

func sampleProgress(ctx context.Context, pool *pgxpool.Pool, query string, pid uint32) (Progress, bool) {
	var p Progress
	if err := pool.QueryRow(ctx, query, int64(pid)).Scan(&p.Command, &p.Phase, &p.Ratio); err != nil {
		return Progress{}, false
	}
	return p, true
}

func logger(env Env) *slog.Logger {
	if env.Logger != nil {
		return env.Logger
	}
	return slog.New(slog.DiscardHandler)
}
