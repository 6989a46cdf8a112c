package exporter

import (
	"context"
	"errors"
	"maps"
	"math/rand/v2"
	"sync"
	"sync/atomic"
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

// churn writes to table items the way an application does while its index is scanned:
// re-embeddings (UPDATE of the vector), deletes and inserts, one row per statement, and
// VACUUMs between them. Errors are counted, not fatal: the damage phase restarts the cluster
// under it.
type churn struct {
	pool    *pgxpool.Pool
	vacuum  atomic.Bool // run VACUUMs
	changes atomic.Int64
	errs    atomic.Int64
	lastErr atomic.Value // the last statement error, for the log
	paused  sync.Mutex   // held while the writers must stand still
	stop    context.CancelFunc
	done    sync.WaitGroup
}

// newVector is a row near center $2 of the test's centers (see clustered).
const newVector = `(SELECT (SELECT array_agg(x + (random() - 0.5) ORDER BY o) FROM unnest(v) WITH ORDINALITY AS u(x, o))::vector
	FROM centers WHERE c = $2)`

func startChurn(t *testing.T, dsn string, maxID int64, centers int) *churn {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	w := &churn{pool: superPool(t, dsn), stop: cancel}
	w.vacuum.Store(true)
	rng := rand.New(rand.NewPCG(7, 11))
	stmts := []string{
		`UPDATE items SET embedding = ` + newVector + ` WHERE id = $1`,
		`DELETE FROM items WHERE id = $1 AND $2::int IS NOT NULL`,
		`INSERT INTO items (embedding) SELECT ` + newVector + ` WHERE $1::bigint IS NOT NULL`,
	}
	w.done.Add(2)
	go func() {
		defer w.done.Done()
		for ctx.Err() == nil {
			w.paused.Lock()
			for i := 0; i < 6; i++ {
				tag, err := w.pool.Exec(ctx, stmts[rng.IntN(len(stmts))], 1+rng.Int64N(maxID), 1+rng.IntN(centers))
				w.count(tag.RowsAffected(), err)
			}
			w.paused.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	go func() {
		defer w.done.Done()
		for ctx.Err() == nil {
			if w.vacuum.Load() {
				w.paused.Lock()
				_, err := w.pool.Exec(ctx, `VACUUM items`)
				w.count(0, err)
				w.paused.Unlock()
			}
			time.Sleep(300 * time.Millisecond)
		}
	}()
	t.Cleanup(w.close)
	return w
}

func (w *churn) count(rows int64, err error) {
	if err != nil && !errors.Is(err, context.Canceled) {
		w.errs.Add(1)
		w.lastErr.Store(err.Error())
	}
	w.changes.Add(rows)
}

func (w *churn) close() {
	w.stop()
	w.done.Wait()
}

// TestFencedScansOfABusyIndex scans a healthy HNSW and a healthy IVFFlat index 100 times
// each while a writer changes rows and VACUUMs the table: no scan may report a structural
// fault, although pages change during the scans. Then damage is written into the HNSW file
// while the writer goes on: every scan finds exactly that damage.
func TestFencedScansOfABusyIndex(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	const rows = 8000
	clustered(t, dsn, rows, 16, 20)
	testenv.Exec(t, dsn,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 20)`)
	pool := superPool(t, dsn)
	cfg := testConfig()
	cfg.Structure.Timeout = time.Minute
	// A page budget spreads each scan over more of the writer's statements, as on a large
	// index: more pages change while it runs.
	cfg.Structure.MaxPagesPerSecond = 2000
	ctx := context.Background()
	indexes := []catalog.Index{resolve(t, pool, "items_hnsw"), resolve(t, pool, "items_ivf")}

	w := startChurn(t, dsn, rows, 20)
	start := time.Now()
	var changed, unconfirmed, raw int64
	const scans = 100
	for i := 0; i < scans; i++ {
		for _, ix := range indexes {
			s, err := scanStructure(ctx, pool, ix, rawPages(), cfg)
			if err != nil {
				t.Fatalf("scan %d of %s: %v", i, ix.Name, err)
			}
			if kinds := faultKindsOf(s); len(kinds) > 0 {
				t.Errorf("scan %d of healthy busy %s: faults %v (hnsw %v, ivfflat %v)", i, ix.Name, kinds, hnswFaults(s), ivfFaults(s))
			}
			if s.hnsw != nil {
				changed += s.hnsw.PagesChanged
				unconfirmed += s.hnsw.Unconfirmed
			} else {
				changed += s.ivf.PagesChanged
				unconfirmed += s.ivf.Unconfirmed
			}
		}
		raw += unfencedFaults(t, pool, indexes[0], cfg.Structure.MaxPagesPerSecond)
		if i%20 == 19 {
			t.Logf("%d scans, %d row changes, %d pages written during scans", i+1, w.changes.Load(), changed)
		}
	}
	elapsed := time.Since(start)
	n := w.changes.Load()
	t.Logf("%d scans of each index in %v under %d row changes (%.0f/s), %d statement errors (last: %v); pages written during the scans: %d; unconfirmed: %d; faults of the same churn read without the fence: %d",
		scans, elapsed.Round(time.Millisecond), n, float64(n)/elapsed.Seconds(), w.errs.Load(), w.lastErr.Load(), changed, unconfirmed, raw)
	if n == 0 || changed == 0 {
		t.Fatalf("the writer changed %d rows and %d pages changed during scans: the scans were not raced", n, changed)
	}

	// Damage while the writer goes on. No VACUUM in this phase: it may rewrite the damaged
	// lists, which would be a repair, not a miss.
	w.vacuum.Store(false)
	w.paused.Lock()
	t.Log("damaging the index")
	damaged := hnswtest.MismatchVersions(t, pg, dsn, "public", "items_hnsw", 3, false)
	w.paused.Unlock()
	pool.Reset()
	for i := 0; i < 5; i++ {
		s, err := scanStructure(ctx, pool, indexes[0], rawPages(), cfg)
		if err != nil {
			t.Fatalf("scan %d after the damage: %v", i, err)
		}
		want := map[string]int64{hnsw.FaultVersionMismatch: int64(len(damaged))}
		if got := hnswFaults(s); !maps.Equal(got, want) {
			t.Errorf("scan %d after damaging %v under churn: faults %v, want %v (unconfirmed %d)", i, damaged, got, want, s.hnsw.Unconfirmed)
		}
	}
}

// unfencedFaults counts the faults of one scan of ix read as before fencing: every page taken
// as read. It shows what the churn does to an unfenced scan; it is logged, not asserted.
func unfencedFaults(t *testing.T, pool *pgxpool.Pool, ix catalog.Index, pagesPerSecond float64) int64 {
	t.Helper()
	ctx := context.Background()
	var n int64
	err := pgx.BeginTxFunc(ctx, pool, pgx.TxOptions{AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		r := pagescan.Paced(pagescan.NewSQLReader(tx, ix.OID, 16, pagescan.RawPageFunc), pagescan.NewPacer(pagesPerSecond))
		rep, err := hnsw.Analyze(ctx, r, hnsw.Options{Batch: 16})
		if err != nil {
			return err
		}
		for _, c := range rep.Faults {
			n += c
		}
		return nil
	})
	if err != nil {
		t.Fatalf("unfenced scan: %v", err)
	}
	return n
}
