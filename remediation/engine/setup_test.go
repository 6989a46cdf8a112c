package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/webhook"
)

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) != "" {
		os.Exit(runChild())
	}
	os.Exit(testenv.Main(m))
}

const schema = "vh"

// bundle is what every test gets: a fresh database that is both the state store and the
// target, with a table t(id, v vector(3)) and an HNSW index t_v_idx on it.
type bundle struct {
	ctx      context.Context
	dsn      string
	state    *pgxpool.Pool
	target   *pgxpool.Pool
	targets  *targets.Set
	reg      *strategy.Registry
	fakes    *fakes
	measurer strategy.Measurer
	cfg      config.Remediation
}

func setup(t testing.TB) *bundle {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := t.Context()
	b := &bundle{ctx: ctx, dsn: dsn}
	var err error
	b.state, err = store.Open(ctx, dsn, schema, 20)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.state.Close)
	if _, err := store.Migrate(ctx, b.state, schema, testLogger(t)); err != nil {
		t.Fatal(err)
	}
	b.targets, err = targets.Open(ctx, []config.Target{{Name: "db1", DSN: config.Secret{Value: dsn}, MaxConnections: 8}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(b.targets.Close)
	tg, _ := b.targets.Get("db1")
	b.target = tg.Pool
	for _, q := range []string{
		`CREATE TABLE public.t (id bigserial PRIMARY KEY, v vector(3))`,
		`INSERT INTO public.t (v) SELECT ARRAY[random(), random(), random()]::vector FROM generate_series(1, 200)`,
		`CREATE INDEX t_v_idx ON public.t USING hnsw (v vector_l2_ops)`,
		`CREATE INDEX t_v_idx2 ON public.t USING hnsw (v vector_cosine_ops)`,
		`CREATE TABLE public.fake_figures (name text PRIMARY KEY, value float8 NOT NULL)`,
		`CREATE TABLE public.rollbacks (strategy text, undo text, at timestamptz DEFAULT clock_timestamp())`,
	} {
		if _, err := b.target.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	b.fakes = &fakes{}
	b.measurer = fakeMeasurer()
	vacuum, _ := mustDefault(t).Get("vacuum")
	reindex, _ := mustDefault(t).Get("reindex")
	b.reg, err = strategy.NewRegistry(
		byParams(&okStrategy{f: b.fakes}), byParams(&failStrategy{f: b.fakes}), byParams(&blockStrategy{f: b.fakes}), vacuum, reindex)
	if err != nil {
		t.Fatal(err)
	}
	b.cfg = config.Remediation{MaxConcurrentRepairs: 3, DefaultTimeout: time.Minute, HistoryRetention: 720 * time.Hour,
		FlapWindow: time.Hour, FlapMaxRepairs: 100, CircuitBreakerFailures: 3,
		// A budget that never holds: tests of other guards see them alone, and a hold longer
		// than the one-minute window skips the repair instead of keeping it waiting.
		Budget: config.Budget{Share: 1, Window: time.Minute, MaxRunningPerTarget: 100,
			BackoffBase: time.Millisecond, BackoffMax: time.Millisecond}}
	return b
}

func mustDefault(t testing.TB) *strategy.Registry {
	r, err := strategy.Default(strategy.Options{ProgressInterval: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func testLogger(t testing.TB) *slog.Logger {
	if _, bench := t.(*testing.B); bench {
		return slog.New(slog.DiscardHandler)
	}
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t testing.TB }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// parseRunbook parses a runbook against the bundle's strategies and figures.
func (b *bundle) parseRunbook(t testing.TB, yml string) *runbook.Runbook {
	t.Helper()
	rb, err := runbook.Parse("runbook.yml", []byte(yml), b.reg, b.measurer.Figures())
	if err != nil {
		t.Fatal(err)
	}
	return rb
}

// engine builds and starts an engine; mod may change its options.
func (b *bundle) engine(t testing.TB, rb *runbook.Runbook, mod func(*engine.Options)) *engine.Engine {
	t.Helper()
	o := engine.Options{
		State: b.state, Schema: schema, Targets: b.targets, Strategies: b.reg, Measurer: b.measurer,
		Runbook: func() *runbook.Runbook { return rb }, Config: b.cfg, Workers: true,
		LockRetry: 100 * time.Millisecond, PollInterval: 100 * time.Millisecond,
		Logger: testLogger(t), Registerer: prometheus.NewRegistry(),
	}
	if mod != nil {
		mod(&o)
	}
	e, err := engine.New(o)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(b.ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = e.StopAndCancel(ctx)
	})
	return e
}

// alert is a test alert on index t_v_idx.
func alert(name, status string, startsAt time.Time, extra map[string]string) map[string]any {
	labels := map[string]string{"alertname": name, "severity": "high", "target": "db1",
		"schemaname": "public", "relname": "t", "indexrelname": "t_v_idx"}
	for k, v := range extra {
		labels[k] = v
	}
	a := map[string]any{"status": status, "labels": labels, "annotations": map[string]string{},
		"startsAt": startsAt.UTC().Format(time.RFC3339Nano)}
	if status == "resolved" {
		a["endsAt"] = time.Now().UTC().Format(time.RFC3339Nano)
	}
	return a
}

// notify posts a webhook notification through the real webhook handler with e.Hook.
func (b *bundle) notify(t testing.TB, e *engine.Engine, alerts ...map[string]any) {
	t.Helper()
	h, err := webhook.NewHandler(webhook.Options{Pool: b.state, Hook: e.Hook, AllowUnauthenticated: true})
	if err != nil {
		t.Fatal(err)
	}
	status := "firing"
	for _, a := range alerts {
		if a["status"] == "resolved" {
			status = "resolved"
		}
	}
	body, _ := json.Marshal(map[string]any{"version": "4", "status": status, "receiver": "vectorheal",
		"groupKey": "{}:{}", "alerts": alerts, "groupLabels": map[string]string{}, "commonLabels": map[string]string{},
		"commonAnnotations": map[string]string{}, "externalURL": "http://am"})
	req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusOK {
		t.Fatalf("webhook answered %d: %s", rec.Code, rec.Body)
	}
}

// datname fills the datname label of the test database into a.
func (b *bundle) datname(t testing.TB) string {
	var d string
	if err := b.target.QueryRow(b.ctx, `SELECT current_database()`).Scan(&d); err != nil {
		t.Fatal(err)
	}
	return d
}

type repairRow struct {
	ID       int64
	State    string
	Reason   string
	Error    string
	Entry    string
	Started  *time.Time
	Finished *time.Time
	Runner   string
	Approved string
}

func (b *bundle) repairs(t *testing.T) []repairRow {
	t.Helper()
	rows, err := b.state.Query(b.ctx, `SELECT id, state, reason, error, entry, started_at, finished_at, runner, approved_by
		FROM repairs ORDER BY id`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []repairRow
	for rows.Next() {
		var r repairRow
		if err := rows.Scan(&r.ID, &r.State, &r.Reason, &r.Error, &r.Entry, &r.Started, &r.Finished, &r.Runner, &r.Approved); err != nil {
			t.Fatal(err)
		}
		out = append(out, r)
	}
	return out
}

// waitRepairs polls until n repairs exist and all are in one of the final states given.
func (b *bundle) waitRepairs(t *testing.T, n int, states ...string) []repairRow {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		rs := b.repairs(t)
		done := len(rs) == n
		for _, r := range rs {
			ok := false
			for _, s := range states {
				ok = ok || r.State == s
			}
			done = done && ok
		}
		if done {
			return rs
		}
		if time.Now().After(deadline) {
			t.Fatalf("repairs did not reach %v: %+v", states, rs)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// paramsStrategy is how the fake strategies are written: on the runbook's parameters as
// given, checked by CheckParams. byParams registers one.
type paramsStrategy interface {
	Name() string
	Description() string
	CheckParams(p strategy.Params) error
	Plan(ctx context.Context, env strategy.Env, ix catalog.Index, p strategy.Params) (strategy.Impact, error)
	Run(ctx context.Context, env strategy.Env, ix catalog.Index, p strategy.Params) (strategy.Outcome, error)
	Rollback(ctx context.Context, env strategy.Env, ix catalog.Index, p strategy.Params, undo json.RawMessage) error
}

func byParams(s paramsStrategy) strategy.Definition { return paramsDef{s} }

type paramsDef struct{ s paramsStrategy }

func (d paramsDef) Spec() strategy.Spec {
	return strategy.Spec{Name: d.s.Name(), Description: d.s.Description()}
}

func (d paramsDef) Bind(p strategy.Params) (strategy.Step, error) {
	if err := d.s.CheckParams(p); err != nil {
		return nil, err
	}
	return paramsStep{d: d, p: p}, nil
}

type paramsStep struct {
	d paramsDef
	p strategy.Params
}

func (s paramsStep) Spec() strategy.Spec     { return s.d.Spec() }
func (s paramsStep) Params() strategy.Params { return s.p }
func (s paramsStep) Figures(string) []string { return nil }
func (s paramsStep) Plan(ctx context.Context, env strategy.Env, ix catalog.Index) (strategy.Impact, error) {
	return s.d.s.Plan(ctx, env, ix, s.p)
}
func (s paramsStep) Run(ctx context.Context, env strategy.Env, ix catalog.Index) (strategy.Outcome, error) {
	return s.d.s.Run(ctx, env, ix, s.p)
}
func (s paramsStep) Rollback(ctx context.Context, env strategy.Env, ix catalog.Index, undo json.RawMessage) error {
	return s.d.s.Rollback(ctx, env, ix, s.p, undo)
}

// fakes count what the fake strategies did.
type fakes struct {
	okRuns, failRuns, blockRuns atomic.Int64
}

// okStrategy runs real SQL (pg_sleep of params.sleep seconds) and succeeds.
type okStrategy struct{ f *fakes }

func (*okStrategy) Name() string        { return "ok" }
func (*okStrategy) Description() string { return "sleeps in the database and succeeds" }
func (*okStrategy) CheckParams(p strategy.Params) error {
	for k := range p {
		if k != "sleep" {
			return fmt.Errorf("unknown parameter %q", k)
		}
	}
	return nil
}
func (*okStrategy) Plan(_ context.Context, _ strategy.Env, ix catalog.Index, _ strategy.Params) (strategy.Impact, error) {
	return strategy.Impact{LockLevel: "NONE", IndexBytes: ix.SizeBytes, Statements: []string{"SELECT pg_sleep($1)"}}, nil
}
func (s *okStrategy) Run(ctx context.Context, env strategy.Env, _ catalog.Index, p strategy.Params) (strategy.Outcome, error) {
	s.f.okRuns.Add(1)
	sleep, _ := p["sleep"].(float64)
	if _, err := env.Pool.Exec(ctx, `SELECT pg_sleep($1)`, sleep); err != nil {
		return strategy.Outcome{}, err
	}
	// It heals: an unset figure becomes 0; a value a test set stays what validation sees.
	if _, err := env.Pool.Exec(ctx, `INSERT INTO public.fake_figures VALUES ('fake_figure', 0) ON CONFLICT (name) DO NOTHING`); err != nil {
		return strategy.Outcome{}, err
	}
	return strategy.Outcome{Statements: []string{fmt.Sprintf("SELECT pg_sleep(%g)", sleep)}, Undo: json.RawMessage(`{"ok":true}`)}, nil
}
func (*okStrategy) Rollback(ctx context.Context, env strategy.Env, _ catalog.Index, _ strategy.Params, undo json.RawMessage) error {
	_, err := env.Pool.Exec(ctx, `INSERT INTO public.rollbacks (strategy, undo) VALUES ('ok', $1)`, string(undo))
	return err
}

// failStrategy runs, then its Run fails when params.error is set; its rollback is recorded.
type failStrategy struct{ f *fakes }

func (*failStrategy) Name() string                        { return "fail" }
func (*failStrategy) Description() string                 { return "fails" }
func (*failStrategy) CheckParams(p strategy.Params) error { return nil }
func (*failStrategy) Plan(context.Context, strategy.Env, catalog.Index, strategy.Params) (strategy.Impact, error) {
	return strategy.Impact{LockLevel: "NONE", Statements: []string{"SELECT 1"}}, nil
}
func (s *failStrategy) Run(ctx context.Context, env strategy.Env, _ catalog.Index, p strategy.Params) (strategy.Outcome, error) {
	s.f.failRuns.Add(1)
	out := strategy.Outcome{Statements: []string{"SELECT 1"}, Undo: json.RawMessage(`{"fail":1}`)}
	if _, err := env.Pool.Exec(ctx, `SELECT 1`); err != nil {
		return out, err
	}
	if msg, ok := p["error"].(string); ok {
		return out, errors.New(msg)
	}
	return out, nil
}
func (*failStrategy) Rollback(ctx context.Context, env strategy.Env, _ catalog.Index, _ strategy.Params, undo json.RawMessage) error {
	_, err := env.Pool.Exec(ctx, `INSERT INTO public.rollbacks (strategy, undo) VALUES ('fail', $1)`, string(undo))
	return err
}

// blockStrategy runs pg_sleep(3600): it ends only when its context is cancelled.
type blockStrategy struct{ f *fakes }

func (*blockStrategy) Name() string                      { return "block" }
func (*blockStrategy) Description() string               { return "blocks until cancelled" }
func (*blockStrategy) CheckParams(strategy.Params) error { return nil }
func (*blockStrategy) Plan(context.Context, strategy.Env, catalog.Index, strategy.Params) (strategy.Impact, error) {
	return strategy.Impact{LockLevel: "NONE", Statements: []string{"SELECT pg_sleep(3600)"}}, nil
}
func (s *blockStrategy) Run(ctx context.Context, env strategy.Env, _ catalog.Index, _ strategy.Params) (strategy.Outcome, error) {
	s.f.blockRuns.Add(1)
	_, err := env.Pool.Exec(ctx, `SELECT pg_sleep(3600) /* vectorheal-block */`)
	return strategy.Outcome{Statements: []string{"SELECT pg_sleep(3600)"}, Undo: json.RawMessage(`{"block":1}`)}, err
}
func (*blockStrategy) Rollback(ctx context.Context, env strategy.Env, _ catalog.Index, _ strategy.Params, undo json.RawMessage) error {
	_, err := env.Pool.Exec(ctx, `INSERT INTO public.rollbacks (strategy, undo) VALUES ('block', $1)`, string(undo))
	return err
}

// fakeMeasurer reads figures from public.fake_figures of the target, so a test sets what
// validation sees; "pgvector_table_dead_tuples" is measured for real. An unset fake_figure is
// unhealthy (1e9) until the ok strategy has run, so the engine's check before a repair does
// not find the index healthy already. It is pure logic around the engine (strategy.Single);
// the engine's tests with pages read by the exporter's reader are reclaim_test.go's.
func fakeMeasurer() strategy.Measurer {
	// The figures vacuum records by default are listed too: runbook loading checks them. Only
	// the first two are measured; the others fail and are left out of before/after.
	return strategy.Single([]string{"fake_figure", "pgvector_table_dead_tuples", "pgvector_hnsw_heap_tids:dead", "pgvector_hnsw_orphan_elements",
		"pgvector_hnsw_unreachable_elements", "pgvector_index_size_bytes", "pgvector_recall_ratio",
		"pgvector_ivfflat_list_size_cv", "pgvector_ivfflat_empty_lists"}, fakeFigure)
}

func fakeFigure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	var v float64
	var err error
	switch figure {
	case "fake_figure":
		err = pool.QueryRow(ctx, `SELECT coalesce((SELECT value FROM public.fake_figures WHERE name = $1), 1e9)`, figure).Scan(&v)
	case "pgvector_table_dead_tuples":
		err = pool.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = $1`, ix.TableOID).Scan(&v)
	default:
		return 0, fmt.Errorf("unknown figure %q", figure)
	}
	return v, err
}

func (b *bundle) setFigure(t *testing.T, v float64) {
	t.Helper()
	if _, err := b.target.Exec(b.ctx, `INSERT INTO public.fake_figures VALUES ('fake_figure', $1)
		ON CONFLICT (name) DO UPDATE SET value = EXCLUDED.value`, v); err != nil {
		t.Fatal(err)
	}
}

func (b *bundle) rollbacks(t *testing.T, strat string) int {
	t.Helper()
	var n int
	if err := b.target.QueryRow(b.ctx, `SELECT count(*) FROM public.rollbacks WHERE strategy = $1`, strat).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}
