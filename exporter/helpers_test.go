package exporter

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testLogger routes the exporter's log into the test's.
func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tlogWriter{t: t}, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

type tlogWriter struct {
	t    *testing.T
	keep *logLines // nil or where lines are also kept
}

func (w tlogWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	if w.keep != nil {
		w.keep.mu.Lock()
		w.keep.lines = append(w.keep.lines, string(p))
		w.keep.mu.Unlock()
	}
	return len(p), nil
}

// logLines keeps the log lines of an exporter, for tests about what is logged.
type logLines struct {
	mu    sync.Mutex
	lines []string
}

// count is the number of lines containing every one of subs.
func (l *logLines) count(subs ...string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, line := range l.lines {
		all := true
		for _, s := range subs {
			all = all && strings.Contains(line, s)
		}
		if all {
			n++
		}
	}
	return n
}

// testConfig is an exporter configuration with short intervals, as Load would default it,
// except that every series is published (detail_series): tests read figures a healthy index
// leaves out by default. TestSeriesPerIndexOnPostgres measures what the default publishes.
func testConfig() config.Exporter {
	chk := func(every time.Duration) config.Check { return config.Check{Interval: every, Timeout: every} }
	return config.Exporter{
		Structure:           config.StructureCheck{Check: chk(time.Second)},
		Recall:              config.RecallCheck{Check: chk(time.Second), Queries: 10, K: 10},
		Drift:               config.DriftCheck{Check: chk(2 * time.Second), SampleSize: 100},
		StatisticsTimeout:   5 * time.Second,
		MaxConcurrentChecks: 4,
		PageBatch:           16,
		DiscoveryInterval:   time.Second,
		XminHorizonMinAge:   time.Second,
		DetailSeries:        true,
	}
}

// clustered creates table items with n rows of dim-dimensional vectors around clusters
// random centers (kept in table centers, see addClustered).
func clustered(t *testing.T, dsn string, n, dim, clusters int) {
	t.Helper()
	testenv.Exec(t, dsn,
		fmt.Sprintf(`CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(%d))`, dim),
		`SELECT setseed(0.42)`,
		fmt.Sprintf(`CREATE TABLE centers AS SELECT c, array_agg(random() * 10 ORDER BY d) AS v
			FROM generate_series(1, %d) c, generate_series(1, %d) d GROUP BY c`, clusters, dim))
	addClustered(t, dsn, n)
	testenv.Exec(t, dsn, `ANALYZE items`)
}

// addClustered inserts n more rows drawn like clustered's.
func addClustered(t *testing.T, dsn string, n int) {
	t.Helper()
	testenv.Exec(t, dsn, fmt.Sprintf(`INSERT INTO items (embedding)
		SELECT (SELECT array_agg(x + (random() - 0.5) ORDER BY o) FROM unnest(v) WITH ORDINALITY AS u(x, o))::vector
		FROM generate_series(1, %d) i JOIN centers ON c = 1 + i %% (SELECT count(*) FROM centers)`, n))
}

// started is a running exporter over named DSNs.
type started struct {
	e   *Exporter
	reg *prometheus.Registry
	srv *httptest.Server
	ts  *targets.Set // every configured target, including those the exporter leaves out
}

func start(t *testing.T, cfg config.Exporter, dsns map[string]string, opts ...Option) *started {
	t.Helper()
	return startLogged(t, nil, cfg, dsns, opts...)
}

// startLogged is start with the exporter's log lines also kept in keep.
func startLogged(t *testing.T, keep *logLines, cfg config.Exporter, dsns map[string]string, opts ...Option) *started {
	t.Helper()
	var cts []config.Target
	for name, dsn := range dsns {
		cts = append(cts, config.Target{Name: name, DSN: config.Secret{Value: dsn}, MaxConnections: 4, MaxConcurrentChecks: 2})
	}
	sort.Slice(cts, func(i, j int) bool { return cts[i].Name < cts[j].Name })
	return startTargets(t, keep, cfg, cts, opts...)
}

// startTargets is startLogged with the targets as configured.
func startTargets(t *testing.T, keep *logLines, cfg config.Exporter, cts []config.Target, opts ...Option) *started {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts, err := targets.Open(ctx, cts)
	if err != nil {
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(tlogWriter{t, keep}, &slog.HandlerOptions{Level: slog.LevelDebug}))
	e := New(ts, cfg, logger, opts...)
	e.tick = 50 * time.Millisecond
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	srv := httptest.NewServer(promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() {
		cancel()
		<-done
		srv.Close()
		ts.Close()
	})
	return &started{e: e, reg: reg, srv: srv, ts: ts}
}

// scrape fetches /metrics over HTTP, as Prometheus does.
func (s *started) scrape(t *testing.T) string {
	t.Helper()
	resp, err := http.Get(s.srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: status %d, %v\n%s", resp.StatusCode, err, b)
	}
	return string(b)
}

// sample is the value of name with labels matching every key=value of match, and whether
// exactly one such series exists.
func (s *started) sample(t *testing.T, name string, match map[string]string) (float64, bool) {
	t.Helper()
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var found []float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if matches(m, match) {
				found = append(found, value(m))
			}
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	return found[0], true
}

func matches(m *dto.Metric, match map[string]string) bool {
	n := 0
	for _, lp := range m.GetLabel() {
		if v, ok := match[lp.GetName()]; ok {
			if v != lp.GetValue() {
				return false
			}
			n++
		}
	}
	return n == len(match)
}

func value(m *dto.Metric) float64 {
	switch {
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// waitSample polls until name{match} exists and ok(value) holds, and returns the value.
func (s *started) waitSample(t *testing.T, name string, match map[string]string, what string, ok func(float64) bool) float64 {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var last float64
	var present bool
	for time.Now().Before(deadline) {
		last, present = s.sample(t, name, match)
		if present && ok(last) {
			return last
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("%s%v: want %s; present=%v last=%v", name, match, what, present, last)
	return 0
}

func eq(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
func exists(float64) bool                { return true }

// superPool is a pool of the superuser on dsn, closed at the end of the test.
func superPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// stateStore returns a migrated state store in a database of its own, closed at the end.
func stateStore(t *testing.T, pg *testenv.Postgres) *pgxpool.Pool {
	t.Helper()
	ctx := context.Background()
	state, err := store.Open(ctx, pg.CreateDatabase(t), "vectorheal", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(state.Close)
	if _, err := store.Migrate(ctx, state, "vectorheal", testLogger(t)); err != nil {
		t.Fatal(err)
	}
	return state
}

// withLabel returns the labels of m with k set to v.
func withLabel(m map[string]string, k, v string) map[string]string {
	out := map[string]string{k: v}
	for a, b := range m {
		out[a] = b
	}
	return out
}
