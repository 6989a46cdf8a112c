package exporter

import (
	"context"
	"errors"
	"math"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// appLoad is an application's query load: clients running, back to back, a statement with a
// vector operator whose execution time is set by pg_sleep, so that pg_stat_statements records
// a latency the test chooses, whatever the machine's own load.
type appLoad struct {
	sleepMicros atomic.Int64
	stop        context.CancelFunc
	wg          sync.WaitGroup
	errs        chan error
}

func startAppLoad(t *testing.T, dsn string, clients int, sleep time.Duration) *appLoad {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	a := &appLoad{stop: cancel, errs: make(chan error, clients)}
	a.sleepMicros.Store(sleep.Microseconds())
	for range clients {
		a.wg.Go(func() {
			for ctx.Err() == nil {
				_, err := pool.Exec(ctx, `SELECT pg_sleep($1::float8 / 1e6), '[1,2]'::vector <-> '[2,3]'::vector`, a.sleepMicros.Load())
				if err != nil && ctx.Err() == nil {
					a.errs <- err
					return
				}
			}
		})
	}
	t.Cleanup(func() {
		a.stop()
		a.wg.Wait()
		pool.Close()
		close(a.errs)
		for err := range a.errs {
			t.Errorf("application load: %v", err)
		}
	})
	return a
}

// waitBudget polls the budget b reports until cond holds, and fails when the scan ends first
// or a minute passes: the scan's pace is not asserted, only the decisions it reports.
func waitBudget(t *testing.T, b *scanBudget, done <-chan error, what string, cond func(rate, backoffs float64) bool) (rate, backoffs float64) {
	t.Helper()
	deadline := time.After(time.Minute)
	for {
		b.mu.Lock()
		rate, backoffs = b.rate, b.backoffs
		b.mu.Unlock()
		if cond(rate, backoffs) {
			return rate, backoffs
		}
		select {
		case err := <-done:
			t.Fatalf("the scan ended (%v) before %s (budget %g pages/s, %g back-offs)", err, what, rate, backoffs)
		case <-deadline:
			t.Fatalf("no %s within a minute (budget %g pages/s, %g back-offs)", what, rate, backoffs)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// TestAdaptiveBudgetFollowsApplicationLatency scans a real HNSW index with an adaptive budget
// while an application queries the database: when the application's statements slow down
// fortyfold the budget backs off, and when they are fast again it climbs back to its ceiling.
func TestAdaptiveBudgetFollowsApplicationLatency(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 10000, 16, 10)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")

	// The latency is a tail (mean plus twice the standard deviation), which a busy machine's
	// scheduling moves from window to window: a factor of 5 between 5 and 200 ms statements
	// keeps the decisions about the load the test sets, not about that noise.
	const fast, slow = 5 * time.Millisecond, 200 * time.Millisecond
	app := startAppLoad(t, dsn, 8, fast)

	// Ten pages a second, four per batch: the index's pages alone (several hundred) outlast
	// the test, which stops the scan once it has seen both decisions.
	cfg := testConfig()
	cfg.PageBatch = 4
	cfg.Structure = config.StructureCheck{Check: config.Check{Interval: 5 * time.Minute, Timeout: 4 * time.Minute},
		MaxPagesPerSecond: 10, Adaptive: true, MinPagesPerSecond: 1, LatencyFactor: 5, AdjustInterval: time.Second}
	budget := &scanBudget{logger: testLogger(t)}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := scanStructureBudgeted(ctx, pool, ix, rawPages(), cfg, budget)
		done <- err
	}()

	// The pacer exists once the baseline was measured and the scan's transaction began.
	waitBudget(t, budget, done, "scan start", func(rate, _ float64) bool { return rate > 0 })
	budget.mu.Lock()
	why := budget.noSignal
	budget.mu.Unlock()
	if why != "" {
		t.Fatalf("the scan keeps the fixed budget: %s", why)
	}

	app.sleepMicros.Store(slow.Microseconds())
	lowered, n := waitBudget(t, budget, done, "back-off while the application is slow", func(_, backoffs float64) bool { return backoffs > 0 })
	if lowered >= 10 || lowered < 1 {
		t.Errorf("after %g back-offs the budget is %g pages/s, want below the ceiling 10 and not below the floor 1", n, lowered)
	}

	app.sleepMicros.Store(fast.Microseconds())
	waitBudget(t, budget, done, "recovery to the ceiling once the application is fast again", func(rate, _ float64) bool { return rate == 10 })

	cancel()
	if err := <-done; err != nil && !errors.Is(err, context.Canceled) {
		t.Errorf("scan: %v", err)
	}
}

// TestAdaptiveScanStartsWhereThePreviousLeftOff: a target whose last scan ended at 3 pages/s
// starts the next one there, raised to the floor, not at the ceiling. The index's few pages
// are read long before the first window of 2 s is judged, so the scan ends at the rate it
// started at.
func TestAdaptiveScanStartsWhereThePreviousLeftOff(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 500, 4, 2)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")
	startAppLoad(t, dsn, 8, 5*time.Millisecond)
	cfg := testConfig()
	cfg.Structure = config.StructureCheck{Check: config.Check{Interval: 5 * time.Minute, Timeout: 4 * time.Minute},
		MaxPagesPerSecond: 1e6, MinPagesPerSecond: 1e5, Adaptive: true, LatencyFactor: 2, AdjustInterval: 2 * time.Second}
	budget := &scanBudget{logger: testLogger(t), rate: 3}
	if _, err := scanStructureBudgeted(context.Background(), pool, ix, rawPages(), cfg, budget); err != nil {
		t.Fatal(err)
	}
	if budget.noSignal != "" {
		t.Fatalf("the scan kept the fixed budget: %s", budget.noSignal)
	}
	if budget.rate != 1e5 || budget.backoffs != 0 {
		t.Errorf("budget %g pages/s, %g back-offs; want the floor 1e5 it started at, none", budget.rate, budget.backoffs)
	}
}

// TestAdaptiveBudgetWithoutStatementsKeepsTheCeiling: in a database without
// pg_stat_statements the adaptive scan reads at max_pages_per_second and says why.
func TestAdaptiveBudgetWithoutStatementsKeepsTheCeiling(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn, `DROP EXTENSION pg_stat_statements`)
	clustered(t, dsn, 500, 4, 2)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	pool := superPool(t, dsn)
	ix := resolve(t, pool, "items_hnsw")
	cfg := testConfig()
	cfg.Structure = config.StructureCheck{Check: config.Check{Interval: time.Minute, Timeout: time.Minute},
		MaxPagesPerSecond: 1e6, Adaptive: true, LatencyFactor: 2, AdjustInterval: 100 * time.Millisecond}
	budget := &scanBudget{logger: testLogger(t)}
	if _, err := scanStructureBudgeted(context.Background(), pool, ix, rawPages(), cfg, budget); err != nil {
		t.Fatal(err)
	}
	if budget.rate != 1e6 || budget.backoffs != 0 || budget.noSignal == "" {
		t.Errorf("budget %g pages/s, %g back-offs, why fixed %q; want the ceiling, none, a reason", budget.rate, budget.backoffs, budget.noSignal)
	}
}

