package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/internal/workload"
)

// stateDB holds vectorheal's state store, apart from both twins so they carry the same load.
const stateDB = "vectorheal_state"

// soakTiming shortens the shipped intervals so that a 30-minute soak sees what hours of
// production would: every alert's `for` is capped at 1m (the shipped ones are 10m-1h), rule
// evaluation and scrape every 10s (30s shipped), index checks every 30s (5m shipped),
// cooldowns capped at 5m (1h-24h shipped), validation waits at 10s (as shipped).
func soakTiming() e2e.Timing {
	return e2e.Timing{ScrapeInterval: 10 * time.Second, EvaluationInterval: 10 * time.Second, MaxFor: time.Minute,
		GroupWait: 5 * time.Second, GroupInterval: 10 * time.Second, RepeatInterval: 10 * time.Minute,
		CheckInterval: 30 * time.Second, MaxValidateWait: 10 * time.Second, MaxCooldown: 5 * time.Minute}
}

// twin is one of the two databases.
type twin struct {
	name string
	dsn  string
	pool *pgxpool.Pool
	lat  map[string]*latencies // by index
}

// soak is one run.
type soak struct {
	o     options
	log   *slog.Logger
	out   io.Writer
	pg    *testenv.Postgres
	twins []*twin // tended first
	stack *e2e.Stack
	state *pgxpool.Pool
	watch *e2e.Watcher
	prog  progress

	docsGen, eventsGen *workload.Generator
	probeGen           *workload.Generator

	mu      sync.Mutex
	samples []sample
	alerts  []alertMark
	seen    map[string]bool
	notes   []string // what happened besides samples: snapshots, churn errors

	quietStart, churnStart, end time.Time
}

func runSoak(ctx context.Context, log *slog.Logger, o options, out io.Writer) error {
	bin, err := filepath.Abs(o.vectorheal)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("vectorheal binary: %w (run make build, or give -vectorheal)", err)
	}
	root, err := filepath.Abs(o.root)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(o.out, 0o755); err != nil {
		return err
	}
	s := &soak{o: o, log: log, out: out, seen: map[string]bool{}}
	pg, err := testenv.StartPostgres(ctx)
	if err != nil {
		return fmt.Errorf("start PostgreSQL (run scripts/install-deps.sh): %w", err)
	}
	defer pg.Destroy()
	s.printf("PostgreSQL %s\n", pg.DSN(""))
	if err := s.openTwins(ctx, pg); err != nil {
		return err
	}
	defer s.closeTwins()
	if err := s.prepare(ctx); err != nil {
		return err
	}
	work, err := os.MkdirTemp("", "vectorheal-soak-")
	if err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(work)
	}
	s.stack, err = e2e.Start(ctx, e2e.Config{Root: root, Dir: filepath.Join(work, "stack"), Vectorheal: bin,
		Targets: []e2e.Target{{Name: tended, DSN: s.twins[0].dsn}}, StateDSN: pg.DSN(stateDB), Timing: soakTiming()})
	if err != nil {
		return fmt.Errorf("start stack: %w", err)
	}
	defer s.stack.Close()
	if s.state, err = pgxpool.New(ctx, pg.DSN(stateDB)); err != nil {
		return err
	}
	defer s.state.Close()
	s.watch = e2e.NewWatcher(s.stack, s.state)
	t := soakTiming()
	s.printf("stack: Prometheus %s, vectorheal %s (files in %s)\ntimings: scrape %s, evaluation %s, alert for <= %s, group_wait %s, group_interval %s, checks every %s, validation wait <= %s, cooldown <= %s\n",
		s.stack.Prometheus.URL, s.stack.Vectorheals[0].URL, work, t.ScrapeInterval, t.EvaluationInterval, t.MaxFor, t.GroupWait, t.GroupInterval, t.CheckInterval, t.MaxValidateWait, t.MaxCooldown)
	runErr := s.phases(ctx)
	if errors.Is(runErr, context.Canceled) {
		return runErr
	}
	if runErr == nil {
		runErr = s.drain(ctx, 3*time.Minute)
	}
	if errors.Is(runErr, context.Canceled) {
		return runErr
	}
	if err := s.report(context.WithoutCancel(ctx)); err != nil {
		return errors.Join(runErr, err)
	}
	return runErr
}

