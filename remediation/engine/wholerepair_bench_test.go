package engine_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// BenchmarkWholeRepair measures what the loop adds to the bare statements of a repair. Each
// pair is two identical churned HNSW tables (the same rows, every fifth deleted, autovacuum
// off): one is healed by a real engine repair, queued by a PgvectorHNSWDeadTuplesPending alert
// through the webhook and run by the shipped runbook's entry (deploy/runbook.yml:
// hnsw-dead-tuples, the reclaim strategy validated on the dead heap TIDs read from the
// pages), with the shipped configuration's defaults and the exporter's Measurer; the other
// by the bare path, REINDEX INDEX CONCURRENTLY then VACUUM with the session settings reclaim
// plans for it. It reports the repair's seconds from started_at to finished_at and from the
// alert's submission to finished_at, each against the bare path, and logs the repair's
// timeline (queue, readings, rebuild, VACUUM, validation) so the difference can be placed.
// Pairs alternate which side runs first, so that neither always finds the server warmer.
//
//	VECTORHEAL_BENCH_REPAIR=1 go test -run '^$' -bench WholeRepair -benchtime 1x -timeout 3h ./remediation/engine/
//
// VECTORHEAL_BENCH_REPAIR_ROWS, _DIM and _PAIRS change the size and the number of pairs
// (default 200000 × 128, 2 pairs).
func BenchmarkWholeRepair(b *testing.B) {
	if os.Getenv("VECTORHEAL_BENCH_REPAIR") == "" {
		b.Skip("set VECTORHEAL_BENCH_REPAIR=1: builds two 200k × 128-d HNSW indexes per pair and repairs them (about 6 minutes a pair on 2 cores)")
	}
	rows := testenv.PositiveInt(b, "VECTORHEAL_BENCH_REPAIR_ROWS", 200_000)
	dim := testenv.PositiveInt(b, "VECTORHEAL_BENCH_REPAIR_DIM", 128)
	pairs := testenv.PositiveInt(b, "VECTORHEAL_BENCH_REPAIR_PAIRS", 2)
	wb := newWholeBench(b, rows, dim)

	var loops, submits, bares []float64
	for p := range pairs {
		loopT, bareT := fmt.Sprintf("loop_%d", p), fmt.Sprintf("bare_%d", p)
		built := time.Now()
		wb.churned(b, loopT, bareT)
		b.Logf("pair %d: %d × %d-d, 2 tables built and churned in %s", p, rows, dim, time.Since(built).Round(time.Second))
		var lr loopRun
		var bare time.Duration
		// Each side starts from a checkpoint (churned ends with one): the side that runs first
		// leaves a build's worth of dirty pages and WAL, which the second would otherwise
		// write out while it builds.
		sides := []func(){
			func() { lr = wb.loop(b, loopT) },
			func() { bare = wb.bare(b, bareT) },
		}
		first := "loop"
		if p%2 == 1 {
			sides[0], sides[1], first = sides[1], sides[0], "bare"
		}
		sides[0]()
		wb.exec(b, "CHECKPOINT")
		sides[1]()
		run, submit := lr.finished.Sub(lr.started), lr.finished.Sub(lr.submitted)
		b.Logf("pair %d (%s first): bare %.1f s; loop started→finished %.1f s (%.2f×), submitted→finished %.1f s (%.2f×)",
			p, first, bare.Seconds(),
			run.Seconds(), run.Seconds()/bare.Seconds(), submit.Seconds(), submit.Seconds()/bare.Seconds())
		lr.logTimeline(b)
		loops, submits, bares = append(loops, run.Seconds()), append(submits, submit.Seconds()), append(bares, bare.Seconds())
	}
	// What each source of a reading costs alone, on a churned index and on the last one the
	// loop healed: where the readings' seconds go.
	wb.churned(b, "calibrate")
	wb.sources(b, "calibrate", "churned")
	wb.sources(b, fmt.Sprintf("loop_%d", pairs-1), "rebuilt")
	b.ReportMetric(sum(bares)/float64(pairs), "bare_s")
	b.ReportMetric(sum(loops)/float64(pairs), "loop_started_s")
	b.ReportMetric(sum(submits)/float64(pairs), "loop_submitted_s")
	b.ReportMetric(sum(loops)/sum(bares), "started/bare")
	b.ReportMetric(sum(submits)/sum(bares), "submitted/bare")
}