// TestWindowTail: a window's latency is its statements' mean plus twice their standard
// deviation, from the differences of two readings; it needs minWindowCalls statements and
// totals that did not go back.
func TestWindowTail(t *testing.T) {
	// 100 statements of 10 ms before the window.
	prev := statementTotals{calls: 100, seconds: 1, squares: 100 * 0.01 * 0.01}
	// In the window, 45 statements of 10 ms and 15 of 50 ms: mean 20 ms, standard deviation
	// 17.32 ms.
	win := statementTotals{calls: 160, seconds: 1 + 45*0.01 + 15*0.05, squares: prev.squares + 45*0.01*0.01 + 15*0.05*0.05}
	for _, c := range []struct {
		name    string
		cur     statementTotals
		latency float64
		ok      bool
	}{
		{"steady", statementTotals{calls: 160, seconds: 1.6, squares: 160 * 0.01 * 0.01}, 0.01, true},
		{"a slow tail", win, 0.02 + 2*0.017320508, true},
		{"too few", statementTotals{calls: 100 + minWindowCalls - 1, seconds: 5, squares: 1}, 0, false},
		{"reset", statementTotals{calls: 10, seconds: 0.1, squares: 0.001}, 0, false},
		{"entries evicted", statementTotals{calls: 200, seconds: 0.5, squares: 0.001}, 0, false},
	} {
		latency, ok := c.cur.tailLatency(prev)
		if ok != c.ok || math.Abs(latency-c.latency) > 1e-6 {
			t.Errorf("%s: %g, %v; want %g, %v", c.name, latency, ok, c.latency, c.ok)
		}
	}
}

// TestScanBudgetIsPublished runs the exporter with an adaptive budget on a database whose
// application is idle: the scans keep the ceiling, /metrics shows it and no back-off, and the
// reason is logged once, not at every scan.
func TestScanBudgetIsPublished(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 500, 4, 2)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	cfg := testConfig()
	cfg.Recall.Disabled, cfg.Drift.Disabled = true, true
	cfg.Structure.MaxPagesPerSecond, cfg.Structure.Adaptive = 1e5, true
	cfg.Structure.LatencyFactor, cfg.Structure.AdjustInterval = 1.5, 100*time.Millisecond
	keep := &logLines{}
	s := startLogged(t, keep, cfg, map[string]string{"main": dsn})
	target := map[string]string{"target": "main"}
	s.waitSample(t, "vectorheal_structure_scan_budget_pages_per_second", target, "the ceiling", eq(1e5))
	s.waitSample(t, "vectorheal_structure_scan_backoffs_total", target, "no back-off", eq(0))
	// Two scans more: the reason stays the same and is not logged again.
	structure := map[string]string{"target": "main", "collector": kindStructure}
	last := s.waitSample(t, "vectorheal_collector_last_success_timestamp_seconds", structure, "a successful scan", exists)
	for range 2 {
		last = s.waitSample(t, "vectorheal_collector_last_success_timestamp_seconds", structure, "a later scan",
			func(v float64) bool { return v > last })
	}
	if n := keep.count("structure scans keep the fixed page budget", "fewer than 50 application statements"); n != 1 {
		t.Errorf("the fixed budget's reason was logged %d times, want once", n)
	}
}
