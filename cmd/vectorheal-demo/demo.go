package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/figure"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/internal/workload"
)

// Names of what the demo creates; prefixed so they cannot clash with a user's tables.
const (
	docsTable   = "vectorheal_demo_docs"
	docsIndex   = "vectorheal_demo_docs_hnsw"
	eventsTable = "vectorheal_demo_events"
	eventsIndex = "vectorheal_demo_events_ivfflat"
	demoDB      = "vectorheal_demo"
	// stateSchema keeps the demo's state apart from a real vectorheal's in a given database.
	stateSchema = "vectorheal_demo"
)

type demo struct {
	o   options
	out io.Writer

	mu       sync.Mutex // serializes output lines
	cleanups []func()
	pool     *pgxpool.Pool
	stack    *e2e.Stack
	watch    *e2e.Watcher
	docs     *workload.Generator
	events   *workload.Generator
}

func (d *demo) printf(format string, args ...any) {
	d.mu.Lock()
	defer d.mu.Unlock()
	fmt.Fprintf(d.out, format, args...)
}

// onExit registers f to run at exit, last registered first.
func (d *demo) onExit(f func()) { d.cleanups = append(d.cleanups, f) }

func (d *demo) cleanup() {
	for i := len(d.cleanups) - 1; i >= 0; i-- {
		d.cleanups[i]()
	}
}

func (d *demo) run(ctx context.Context) error {
	bin, err := absPath(d.o.vectorheal)
	if err != nil {
		return fmt.Errorf("vectorheal binary: %w (run make build, or give --vectorheal)", err)
	}
	root, err := absPath(d.o.root)
	if err != nil {
		return fmt.Errorf("--root: %w", err)
	}
	for _, f := range []string{"rules", "deploy/alertmanager/alertmanager.yml", "deploy/runbook.yml"} {
		if _, err := os.Stat(filepath.Join(root, f)); err != nil {
			return fmt.Errorf("--root %s lacks %s: %w", root, f, err)
		}
	}
	dir := d.o.dir
	if dir == "" {
		if dir, err = os.MkdirTemp("", "vectorheal-demo-"); err != nil {
			return err
		}
	}
	if !d.o.keep {
		d.onExit(func() { os.RemoveAll(dir) })
	}
	d.printf("vectorheal demo — work directory %s\n\n", dir)

	dsn, err := d.database(ctx)
	if err != nil {
		return err
	}
	if d.pool, err = pgxpool.New(ctx, dsn); err != nil {
		return err
	}
	d.onExit(d.pool.Close)
	if err := d.load(ctx); err != nil {
		return err
	}
	// ivfflat.probes = 1, the default, finds about 70 % of the true neighbours on this
	// dataset: a recall alert before any fault. Ten lists of twenty are what an operator would set.
	if _, err := d.pool.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{d.dbName(ctx)}.Sanitize()+" SET ivfflat.probes = 10"); err != nil {
		return fmt.Errorf("set ivfflat.probes: %w", err)
	}
	if err := d.startStack(ctx, root, dir, bin, dsn); err != nil {
		return err
	}
	wctx, stopWork := context.WithCancel(ctx)
	var wg sync.WaitGroup
	d.onExit(func() { stopWork(); wg.Wait() })
	stats := &workload.Stats{}
	wg.Go(func() {
		_ = d.docs.Fork(1).Run(wctx, d.pool, workload.Options{QueriesPerSecond: 20, WritesPerSecond: 2}, stats)
	})
	wg.Go(func() { _ = d.events.Fork(2).Run(wctx, d.pool, workload.Options{QueriesPerSecond: 5}, stats) })
	wg.Go(func() { d.follow(wctx) })

	results, err := d.faults(ctx)
	d.printf("\n%-44s %10s %10s %10s %10s\n", "fault", "detected", "repaired", "resolved", "total")
	for _, r := range results {
		d.printf("%-44s %10s %10s %10s %10s\n", r.name, secs(r.firing.Sub(r.injected)), secs(r.repaired.Sub(r.firing)),
			secs(r.resolved.Sub(r.repaired)), secs(r.resolved.Sub(r.injected)))
	}
	d.printf("workload: %s\n", figure.Pairs(map[string]float64{
		"queries": float64(stats.Queries.Load()), "query_latency_mean_seconds": stats.MeanQueryLatency().Seconds(),
		"writes": float64(stats.Writes.Load()), "errors": float64(stats.Errors.Load())}))
	if err != nil {
		return err
	}
	d.printf("\nevery fault healed without a manual step.\n")
	if d.o.exit {
		return nil
	}
	d.printf("The stack keeps running for you to look around (URLs above). Press Ctrl-C to stop and clean up.\n")
	<-ctx.Done()
	return ctx.Err()
}