// wholeBench is the engine, its readings and its log of BenchmarkWholeRepair.
type wholeBench struct {
	bu     *bundle
	e      *engine.Engine
	m      *timedMeasurer
	logs   *eventLog
	rows   int
	dim    int
	seeded bool
}

func newWholeBench(b *testing.B, rows, dim int) *wholeBench {
	bu := setup(b)
	// The shipped defaults, as a configuration that sets nothing gets them.
	cfg, err := config.Parse("vectorheal.yml", []byte("targets:\n  - name: db1\n    dsn: {value: 'postgres://unused'}\n"))
	if err != nil {
		b.Fatal(err)
	}
	if bu.reg, err = strategy.Default(strategy.Options{}); err != nil {
		b.Fatal(err)
	}
	bu.cfg = cfg.Remediation
	logs := newEventLog()
	log := slog.New(logs)
	m := &timedMeasurer{Measurer: exporter.NewMeasurer(cfg.Exporter, exporter.MeasureWithStateStore(bu.state),
		exporter.MeasureOnTargets(bu.targets, log))}
	rb, err := runbook.Load("../../deploy/runbook.yml", bu.reg, m.Figures())
	if err != nil {
		b.Fatal(err)
	}
	e := bu.engine(b, rb, func(o *engine.Options) {
		o.Measurer, o.Logger = m, log
		o.LockRetry, o.PollInterval = 0, 0 // the engine's defaults
	})
	return &wholeBench{bu: bu, e: e, m: m, logs: logs, rows: rows, dim: dim}
}

func (w *wholeBench) exec(b *testing.B, stmts ...string) {
	b.Helper()
	for _, s := range stmts {
		if _, err := w.bu.target.Exec(w.bu.ctx, s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
	}
}

// churned builds tables alike: the same rows, an HNSW at pgvector's defaults built with
// maintenance_work_mem = 1GB (as the reclaim benchmark does), every fifth row deleted.
func (w *wholeBench) churned(b *testing.B, tables ...string) {
	b.Helper()
	if !w.seeded {
		w.exec(b, "SELECT setseed(0.42)",
			fmt.Sprintf(`CREATE TABLE src AS SELECT i AS id, (SELECT array_agg(random()) FROM generate_series(1, %d) g WHERE i > 0)::vector(%d) AS v
				FROM generate_series(1, %d) i`, w.dim, w.dim, w.rows))
		w.seeded = true
	}
	for _, t := range tables {
		w.exec(b, fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v vector(%d)) WITH (autovacuum_enabled = false)", t, w.dim),
			fmt.Sprintf("INSERT INTO %s SELECT id, v FROM src ORDER BY id", t))
		conn, err := w.bu.target.Acquire(w.bu.ctx)
		if err != nil {
			b.Fatal(err)
		}
		for _, s := range []string{"SET maintenance_work_mem = '1GB'", fmt.Sprintf("CREATE INDEX %s_v ON %s USING hnsw (v vector_l2_ops)", t, t),
			"RESET maintenance_work_mem"} {
			if _, err := conn.Exec(w.bu.ctx, s); err != nil {
				conn.Release()
				b.Fatalf("%s: %v", s, err)
			}
		}
		conn.Release()
		w.exec(b, fmt.Sprintf("DELETE FROM %s WHERE id %% 5 = 0", t), "ANALYZE "+t)
	}
	w.exec(b, "CHECKPOINT")
}

