package strategy_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// bundle is what every test of a strategy works with: a fresh database, a pool to it, an Env
// whose logger writes into the test log, and the registry of all strategies.
type bundle struct {
	pg   *testenv.Postgres
	dsn  string
	pool *pgxpool.Pool
	env  strategy.Env
	reg  *strategy.Registry
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func setup(t *testing.T, opts strategy.Options) *bundle {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	return setupDSN(t, pg, dsn, opts)
}

func setupDSN(t *testing.T, pg *testenv.Postgres, dsn string, opts strategy.Options) *bundle {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	reg, err := strategy.Default(opts)
	if err != nil {
		t.Fatal(err)
	}
	return &bundle{pg: pg, dsn: dsn, pool: pool, reg: reg, env: strategy.Env{
		Target:  "test",
		Pool:    pool,
		Logger:  slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelDebug})),
		Measure: exporterMeasurer(),
	}}
}

func (b *bundle) exec(t *testing.T, stmts ...string) {
	t.Helper()
	for _, s := range stmts {
		if _, err := b.pool.Exec(context.Background(), s); err != nil {
			t.Fatalf("%s: %v", s, err)
		}
	}
}

func (b *bundle) resolve(t *testing.T, schema, name string) catalog.Index {
	t.Helper()
	ix, err := catalog.Resolve(context.Background(), b.pool, schema, name)
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

// strategy returns the registered strategy called name in the shape the tests call it:
// parameters as a runbook writes them, bound (decoded and checked) on every call.
func (b *bundle) strategy(t *testing.T, name string) byParams {
	t.Helper()
	d, ok := b.reg.Get(name)
	if !ok {
		t.Fatalf("strategy %q not registered", name)
	}
	return byParams{t: t, d: d}
}

type byParams struct {
	t *testing.T
	d strategy.Definition
}

func (s byParams) bind(p strategy.Params) strategy.Step {
	s.t.Helper()
	st, err := s.d.Bind(p)
	if err != nil {
		s.t.Fatalf("%s: bind %v: %v", s.d.Spec().Name, p, err)
	}
	return st
}

func (s byParams) Plan(ctx context.Context, env strategy.Env, ix catalog.Index, p strategy.Params) (strategy.Impact, error) {
	s.t.Helper()
	return s.bind(p).Plan(ctx, env, ix)
}

func (s byParams) Run(ctx context.Context, env strategy.Env, ix catalog.Index, p strategy.Params) (strategy.Outcome, error) {
	s.t.Helper()
	return s.bind(p).Run(ctx, env, ix)
}

func (s byParams) Rollback(ctx context.Context, env strategy.Env, ix catalog.Index, p strategy.Params, undo json.RawMessage) error {
	s.t.Helper()
	return s.bind(p).Rollback(ctx, env, ix, undo)
}

func (b *bundle) measure(t *testing.T, ix catalog.Index, figure string) float64 {
	t.Helper()
	// A new pool: new sessions see database-level settings as they are now.
	pool, err := pgxpool.New(context.Background(), b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	v, err := b.env.Measure.Measure(context.Background(), pool, ix, figure)
	if err != nil {
		t.Fatalf("measure %s: %v", figure, err)
	}
	return v
}

// loadVectors creates table items (id, emb vector(dim)) with rows random vectors, reproducible
// by seed, autovacuum off so the tests decide when the table is vacuumed or analysed.
func (b *bundle) loadVectors(t *testing.T, table string, dim, rows int, seed float64) {
	t.Helper()
	ctx := context.Background()
	conn, err := b.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	tbl := pgx.Identifier{table}.Sanitize()
	for _, q := range []string{
		"CREATE TABLE IF NOT EXISTS " + tbl + " (id bigserial PRIMARY KEY, emb vector(" + strconv.Itoa(dim) + ")) WITH (autovacuum_enabled = false)",
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := conn.Exec(ctx, "SELECT setseed($1)", seed); err != nil {
		t.Fatal(err)
	}
	q := "INSERT INTO " + tbl + " (emb) SELECT (SELECT array_agg(random()::real) FROM generate_series(1, $1) WHERE g > 0)::vector FROM generate_series(1, $2) g"
	if _, err := conn.Exec(ctx, q, dim, rows); err != nil {
		t.Fatal(err)
	}
}

// CheckParams binds p and returns only the error: the check a runbook load makes.
func (s byParams) CheckParams(p strategy.Params) error {
	_, err := s.d.Bind(p)
	return err
}