func secs(d time.Duration) string {
	if d < 0 {
		return "-"
	}
	return fmt.Sprintf("%.1fs", d.Seconds())
}

// database returns the DSN of the demo database: the user's, or a new database of a private
// PostgreSQL.
func (d *demo) database(ctx context.Context) (string, error) {
	if d.o.dsn != "" {
		d.printf("using the database of VECTORHEAL_DEMO_DSN\n")
		if err := d.checkGivenDatabase(ctx); err != nil {
			return "", err
		}
		return d.o.dsn, nil
	}
	var pg *testenv.Postgres
	err := d.step(ctx, "starting a private PostgreSQL with pgvector", func(func(string)) error {
		var err error
		pg, err = testenv.StartPostgres(ctx)
		return err
	})
	if err != nil {
		return "", fmt.Errorf("start PostgreSQL (run scripts/install-deps.sh): %w", err)
	}
	d.onExit(pg.Destroy)
	conn, err := pgx.Connect(ctx, pg.DSN("postgres"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE DATABASE "+demoDB); err != nil {
		return "", fmt.Errorf("create database: %w", err)
	}
	d.printf("  PostgreSQL        %s\n", pg.DSN(demoDB))
	return pg.DSN(demoDB), nil
}

// checkGivenDatabase refuses a user's database that already holds what the demo would create,
// and arranges for what it creates to be removed at exit. The schema vectorheal (where the
// page-reading function lives) is dropped only when the demo created it.
func (d *demo) checkGivenDatabase(ctx context.Context) error {
	conn, err := pgx.Connect(ctx, d.o.dsn)
	if err != nil {
		return fmt.Errorf("VECTORHEAL_DEMO_DSN: %w", err)
	}
	defer conn.Close(ctx)
	var taken []string
	var hadVectorheal bool
	err = conn.QueryRow(ctx, `SELECT
		coalesce(array_agg(relname::text) FILTER (WHERE relname IS NOT NULL), '{}'),
		EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = 'vectorheal')
		FROM (SELECT relname FROM pg_class WHERE relname IN ($1, $2)
		      UNION ALL SELECT nspname FROM pg_namespace WHERE nspname = $3) x`,
		docsTable, eventsTable, stateSchema).Scan(&taken, &hadVectorheal)
	if err != nil {
		return fmt.Errorf("VECTORHEAL_DEMO_DSN: %w", err)
	}
	if len(taken) > 0 {
		return fmt.Errorf("VECTORHEAL_DEMO_DSN: the database already has %s; the demo does not touch existing objects",
			strings.Join(taken, ", "))
	}
	d.onExit(func() { d.dropDemoObjects(d.o.dsn, !hadVectorheal) })
	return nil
}

// dropDemoObjects undoes, in a user's database, what the demo created there.
func (d *demo) dropDemoObjects(dsn string, dropVectorheal bool) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		return
	}
	defer conn.Close(ctx)
	var db string
	_ = conn.QueryRow(ctx, "SELECT current_database()").Scan(&db)
	stmts := []string{
		"DROP TABLE IF EXISTS " + docsTable + ", " + eventsTable,
		"ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " RESET hnsw.ef_search",
		"ALTER DATABASE " + pgx.Identifier{db}.Sanitize() + " RESET ivfflat.probes",
		"DROP SCHEMA IF EXISTS " + stateSchema + " CASCADE",
	}
	if dropVectorheal {
		stmts = append(stmts, "DROP SCHEMA IF EXISTS vectorheal CASCADE")
	}
	for _, q := range stmts {
		_, _ = conn.Exec(ctx, q)
	}
}