// bare heals table t by the bare statements reclaim would run on it: its plan's statements,
// the session settings, REINDEX INDEX CONCURRENTLY and VACUUM, on one session. The plan is
// made without a Measurer, from the catalog only, so the bare side's index is not read before
// it is timed; need: space makes it plan the rebuild whatever the statistics say of the dead
// share (they may not show the deletes yet), with the settings it plans for any rebuild.
func (w *wholeBench) bare(b *testing.B, t string) time.Duration {
	b.Helper()
	ctx := w.bu.ctx
	ix, err := catalog.Resolve(ctx, w.bu.target, "public", t+"_v")
	if err != nil {
		b.Fatal(err)
	}
	st, err := w.bu.reg.Bind("reclaim", strategy.Params{"need": "space"})
	if err != nil {
		b.Fatal(err)
	}
	im, err := st.Plan(ctx, strategy.Env{Target: "db1", Pool: w.bu.target, Logger: slog.New(slog.DiscardHandler)}, ix)
	if err != nil {
		b.Fatalf("plan of %s: %v", t, err)
	}
	if len(im.Statements) < 2 || !strings.HasPrefix(im.Statements[len(im.Statements)-2], "REINDEX INDEX CONCURRENTLY") {
		b.Fatalf("plan of %s: %q, want a rebuild then VACUUM (%s)", t, im.Statements, im.Notes)
	}
	conn, err := pgx.Connect(ctx, w.bu.dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close(ctx)
	stop := w.phases(ix.TableOID)
	start := time.Now()
	var took []string
	for _, s := range im.Statements {
		t0 := time.Now()
		if _, err := conn.Exec(ctx, s); err != nil {
			b.Fatalf("%s: %v", s, err)
		}
		took = append(took, fmt.Sprintf("%s: %.2f s", s, time.Since(t0).Seconds()))
	}
	total := time.Since(start)
	b.Logf("bare %s in %.1f s: %s; build phases: %s", t, total.Seconds(), strings.Join(took, "; "), phaseLine(start, stop()))
	return total
}

// phases samples the phase of the index build on table oid every 100 ms until stop is
// called, and returns when each phase was first seen: where a REINDEX CONCURRENTLY spends
// its time (building, waiting for older snapshots, validating, swapping).
func (w *wholeBench) phases(oid uint32) (stop func() []event) {
	ctx, cancel := context.WithCancel(w.bu.ctx)
	done := make(chan []event)
	go func() {
		var seen []event
		last := ""
		for {
			var phase string
			err := w.bu.state.QueryRow(ctx, `SELECT coalesce((SELECT phase FROM pg_stat_progress_create_index WHERE relid = $1 LIMIT 1), 'none')`, oid).Scan(&phase)
			if err == nil && phase != last {
				seen, last = append(seen, event{time.Now(), phase}), phase
			}
			select {
			case <-ctx.Done():
				done <- seen
				return
			case <-time.After(100 * time.Millisecond):
			}
		}
	}()
	return func() []event { cancel(); return <-done }
}

// phaseLine writes phases as offsets from start.
func phaseLine(start time.Time, phases []event) string {
	var parts []string
	for _, p := range phases {
		parts = append(parts, fmt.Sprintf("%.1f %s", p.at.Sub(start).Seconds(), p.text))
	}
	return strings.Join(parts, ", ")
}

// sources logs how long a reading of each source of the repair's figures takes on table t's
// index (three readings each, in seconds).
func (w *wholeBench) sources(b *testing.B, t, state string) {
	b.Helper()
	ix, err := catalog.Resolve(w.bu.ctx, w.bu.target, "public", t+"_v")
	if err != nil {
		b.Fatal(err)
	}
	var parts []string
	for _, src := range []struct{ name, figure string }{{"pages", "pgvector_hnsw_heap_tids:dead"},
		{"probe", "pgvector_recall_ratio"}, {"stats", "pgvector_table_dead_tuples"}} {
		var took []string
		for range 3 {
			start := time.Now()
			if _, err := w.m.Measurer.Measure(w.bu.ctx, w.bu.target, ix, src.figure); err != nil {
				b.Fatalf("%s of %s: %v", src.figure, t, err)
			}
			took = append(took, fmt.Sprintf("%.2f", time.Since(start).Seconds()))
		}
		parts = append(parts, src.name+" "+strings.Join(took, "/")+" s")
	}
	b.Logf("one reading of each source, %s index %s (%d MiB): %s", state, ix, ix.SizeBytes>>20, strings.Join(parts, ", "))
}

// loopRun is one repair by the engine, with what happened while it ran.
type loopRun struct {
	submitted, created, started, finished time.Time
	repair                                engine.Repair
	calls                                 []measureCall
	events                                []event
}

// loop raises the alert on table t's index and waits for the engine's repair to finish.
func (w *wholeBench) loop(b *testing.B, t string) loopRun {
	b.Helper()
	bu := w.bu
	w.m.reset()
	w.logs.reset()
	var before int64
	if err := bu.state.QueryRow(bu.ctx, `SELECT coalesce(max(id), 0) FROM repairs`).Scan(&before); err != nil {
		b.Fatal(err)
	}
	ix, err := catalog.Resolve(bu.ctx, bu.target, "public", t+"_v")
	if err != nil {
		b.Fatal(err)
	}
	stop := w.phases(ix.TableOID)
	submitted := time.Now()
	bu.notify(b, w.e, alert("PgvectorHNSWDeadTuplesPending", "firing", submitted.Add(-time.Minute),
		map[string]string{"datname": bu.datname(b), "relname": t, "indexrelname": t + "_v", "severity": "warning"}))
	var id int64
	for deadline := time.Now().Add(time.Hour); ; time.Sleep(50 * time.Millisecond) {
		if time.Now().After(deadline) {
			b.Fatalf("repair of %s did not finish within an hour", t)
		}
		var state string
		err := bu.state.QueryRow(bu.ctx, `SELECT id, state FROM repairs WHERE id > $1 ORDER BY id LIMIT 1`, before).Scan(&id, &state)
		if errors.Is(err, pgx.ErrNoRows) {
			continue
		}
		if err != nil {
			b.Fatal(err)
		}
		if state != "queued" && state != "running" {
			break
		}
	}
	r, err := w.e.Repair(bu.ctx, id)
	if err != nil {
		b.Fatal(err)
	}
	if r.State != "succeeded" || r.StartedAt == nil || r.FinishedAt == nil || len(r.Steps) == 0 {
		b.Fatalf("repair of %s: %s (%s) %s, steps %+v", t, r.State, r.Reason, r.Error, r.Steps)
	}
	events := w.logs.taken()
	for _, p := range stop() {
		events = append(events, event{p.at, "build phase: " + p.text})
	}
	return loopRun{submitted: submitted, created: r.CreatedAt, started: *r.StartedAt, finished: *r.FinishedAt,
		repair: r, calls: w.m.taken(), events: events}
}

// logTimeline logs the repair's timeline, each line at its offset from the alert's
// submission: the repair's and its steps' recorded times, every reading through the Measurer
// (its figures' sources and duration) and the engine's and the strategy's log lines.
func (lr loopRun) logTimeline(b *testing.B) {
	type line struct {
		at   time.Time
		text string
	}
	lines := []line{{lr.submitted, "alert submitted"}, {lr.created, "repair queued (created_at)"},
		{lr.started, "repair started (started_at)"}, {lr.finished, "repair finished (finished_at)"}}
	for _, s := range lr.repair.Steps {
		if s.StartedAt != nil {
			lines = append(lines, line{*s.StartedAt, fmt.Sprintf("step %d %s started", s.Position, s.Strategy)})
		}
		if s.FinishedAt != nil {
			lines = append(lines, line{*s.FinishedAt, fmt.Sprintf("step %d %s finished %s: validation %s", s.Position, s.Strategy, s.State, s.Validation)})
		}
	}
	for _, c := range lr.calls {
		lines = append(lines, line{c.start, fmt.Sprintf("reading [%s] %.2f s: %s", c.sources(), c.end.Sub(c.start).Seconds(), strings.Join(c.figures, " "))})
	}
	for _, e := range lr.events {
		lines = append(lines, line{e.at, "log: " + e.text})
	}
	slices.SortStableFunc(lines, func(x, y line) int { return x.at.Compare(y.at) })
	var sb strings.Builder
	for _, l := range lines {
		fmt.Fprintf(&sb, "\n  %7.2f s  %s", l.at.Sub(lr.submitted).Seconds(), l.text)
	}
	var reading time.Duration
	for _, c := range lr.calls {
		reading += c.end.Sub(c.start)
	}
	b.Logf("repair %d timeline (%d readings, %.2f s in all):%s", lr.repair.ID, len(lr.calls), reading.Seconds(), sb.String())
}

// timedMeasurer is the exporter's Measurer with every reading through it recorded: its
// figures and how long it took. It embeds the Measurer, so what the engine asks of it
// otherwise (settled figures, estimates, as-built values) is the exporter's own answer.
type timedMeasurer struct {
	*exporter.Measurer
	mu    sync.Mutex
	calls []measureCall
}

type measureCall struct {
	start, end time.Time
	figures    []string
}

// sources names the sources a reading's figures come from, as the figure names say.
func (c measureCall) sources() string {
	var out []string
	add := func(s string) {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	for _, f := range c.figures {
		switch {
		case strings.HasPrefix(f, "pgvector_hnsw_"), strings.HasPrefix(f, "pgvector_ivfflat_"):
			add("pages")
		case strings.HasPrefix(f, "pgvector_recall_"), strings.HasPrefix(f, "pgvector_probe_"):
			add("probe")
		default:
			add("stats")
		}
	}
	return strings.Join(out, "+")
}

func (m *timedMeasurer) record(start time.Time, figures []string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = append(m.calls, measureCall{start: start, end: time.Now(), figures: figures})
}

func (m *timedMeasurer) Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	defer m.record(time.Now(), []string{figure})
	return m.Measurer.Measure(ctx, pool, ix, figure)
}

func (m *timedMeasurer) Read(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figures ...string) measure.Reading {
	defer m.record(time.Now(), slices.Clone(figures))
	return m.Measurer.Read(ctx, pool, ix, figures...)
}

func (m *timedMeasurer) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.calls = nil
}