func (s *soak) printf(format string, args ...any) {
	s.mu.Lock()
	defer s.mu.Unlock()
	fmt.Fprintf(s.out, format, args...)
}

func (s *soak) note(format string, args ...any) {
	line := time.Now().UTC().Format("15:04:05") + " " + fmt.Sprintf(format, args...)
	s.mu.Lock()
	s.notes = append(s.notes, line)
	s.mu.Unlock()
	s.printf("%s\n", line)
}

// openTwins creates the tended twin's database and the state store's, and a pool on the
// tended twin. The untended twin is made from the tended one once its indexes are built
// (cloneTwin), so both start from the same index, byte for byte.
func (s *soak) openTwins(ctx context.Context, pg *testenv.Postgres) error {
	s.pg = pg
	for _, db := range []string{tended, stateDB} {
		if err := s.admin(ctx, "CREATE DATABASE "+pgx.Identifier{db}.Sanitize()); err != nil {
			return fmt.Errorf("create database %s: %w", db, err)
		}
	}
	return s.openPools(ctx, tended)
}

// cloneTwin makes the untended twin a copy of the tended one, data and built indexes alike.
// Building each twin's indexes separately gives two different graphs and, for IVFFlat, two
// different k-means results (pgvector samples at random): a trial showed recall@10 of 0.948
// and 0.801 for the same data and probes, which no later decay figure can be read against.
func (s *soak) cloneTwin(ctx context.Context) error {
	s.closeTwins()
	s.twins = nil
	// CREATE DATABASE ... TEMPLATE needs the template to have no sessions; it ends autovacuum
	// workers on it by itself.
	q := "CREATE DATABASE " + pgx.Identifier{untended}.Sanitize() + " TEMPLATE " + pgx.Identifier{tended}.Sanitize()
	if err := s.admin(ctx, q); err != nil {
		return fmt.Errorf("copy %s to %s: %w", tended, untended, err)
	}
	return s.openPools(ctx, tended, untended)
}

// admin runs one statement in the server's maintenance database.
func (s *soak) admin(ctx context.Context, q string) error {
	conn, err := pgx.Connect(ctx, s.pg.DSN("postgres"))
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, q)
	return err
}

// openPools opens a pool on each named twin. The pools recycle their sessions every minute,
// as application pools do, so a changed database setting (a tune_search repair) reaches the
// application's queries.
func (s *soak) openPools(ctx context.Context, names ...string) error {
	for _, name := range names {
		cfg, err := pgxpool.ParseConfig(s.pg.DSN(name))
		if err != nil {
			return err
		}
		cfg.MaxConnLifetime, cfg.MaxConns = time.Minute, 8
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return err
		}
		tw := &twin{name: name, dsn: s.pg.DSN(name), pool: pool, lat: map[string]*latencies{}}
		for _, spec := range soakIndexes() {
			tw.lat[spec.index] = &latencies{}
		}
		s.twins = append(s.twins, tw)
	}
	return nil
}

func (s *soak) closeTwins() {
	for _, tw := range s.twins {
		tw.pool.Close()
	}
}

// both runs f on every twin at once and returns their errors joined.
func (s *soak) both(f func(tw *twin) error) error {
	errs := make([]error, len(s.twins))
	var wg sync.WaitGroup
	for i, tw := range s.twins {
		wg.Go(func() { errs[i] = f(tw) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// drain waits, up to limit, for the repairs queued or running when the churn ended, so the
// report gives their outcome rather than "running".
func (s *soak) drain(ctx context.Context, limit time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		rs, err := e2e.Repairs(ctx, s.state, "vectorheal")
		if err != nil {
			return err
		}
		open := 0
		for _, r := range rs {
			if !r.Finished() {
				open++
			}
		}
		if open == 0 {
			return nil
		}
		if time.Now().After(deadline) {
			s.note("%d repairs still unfinished %s after the churn ended", open, limit)
			return nil
		}
		s.printf("waiting for %d unfinished repairs\n", open)
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Second):
		}
	}
}