// step runs f while showing label with a spinner, the elapsed time and f's latest status.
func (d *demo) step(ctx context.Context, label string, f func(status func(string)) error) error {
	var mu sync.Mutex
	status := ""
	set := func(s string) { mu.Lock(); status = s; mu.Unlock() }
	done := make(chan error, 1)
	start := time.Now()
	go func() { done <- f(set) }()
	spin := []string{"|", "/", "-", `\`}
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for i := 0; ; i++ {
		select {
		case err := <-done:
			mark := "done"
			if err != nil {
				mark = "FAILED"
			}
			d.printf("\r\033[K%s ... %s (%.1fs)\n", label, mark, time.Since(start).Seconds())
			return err
		case <-ctx.Done():
			d.printf("\n")
			<-done
			return ctx.Err()
		case <-tick.C:
			mu.Lock()
			s := status
			mu.Unlock()
			d.printf("\r\033[K%s %s %s (%.0fs)", label, spin[i%len(spin)], s, time.Since(start).Seconds())
		}
	}
}

// load creates and indexes the two demo tables, showing progress.
func (d *demo) load(ctx context.Context) error {
	rows := max(d.o.rows, 2000)
	d.docs = workload.NewGenerator(workload.Dataset{Table: docsTable, Rows: rows, Dim: 32, Clusters: 16, Seed: 1})
	d.events = workload.NewGenerator(workload.Dataset{Table: eventsTable, Rows: rows / 10, Dim: 16, Clusters: 8, Seed: 2})
	for _, g := range []*workload.Generator{d.docs, d.events} {
		ds := g.Dataset()
		err := d.step(ctx, fmt.Sprintf("loading %d clustered %d-d vectors into %s", ds.Rows, ds.Dim, ds.Table), func(status func(string)) error {
			return g.Load(ctx, d.pool, func(done, total int) { status(fmt.Sprintf("%d/%d rows", done, total)) })
		})
		if err != nil {
			return err
		}
	}
	if err := d.step(ctx, "building HNSW index "+docsIndex, func(status func(string)) error {
		stop := d.buildProgress(ctx, docsTable, status)
		defer stop()
		return d.docs.CreateHNSW(ctx, d.pool, docsIndex, 16, 64)
	}); err != nil {
		return err
	}
	return d.step(ctx, "building IVFFlat index "+eventsIndex+" (lists = 20)", func(status func(string)) error {
		stop := d.buildProgress(ctx, eventsTable, status)
		defer stop()
		return d.events.CreateIVFFlat(ctx, d.pool, eventsIndex, 20)
	})
}

// buildProgress reports pg_stat_progress_create_index of table through status until stopped.
func (d *demo) buildProgress(ctx context.Context, table string, status func(string)) (stop func()) {
	pctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			var phase string
			var tdone, ttotal, bdone, btotal int64
			err := d.pool.QueryRow(pctx, `SELECT phase, tuples_done, tuples_total, blocks_done, blocks_total
				FROM pg_stat_progress_create_index WHERE relid = $1::regclass`, table).Scan(&phase, &tdone, &ttotal, &bdone, &btotal)
			if err == nil {
				s := phase
				if ttotal > 0 {
					s += fmt.Sprintf(" %d/%d tuples", tdone, ttotal)
				} else if btotal > 0 {
					s += fmt.Sprintf(" %d/%d blocks", bdone, btotal)
				}
				status(s)
			}
			select {
			case <-pctx.Done():
				return
			case <-time.After(300 * time.Millisecond):
			}
		}
	}()
	return func() { cancel(); <-done }
}

func (d *demo) startStack(ctx context.Context, root, dir, bin, dsn string) error {
	err := d.step(ctx, "starting vectorheal, Alertmanager and Prometheus", func(func(string)) error {
		var err error
		d.stack, err = e2e.Start(ctx, e2e.Config{
			Root: root, Dir: filepath.Join(dir, "stack"), Vectorheal: bin,
			Targets:     []e2e.Target{{Name: "demo", DSN: dsn}},
			StateSchema: stateSchema,
			// A little slower than the tests' timings: easier to follow, still seconds.
			Timing: e2e.Timing{ScrapeInterval: 3 * time.Second, EvaluationInterval: 3 * time.Second, MaxFor: 9 * time.Second,
				GroupWait: 2 * time.Second, GroupInterval: 3 * time.Second, CheckInterval: 3 * time.Second},
		})
		return err
	})
	if err != nil {
		return err
	}
	d.onExit(d.stack.Close)
	d.watch = e2e.NewWatcher(d.stack, d.pool)
	v, am, prom := d.stack.Vectorheals[0].URL, d.stack.Alertmanagers[0].URL, d.stack.Prometheus.URL
	t := d.stack.Config.Timing
	d.printf(`
  Prometheus alerts   %s/alerts
  Prometheus graph    %s/graph?g0.expr=pgvector_hnsw_heap_tids
  Alertmanager        %s/#/alerts
  vectorheal metrics  %s/metrics
  vectorheal repairs  %s/api/v1/repairs
  timings (shortened for the demo): scrape %s, rule evaluation %s, alert 'for' at most %s,
  group_wait %s, index checks every %s; shipped files are copied to %s and rewritten there.
`, prom, prom, am, v, v, t.ScrapeInterval, t.EvaluationInterval, t.MaxFor, t.GroupWait, t.CheckInterval, d.stack.Config.Dir)
	return nil
}

// follow prints the timeline of the demo's indexes as it happens.
func (d *demo) follow(ctx context.Context) {
	for {
		evs, err := d.watch.Poll(ctx)
		if err == nil {
			for _, e := range evs {
				if e.Index == docsIndex || e.Index == eventsIndex {
					d.printf("    %s\n", strings.TrimSpace(e.String()))
				}
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// result is one healed fault.
type result struct {
	name                                 string
	injected, firing, repaired, resolved time.Time
}

// fault is one injected problem and what heals it.
type fault struct {
	name     string
	index    string
	alerts   []string // the alerts the fault raises; any of them may lead to the repair
	strategy string   // a step of the repair that must succeed
	inject   func(ctx context.Context) (string, error)
}

func (d *demo) faults(ctx context.Context) ([]result, error) {
	fs := []fault{
		{name: "mass delete: dead tuples in the HNSW graph", index: docsIndex, alerts: []string{"PgvectorHNSWDeadTuplesPending"}, strategy: "reclaim",
			inject: func(ctx context.Context) (string, error) {
				n, err := d.docs.DeleteFraction(ctx, d.pool, 0.4)
				return fmt.Sprintf("deleted %d rows of %s", n, docsTable), err
			}},
		{name: "drifted inserts: IVFFlat lists out of balance", index: eventsIndex, alerts: []string{"PgvectorIVFFlatImbalanced", "PgvectorDistributionShift"}, strategy: "ivfflat_retrain",
			inject: func(ctx context.Context) (string, error) {
				n := 3 * d.events.Dataset().Rows
				return fmt.Sprintf("inserted %d vectors from a region the IVFFlat centres never saw", n), d.events.InsertDrifted(ctx, d.pool, n, nil)
			}},
		{name: "hnsw.ef_search lowered to 1: recall drops", index: docsIndex, alerts: []string{"PgvectorRecallBelowTarget"}, strategy: "tune_search",
			inject: func(ctx context.Context) (string, error) {
				db := d.dbName(ctx)
				_, err := d.pool.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET hnsw.ef_search = 1")
				return "ALTER DATABASE " + db + " SET hnsw.ef_search = 1", err
			}},
	}
	var out []result
	for i, f := range fs {
		d.printf("\n=== fault %d/%d: %s\n", i+1, len(fs), f.name)
		r, err := d.heal(ctx, f)
		if err != nil {
			return out, fmt.Errorf("fault %q: %w", f.name, err)
		}
		out = append(out, r)
		d.printf("=== healed in %s\n", secs(r.resolved.Sub(r.injected)))
	}
	return out, nil
}

// heal injects f and waits until its alert fired, a repair with f's strategy succeeded and the
// alert resolved.
func (d *demo) heal(ctx context.Context, f fault) (result, error) {
	r := result{name: f.name, injected: time.Now()}
	what, err := f.inject(ctx)
	if err != nil {
		return r, err
	}
	d.printf("    injected: %s; waiting for %s\n", what, strings.Join(f.alerts, " or "))
	deadline := time.Now().Add(d.o.faultWait)
	for {
		if r.firing.IsZero() {
			for _, e := range d.watch.Events() {
				if e.Index == f.index && e.Kind == e2e.AlertFiring && slices.Contains(f.alerts, e.Alert) && !e.At.Before(r.injected) {
					r.firing = e.At
				}
			}
		}
		if !r.firing.IsZero() && r.repaired.IsZero() {
			rs, err := e2e.Repairs(ctx, d.pool, stateSchema)
			if err != nil {
				return r, err
			}
			for _, rep := range rs {
				if rep.Index != f.index || !slices.Contains(f.alerts, rep.Alertname) || !rep.Finished() || rep.CreatedAt.Before(r.injected) {
					continue
				}
				ok := false
				for _, s := range rep.Steps {
					ok = ok || s.Strategy == f.strategy && s.State == "succeeded"
				}
				if rep.State == "succeeded" && ok {
					r.repaired = *rep.FinishedAt
					break
				} else if rep.State != "skipped" && rep.State != "cancelled" {
					return r, fmt.Errorf("repair #%d ended %s (%s%s)", rep.ID, rep.State, rep.Reason, rep.Error)
				}
			}
		}
		if !r.repaired.IsZero() {
			alerts, err := d.stack.PrometheusAlerts(ctx)
			if err != nil {
				return r, err
			}
			active := false
			for _, a := range alerts {
				active = active || a.Labels["indexrelname"] == f.index && slices.Contains(f.alerts, a.Labels["alertname"])
			}
			if !active {
				r.resolved = time.Now()
				return r, nil
			}
		}
		if time.Now().After(deadline) {
			return r, errors.New("not healed within --fault-timeout; see the timeline above and the logs in the work directory")
		}
		select {
		case <-ctx.Done():
			return r, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// dbName is the name of the demo database.
func (d *demo) dbName(ctx context.Context) string {
	var db string
	_ = d.pool.QueryRow(ctx, "SELECT current_database()").Scan(&db)
	return db
}