func (m *timedMeasurer) taken() []measureCall {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.calls)
}

// eventLog is a slog.Handler that keeps every record with its time, for the timeline; the
// loggers derived from it (With) keep theirs in the same store.
type eventLog struct {
	attrs []slog.Attr
	store *eventStore
}

type eventStore struct {
	mu     sync.Mutex
	events []event
}

type event struct {
	at   time.Time
	text string
}

func newEventLog() *eventLog { return &eventLog{store: &eventStore{}} }

func (l *eventLog) Enabled(context.Context, slog.Level) bool { return true }

func (l *eventLog) Handle(_ context.Context, r slog.Record) error {
	if r.Level < slog.LevelInfo {
		return nil
	}
	var sb strings.Builder
	sb.WriteString(r.Message)
	add := func(a slog.Attr) bool {
		if a.Key != "repair" && a.Key != "index" {
			fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		}
		return true
	}
	for _, a := range l.attrs {
		add(a)
	}
	r.Attrs(add)
	l.store.mu.Lock()
	defer l.store.mu.Unlock()
	l.store.events = append(l.store.events, event{r.Time, sb.String()})
	return nil
}

func (l *eventLog) WithAttrs(as []slog.Attr) slog.Handler {
	return &eventLog{attrs: append(slices.Clone(l.attrs), as...), store: l.store}
}

func (l *eventLog) WithGroup(string) slog.Handler { return l }

func (l *eventLog) reset() {
	l.store.mu.Lock()
	defer l.store.mu.Unlock()
	l.store.events = nil
}

func (l *eventLog) taken() []event {
	l.store.mu.Lock()
	defer l.store.mu.Unlock()
	return slices.Clone(l.store.events)
}

func sum(xs []float64) float64 {
	var s float64
	for _, x := range xs {
		s += x
	}
	return s
}
