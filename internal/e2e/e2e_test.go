package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/internal/workload"
)

// vectorhealBin is the binary built once for the package by TestMain.
var vectorhealBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "vectorheal-e2e-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	vectorhealBin = filepath.Join(dir, "vectorheal")
	build := exec.Command("go", "build", "-o", vectorhealBin, "github.com/vectorheal/vectorheal/cmd/vectorheal")
	if out, err := build.CombinedOutput(); err != nil {
		fmt.Fprintf(os.Stderr, "build vectorheal: %v\n%s", err, out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := testenv.Main(m)
	os.RemoveAll(dir)
	os.Exit(code)
}

// bundle is what every scenario works with.
type bundle struct {
	stack     *e2e.Stack
	pg        *testenv.Postgres
	mainDSN   string
	watch     *e2e.Watcher
	state     *pgxpool.Pool
	main      *pgxpool.Pool // target "main"
	tuning    *pgxpool.Pool // target "tuning"
	tuningDSN string
	timing    e2e.Timing

	mu      sync.Mutex
	results []result
}

// result is what one scenario measured.
type result struct {
	scenario  string
	injected  time.Time
	firing    time.Time // alert seen firing in Prometheus
	notified  time.Time // first firing notification recorded by vectorheal
	repaired  time.Time // repair finished in the state store
	resolved  time.Time // alert gone from Prometheus
	repairDur time.Duration
	// recovery, for the crash scenario: from the restart to the interrupted repair's end.
	recovery time.Duration
}

func openPool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return pool
}

// setup starts PostgreSQL (two databases: "main" for most scenarios, "tuning" for the one
// that changes a database-wide search setting), two vectorheal replicas behind two
// Alertmanagers, Prometheus, and the watcher.
func setup(t *testing.T) *bundle {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	mainDSN, tuningDSN := pg.CreateDatabase(t), pg.CreateDatabase(t)
	// ivfflat.probes = 1, the default, finds too few true neighbours on these datasets: a
	// recall alert on every IVFFlat index before any fault. An operator sets it; so does this.
	conn, err := pgx.Connect(context.Background(), mainDSN)
	if err != nil {
		t.Fatal(err)
	}
	_, err = conn.Exec(context.Background(), "DO $$ BEGIN EXECUTE format('ALTER DATABASE %I SET ivfflat.probes = 10', current_database()); END $$")
	conn.Close(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	timing := e2e.Timing{}
	s, err := e2e.Start(ctx, e2e.Config{
		Root: root, Dir: t.TempDir(), Vectorheal: vectorhealBin,
		Targets:  []e2e.Target{{Name: "main", DSN: mainDSN}, {Name: "tuning", DSN: tuningDSN}},
		Replicas: 2,
		Timing:   timing,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	b := &bundle{stack: s, pg: pg, mainDSN: mainDSN, state: openPool(t, mainDSN), main: openPool(t, mainDSN), tuning: openPool(t, tuningDSN), tuningDSN: tuningDSN, timing: s.Config.Timing}
	b.watchUntilCleanup(t)
	return b
}

func tailLines(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitFiring waits until alertname fires on index in Prometheus.
func (b *bundle) waitFiring(t *testing.T, index, alertname string, since time.Time, timeout time.Duration) e2e.Event {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		for _, e := range b.watch.Events() {
			if e.Index == index && e.Kind == e2e.AlertFiring && e.Alert == alertname && !e.At.Before(since) {
				return e
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s did not fire within %s; timeline:\n%s", index, alertname, timeout, b.timeline(index))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// waitResolved waits until no alert named alertname is pending or firing on index.
func (b *bundle) waitResolved(t *testing.T, index, alertname string, timeout time.Duration) time.Time {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		alerts, err := b.stack.PrometheusAlerts(context.Background())
		if err == nil {
			active := false
			for _, a := range alerts {
				if a.Labels["indexrelname"] == index && a.Labels["alertname"] == alertname {
					active = true
				}
			}
			if !active {
				return time.Now()
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s still active after %s; timeline:\n%s", index, alertname, timeout, b.timeline(index))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitResolvedRecorded waits until vectorheal has recorded Alertmanager's resolved notification
// of alertname on index: the history says the alert ended.
func (b *bundle) waitResolvedRecorded(t *testing.T, index, alertname string) {
	t.Helper()
	deadline := time.Now().Add(resolveTimeout)
	for {
		var n int
		if err := b.state.QueryRow(context.Background(), `SELECT count(*) FROM vectorheal.alerts
			WHERE labels->>'indexrelname' = $1 AND alertname = $2 AND status = 'resolved'`, index, alertname).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no resolved notification of %s recorded; timeline:\n%s", index, alertname, b.timeline(index))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRepair waits until a repair of index matching pick is finished and returns it.
func (b *bundle) waitRepair(t *testing.T, index string, timeout time.Duration, pick func(e2e.Repair) bool) e2e.Repair {
	t.Helper()
	return b.pollRepairs(t, index, timeout, "matching finished repair", func(r e2e.Repair) bool { return r.Finished() && pick(r) })
}

// pollRepairs calls visit with every repair of index, every 250 ms, until it returns true for
// one, and returns that one; after timeout the test fails, naming what it waited for and what it saw.
func (b *bundle) pollRepairs(t *testing.T, index string, timeout time.Duration, what string, visit func(e2e.Repair) bool) e2e.Repair {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		rs, err := e2e.Repairs(context.Background(), b.state, "vectorheal")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range repairsOf(rs, index) {
			if visit(r) {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no %s within %s; repairs: %+v\ntimeline:\n%s", index, what, timeout, repairsOf(rs, index), b.timeline(index))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func repairsOf(rs []e2e.Repair, index string) []e2e.Repair {
	var out []e2e.Repair
	for _, r := range rs {
		if r.Index == index {
			out = append(out, r)
		}
	}
	return out
}

func (b *bundle) timeline(index string) string {
	var lines []string
	for _, e := range b.watch.Events() {
		if index == "" || e.Index == index {
			lines = append(lines, e.String())
		}
	}
	return strings.Join(lines, "\n")
}

func hasStep(r e2e.Repair, strategy, state string) bool {
	for _, s := range r.Steps {
		if s.Strategy == strategy && (state == "" || s.State == state) {
			return true
		}
	}
	return false
}

// notifiedAt is when vectorheal first recorded a firing notification of index after since.
func (b *bundle) notifiedAt(index string, since time.Time) time.Time {
	for _, e := range b.watch.Events() {
		if e.Index == index && e.Kind == e2e.AlertReceived && e.Detail == "firing" && !e.At.Before(since) {
			return e.At
		}
	}
	return time.Time{}
}

func (b *bundle) record(r result) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.results = append(b.results, r)
}

// report logs the healing times of every scenario against the configured floor, and writes
// them to $VECTORHEAL_E2E_TIMINGS when set (docs/BENCHMARKS.md is written from it).
func (b *bundle) report(t *testing.T) {
	b.mu.Lock()
	defer b.mu.Unlock()
	tm := b.timing
	var sb strings.Builder
	fmt.Fprintf(&sb, "timings: check interval %s, scrape %s, evaluation %s, for ≤ %s, group_wait %s, group_interval %s\n",
		tm.CheckInterval, tm.ScrapeInterval, tm.EvaluationInterval, tm.MaxFor, tm.GroupWait, tm.GroupInterval)
	fmt.Fprintf(&sb, "floor (for + group_wait) %s; bound (+ check + scrape + 2 evaluations) %s\n\n", tm.Floor(), tm.Bound())
	fmt.Fprintf(&sb, "| scenario | fault → firing | fault → webhook | webhook → repaired | repair took | repaired → resolved | fault → webhook ÷ floor |\n|---|---|---|---|---|---|---|\n")
	sort.SliceStable(b.results, func(i, j int) bool { return b.results[i].scenario < b.results[j].scenario })
	sec := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	for _, r := range b.results {
		if r.recovery > 0 {
			fmt.Fprintf(&sb, "| %s | — | — | — | %s from the kill to the interrupted repair's end | — | — |\n", r.scenario, sec(r.recovery))
			continue
		}
		firing := sec(r.firing.Sub(r.injected))
		if r.firing.Equal(r.injected) {
			firing = "—"
		}
		fmt.Fprintf(&sb, "| %s | %s | %s | %s | %s | %s | %.2f× |\n", r.scenario,
			firing, sec(r.notified.Sub(r.injected)), sec(r.repaired.Sub(r.notified)), sec(r.repairDur),
			sec(r.resolved.Sub(r.repaired)), float64(r.notified.Sub(r.injected))/float64(tm.Floor()))
	}
	t.Log("\n" + sb.String())
	if p := os.Getenv("VECTORHEAL_E2E_TIMINGS"); p != "" {
		if err := os.WriteFile(p, []byte(sb.String()), 0o644); err != nil {
			t.Error(err)
		}
	}
}

// newTable loads a clustered dataset into table of the pool's database.
func newTable(t *testing.T, pool *pgxpool.Pool, table string, rows, dim int, seed uint64) *workload.Generator {
	t.Helper()
	g := workload.NewGenerator(workload.Dataset{Table: table, Rows: rows, Dim: dim, Clusters: 8, Seed: seed})
	if err := g.Load(context.Background(), pool, nil); err != nil {
		t.Fatal(err)
	}
	return g
}

// runWorkload runs queries and writes against table until the test ends.
func runWorkload(t *testing.T, pool *pgxpool.Pool, g *workload.Generator, o workload.Options) *workload.Stats {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	st := &workload.Stats{}
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := g.Fork(uint64(time.Now().UnixNano())).Run(ctx, pool, o, st); err != nil {
			t.Errorf("workload: %v", err)
		}
	}()
	t.Cleanup(func() {
		cancel()
		<-done
	})
	return st
}

func invalidIndexes(t *testing.T, pool *pgxpool.Pool, table string) []string {
	t.Helper()
	rows, err := pool.Query(context.Background(), `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass AND NOT i.indisvalid`, table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

// oneRepairPerAlert checks the deduplication contract: both Alertmanagers delivered the alert
// (one to each replica), and the alert gave exactly one repair per runbook entry.
func (b *bundle) oneRepairPerAlert(t *testing.T, index, alertname string) {
	t.Helper()
	var received, notifications int
	err := b.state.QueryRow(context.Background(), `SELECT count(*), coalesce(sum(times_received), 0) FROM vectorheal.alerts
		WHERE labels->>'indexrelname' = $1 AND alertname = $2 AND status = 'firing'`, index, alertname).Scan(&received, &notifications)
	if err != nil {
		t.Fatal(err)
	}
	if received == 0 || notifications < 2 {
		t.Errorf("%s %s: %d alert rows received %d times in all; want both Alertmanagers to deliver (≥ 2)", index, alertname, received, notifications)
	}
	rs, err := e2e.Repairs(context.Background(), b.state, "vectorheal")
	if err != nil {
		t.Fatal(err)
	}
	perEntry := map[string]int{}
	for _, r := range repairsOf(rs, index) {
		if r.Alertname == alertname && r.State != "skipped" {
			perEntry[r.Entry]++
		}
	}
	for entry, n := range perEntry {
		if n > received {
			t.Errorf("%s %s: entry %s made %d repairs for %d alert(s)", index, alertname, entry, n, received)
		}
	}
}

func TestHealingLoop(t *testing.T) {
	b := setup(t)
	defer b.report(t)
	t.Run("1-churn-vacuum", b.scenarioChurn)
	t.Run("2-ivfflat-drift-retrain", b.scenarioDrift)
	t.Run("3-ef-search-recall-tune", b.scenarioRecall)
	t.Run("4-silence-pauses-repair", b.scenarioSilence)
	t.Run("5-killed-during-rebuild", b.scenarioKilled)
	t.Run("6-two-replicas-one-repair", b.scenarioReplicas)
	t.Run("7-born-poor-no-repair", b.scenarioBornPoor)
	t.Run("9-rebuild-with-parameters-after-approval", b.scenarioRebuildAfterApproval)
	t.Run("10-quoted-names-healed", b.scenarioQuotedNames)
	// Last: cutting in-links restarts the cluster under the whole stack.
	t.Run("8-damage-after-build-heals-to-as-built", b.scenarioDamageAfterBuild)
}

const (
	detectTimeout  = 90 * time.Second
	repairTimeout  = 120 * time.Second
	resolveTimeout = 90 * time.Second
)

// scenarioChurn: mass deletes and updates leave dead heap TIDs in an HNSW graph; the dead
// tuples alert fires; the runbook's reclaim repairs it (escalating to reindex if needed).
func (b *bundle) scenarioChurn(t *testing.T) {
	ctx := context.Background()
	g := newTable(t, b.main, "churn_items", 4000, 16, 11)
	if err := g.CreateHNSW(ctx, b.main, "churn_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	runWorkload(t, b.main, g, workload.Options{QueriesPerSecond: 10})
	injected := time.Now()
	// Below the fragmentation alert's 50 %, so the dead tuples alert is the one that fires.
	if _, err := g.DeleteFraction(ctx, b.main, 0.35); err != nil {
		t.Fatal(err)
	}
	if _, err := g.UpdateFraction(ctx, b.main, 0.05); err != nil {
		t.Fatal(err)
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	firing := b.waitFiring(t, "churn_hnsw", alert, injected, detectTimeout)
	r := b.waitRepair(t, "churn_hnsw", repairTimeout, func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
	// The runbook's entry: reclaim (VACUUM or a rebuild then VACUUM, whichever is cheaper),
	// escalating to reindex when it does not validate.
	if r.State != "succeeded" || !hasStep(r, "reclaim", "") || !hasStep(r, "reclaim", "succeeded") && !hasStep(r, "reindex", "succeeded") {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want succeeded by reclaim or its escalation to reindex", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	var dead float64
	for _, s := range r.Steps {
		if v, ok := s.After["pgvector_hnsw_heap_tids:dead"]; ok {
			dead = v
		}
	}
	if dead != 0 {
		t.Errorf("dead heap TIDs after the repair: %v, want 0", dead)
	}
	// Every replica's API tells the same history as the state store.
	for _, v := range b.stack.Vectorheals {
		b.checkAPIRepair(t, v.URL, r)
	}
	resolved := b.waitResolved(t, "churn_hnsw", alert, resolveTimeout)
	b.waitResolvedRecorded(t, "churn_hnsw", alert)
	b.oneRepairPerAlert(t, "churn_hnsw", alert)
	b.record(result{scenario: "1 churn → dead TIDs → vacuum", injected: injected, firing: firing.At, notified: b.notifiedAt("churn_hnsw", injected), repaired: *r.FinishedAt, resolved: resolved, repairDur: r.FinishedAt.Sub(*r.StartedAt)})
}

// scenarioDrift: inserts from a region the IVFFlat centres never saw pile into one list; the
// imbalance alert fires; ivfflat_retrain rebuilds the index with lists fitted to the data.
func (b *bundle) scenarioDrift(t *testing.T) {
	ctx := context.Background()
	g := newTable(t, b.main, "drift_items", 1000, 16, 12)
	if err := g.CreateIVFFlat(ctx, b.main, "drift_ivf", 20); err != nil {
		t.Fatal(err)
	}
	runWorkload(t, b.main, g, workload.Options{QueriesPerSecond: 10})
	var relBefore uint32
	if err := b.main.QueryRow(ctx, `SELECT relfilenode FROM pg_class WHERE relname = 'drift_ivf'`).Scan(&relBefore); err != nil {
		t.Fatal(err)
	}
	injected := time.Now()
	if err := g.InsertDrifted(ctx, b.main, 3000, nil); err != nil {
		t.Fatal(err)
	}
	const alert = "PgvectorIVFFlatImbalanced"
	firing := b.waitFiring(t, "drift_ivf", alert, injected, detectTimeout)
	// The drift also raises PgvectorDistributionShift, whose entry retrains too; whichever
	// repair gets the index first heals it, and the other finds nothing left to do.
	r := b.waitRepair(t, "drift_ivf", repairTimeout, func(r e2e.Repair) bool { return r.StartedAt != nil && hasStep(r, "ivfflat_retrain", "") })
	if r.State != "succeeded" || !hasStep(r, "ivfflat_retrain", "succeeded") {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want a succeeded ivfflat_retrain", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	var relAfter uint32
	var opts []string
	if err := b.main.QueryRow(ctx, `SELECT relfilenode, reloptions FROM pg_class WHERE relname = 'drift_ivf'`).Scan(&relAfter, &opts); err != nil {
		t.Fatal(err)
	}
	if relAfter == relBefore {
		t.Errorf("drift_ivf was not rebuilt (relfilenode %d unchanged)", relAfter)
	}
	if fmt.Sprint(opts) == "[lists=20]" {
		t.Errorf("lists not recomputed for 4000 rows: %v", opts)
	}
	resolved := b.waitResolved(t, "drift_ivf", alert, resolveTimeout)
	b.waitResolvedRecorded(t, "drift_ivf", alert)
	b.oneRepairPerAlert(t, "drift_ivf", alert)
	b.record(result{scenario: "2 drift → IVFFlat imbalance → retrain", injected: injected, firing: firing.At, notified: b.notifiedAt("drift_ivf", injected), repaired: *r.FinishedAt, resolved: resolved, repairDur: r.FinishedAt.Sub(*r.StartedAt)})
}

// scenarioRecall: hnsw.ef_search lowered to 1 for the whole database makes searches return
// too few neighbours; the measured recall drops and its alert fires; tune_search raises
// ef_search until the measured recall meets the target. It runs on its own database because
// the setting is database-wide.
func (b *bundle) scenarioRecall(t *testing.T) {
	ctx := context.Background()
	g := newTable(t, b.tuning, "recall_items", 2000, 16, 13)
	if err := g.CreateHNSW(ctx, b.tuning, "recall_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	var db string
	if err := b.tuning.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	runWorkload(t, b.tuning, g, workload.Options{QueriesPerSecond: 10})
	injected := time.Now()
	if _, err := b.tuning.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{db}.Sanitize()+" SET hnsw.ef_search = 1"); err != nil {
		t.Fatal(err)
	}
	const alert = "PgvectorRecallBelowTarget"
	firing := b.waitFiring(t, "recall_hnsw", alert, injected, detectTimeout)
	r := b.waitRepair(t, "recall_hnsw", repairTimeout, func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
	if r.State != "succeeded" || !hasStep(r, "tune_search", "succeeded") {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want a succeeded tune_search", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	// A pooled session may predate the change; a fresh one reads the database's setting.
	var ef int
	conn, err := pgx.Connect(ctx, b.tuningDSN)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT current_setting('hnsw.ef_search')::int`).Scan(&ef); err != nil {
		t.Fatal(err)
	}
	if ef <= 1 {
		t.Errorf("hnsw.ef_search of a new session is %d after tune_search", ef)
	}
	resolved := b.waitResolved(t, "recall_hnsw", alert, resolveTimeout)
	b.waitResolvedRecorded(t, "recall_hnsw", alert)
	b.oneRepairPerAlert(t, "recall_hnsw", alert)
	b.record(result{scenario: "3 ef_search=1 → recall → tune_search", injected: injected, firing: firing.At, notified: b.notifiedAt("recall_hnsw", injected), repaired: *r.FinishedAt, resolved: resolved, repairDur: r.FinishedAt.Sub(*r.StartedAt)})
}

// silenceIndex creates, on every Alertmanager, a silence of the index's alerts until end.
func (b *bundle) silenceIndex(t *testing.T, index string, end time.Time) {
	t.Helper()
	for _, am := range b.stack.Alertmanagers {
		c, err := amclient.New(config.Alertmanager{URL: am.URL, Timeout: 10 * time.Second})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.CreateSilence(context.Background(), amclient.Silence{
			Matchers:  []amclient.Matcher{{Name: "indexrelname", Value: index, IsEqual: true}},
			EndsAt:    end,
			CreatedBy: "e2e", Comment: "maintenance of " + index,
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// scenarioSilence: while a silence covers the index, its alert fires in Prometheus but no
// repair runs; when the silence expires, the repair runs and the alert resolves.
func (b *bundle) scenarioSilence(t *testing.T) {
	ctx := context.Background()
	g := newTable(t, b.main, "silence_items", 3000, 16, 14)
	if err := g.CreateHNSW(ctx, b.main, "silence_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	// What a repair would change: the table's vacuum count, the index's OID (a rebuild).
	// n_dead_tup is no such sign: the query workload's reads prune dead rows from heap pages
	// and lower it, while the index keeps their entries.
	cleaned := func() (vacuums int64, oid uint32) {
		t.Helper()
		if err := b.main.QueryRow(ctx, `SELECT vacuum_count + autovacuum_count, 'silence_hnsw'::regclass::oid
			FROM pg_stat_user_tables WHERE relname = 'silence_items'`).Scan(&vacuums, &oid); err != nil {
			t.Fatal(err)
		}
		return vacuums, oid
	}
	vacuums, oid := cleaned()
	silenceEnd := time.Now().Add(60 * time.Second)
	b.silenceIndex(t, "silence_hnsw", silenceEnd)
	injected := time.Now()
	if _, err := g.DeleteFraction(ctx, b.main, 0.4); err != nil {
		t.Fatal(err)
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	firing := b.waitFiring(t, "silence_hnsw", alert, injected, detectTimeout)
	if firing.At.After(silenceEnd.Add(-5 * time.Second)) {
		t.Fatalf("the alert fired at %s, too close to the silence's end %s to show anything", firing.At, silenceEnd)
	}
	// While silenced: nothing may run on the index. Checked up to a second before the
	// silence ends, so that no check can see the repair its expiry lets run (it takes well
	// under a second on this index).
	for time.Now().Before(silenceEnd.Add(-time.Second)) {
		rs, err := e2e.Repairs(ctx, b.state, "vectorheal")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range repairsOf(rs, "silence_hnsw") {
			if r.State == "running" || r.State == "succeeded" || r.State == "failed" || r.State == "rolled_back" {
				t.Fatalf("repair %d is %s while the index is silenced", r.ID, r.State)
			}
		}
		if v, o := cleaned(); v != vacuums || o != oid {
			t.Fatalf("while the index was silenced the table was vacuumed (%d -> %d) or the index rebuilt (OID %d -> %d)", vacuums, v, oid, o)
		}
		time.Sleep(500 * time.Millisecond)
	}
	r := b.waitRepair(t, "silence_hnsw", repairTimeout, func(r e2e.Repair) bool { return r.State == "succeeded" })
	if r.StartedAt.Before(silenceEnd) {
		t.Errorf("repair %d started at %s, before the silence ended at %s", r.ID, r.StartedAt, silenceEnd)
	}
	resolved := b.waitResolved(t, "silence_hnsw", alert, resolveTimeout)
	b.waitResolvedRecorded(t, "silence_hnsw", alert)
	// Measured from the silence's end: the fault was detected long before.
	b.record(result{scenario: "4 silence expires → vacuum", injected: silenceEnd, firing: silenceEnd, notified: b.notifiedAt("silence_hnsw", silenceEnd), repaired: *r.FinishedAt, resolved: resolved, repairDur: r.FinishedAt.Sub(*r.StartedAt)})
}

// scenarioReplicas: two vectorheal replicas, each behind its own Alertmanager, share the state
// store; both receive the alert and exactly one repair runs.
func (b *bundle) scenarioReplicas(t *testing.T) {
	ctx := context.Background()
	g := newTable(t, b.main, "replica_items", 3000, 16, 16)
	if err := g.CreateHNSW(ctx, b.main, "replica_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	before := b.notificationsPerReplica(t)
	injected := time.Now()
	if _, err := g.DeleteFraction(ctx, b.main, 0.4); err != nil {
		t.Fatal(err)
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	firing := b.waitFiring(t, "replica_hnsw", alert, injected, detectTimeout)
	r := b.waitRepair(t, "replica_hnsw", repairTimeout, func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
	if r.State != "succeeded" {
		t.Fatalf("repair %d: %s %q %q", r.ID, r.State, r.Reason, r.Error)
	}
	resolved := b.waitResolved(t, "replica_hnsw", alert, resolveTimeout)
	b.waitResolvedRecorded(t, "replica_hnsw", alert)
	after := b.notificationsPerReplica(t)
	for i := range after {
		if after[i] <= before[i] {
			t.Errorf("replica %d received no notification (%v → %v)", i+1, before[i], after[i])
		}
	}
	b.oneRepairPerAlert(t, "replica_hnsw", alert)
	b.record(result{scenario: "6 two replicas → one repair", injected: injected, firing: firing.At, notified: b.notifiedAt("replica_hnsw", injected), repaired: *r.FinishedAt, resolved: resolved, repairDur: r.FinishedAt.Sub(*r.StartedAt)})
}

// notificationsPerReplica reads vectorheal_webhook_notifications_total (all outcomes) from
// each replica's /metrics.
func (b *bundle) notificationsPerReplica(t *testing.T) []float64 {
	t.Helper()
	var out []float64
	for _, v := range b.stack.Vectorheals {
		n, err := e2e.ScrapeSum(context.Background(), v.URL+"/metrics", "vectorheal_webhook_notifications_total")
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, n)
	}
	return out
}

// scenarioKilled: every vectorheal process is killed (SIGKILL) while a REINDEX CONCURRENTLY
// of the repair is in flight — held at its first wait by an open writing transaction, so the
// kill lands mid-rebuild every time. After a restart the repair is finished or rolled back,
// no INVALID index is left on the table and the history has no repair or step still running.
func (b *bundle) scenarioKilled(t *testing.T) {
	ctx := context.Background()
	g := newTable(t, b.main, "rebuild_items", 4000, 16, 15)
	if err := g.CreateHNSW(ctx, b.main, "rebuild_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	injected := time.Now()
	if _, err := g.DeleteFraction(ctx, b.main, 0.9); err != nil {
		t.Fatal(err)
	}
	// The blocker: an uncommitted insert makes REINDEX CONCURRENTLY wait for it.
	blocker, err := b.main.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _ = blocker.Rollback(ctx) }()
	if _, err := blocker.Exec(ctx, `INSERT INTO rebuild_items (cluster, embedding) SELECT cluster, embedding FROM rebuild_items LIMIT 1`); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(detectTimeout + repairTimeout)
	for {
		var n int
		if err := b.main.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity
			WHERE query ILIKE 'REINDEX%rebuild_hnsw%' OR query ILIKE 'CREATE INDEX%rebuild_items%'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no rebuild of rebuild_hnsw started; timeline:\n%s", b.timeline("rebuild_hnsw"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	rs, err := e2e.Repairs(ctx, b.state, "vectorheal")
	if err != nil {
		t.Fatal(err)
	}
	var running *e2e.Repair
	for _, r := range repairsOf(rs, "rebuild_hnsw") {
		if r.State == "running" {
			running = &r
		}
	}
	if running == nil {
		t.Fatalf("a rebuild is in flight but no repair of rebuild_hnsw is running: %+v", repairsOf(rs, "rebuild_hnsw"))
	}
	// The runner last: killed first, another replica would take the repair over at once, and
	// this scenario is about a restart.
	t.Logf("killing every vectorheal during repair %d (%s, runner %s)", running.ID, running.Entry, running.Runner)
	order := append([]*e2e.Vectorheal(nil), b.stack.Vectorheals...)
	sort.SliceStable(order, func(i, j int) bool {
		return !strings.HasSuffix(running.Runner, fmt.Sprintf("-%d", order[i].Pid())) && strings.HasSuffix(running.Runner, fmt.Sprintf("-%d", order[j].Pid()))
	})
	for _, v := range order {
		if err := v.Kill(); err != nil {
			t.Fatal(err)
		}
	}
	killed := time.Now()
	if err := blocker.Rollback(ctx); err != nil {
		t.Fatal(err)
	}
	restarted := time.Now()
	for _, v := range b.stack.Vectorheals {
		if err := v.Start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	r := b.waitRepair(t, "rebuild_hnsw", 3*repairTimeout, func(r e2e.Repair) bool { return r.ID == running.ID })
	if r.FinishedAt.Before(restarted) {
		t.Errorf("repair %d ended at %s, before the restart at %s: a process survived the kill", r.ID, r.FinishedAt, restarted)
	}
	if r.State != "succeeded" && r.State != "rolled_back" && r.State != "failed" {
		t.Errorf("repair %d ended %s after the crash, want succeeded, rolled_back or failed", r.ID, r.State)
	}
	for _, s := range r.Steps {
		if s.State == "running" || s.State == "planned" && r.State == "succeeded" {
			t.Errorf("repair %d is %s but step %d (%s) is %s", r.ID, r.State, s.Position, s.Strategy, s.State)
		}
	}
	// Whatever the outcome, no INVALID leftover may stay once nothing runs on the index.
	deadline = time.Now().Add(repairTimeout)
	for {
		rs, err := e2e.Repairs(ctx, b.state, "vectorheal")
		if err != nil {
			t.Fatal(err)
		}
		active := false
		for _, x := range repairsOf(rs, "rebuild_hnsw") {
			active = active || !x.Finished()
		}
		inv := invalidIndexes(t, b.main, "rebuild_items")
		if !active && len(inv) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after the restart: invalid indexes %v, repairs %+v", inv, repairsOf(rs, "rebuild_hnsw"))
		}
		time.Sleep(500 * time.Millisecond)
	}
	var valid bool
	if err := b.main.QueryRow(ctx, `SELECT indisvalid FROM pg_index WHERE indexrelid = 'rebuild_hnsw'::regclass`).Scan(&valid); err != nil || !valid {
		t.Errorf("rebuild_hnsw valid = %v, %v", valid, err)
	}
	b.record(result{scenario: "5 killed mid-rebuild → recovered", injected: injected, recovery: max(r.FinishedAt.Sub(killed), time.Millisecond)})
}

// api sends an authenticated request without a body to the vectorheal API at url.
func (b *bundle) api(t *testing.T, method, url string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+b.stack.APIToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return resp
}

// checkAPIRepair reads repair r through GET /api/v1/repairs/{id} of the vectorheal at url.
func (b *bundle) checkAPIRepair(t *testing.T, url string, r e2e.Repair) {
	t.Helper()
	resp := b.api(t, http.MethodGet, fmt.Sprintf("%s/api/v1/repairs/%d", url, r.ID))
	defer resp.Body.Close()
	var got struct {
		ID           int64  `json:"id"`
		State        string `json:"state"`
		Entry        string `json:"entry"`
		Indexrelname string `json:"indexrelname"`
		Steps        []struct {
			Strategy string `json:"strategy"`
			State    string `json:"state"`
		} `json:"steps"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&got); err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s/api/v1/repairs/%d: %d %v", url, r.ID, resp.StatusCode, err)
	}
	if got.ID != r.ID || got.State != r.State || got.Entry != r.Entry || got.Indexrelname != r.Index || len(got.Steps) != len(r.Steps) {
		t.Errorf("API says %+v, state store says %+v", got, r)
	}
	for i, s := range got.Steps {
		if i < len(r.Steps) && (s.Strategy != r.Steps[i].Strategy || s.State != r.Steps[i].State) {
			t.Errorf("API step %d %+v, state store %+v", i, s, r.Steps[i])
		}
	}
}

// waitQuery waits until Prometheus at promURL answers query with one sample equal to want,
// for at most detectTimeout, and fails the test otherwise.
func waitQuery(t *testing.T, promURL, query string, want float64) {
	t.Helper()
	deadline := time.Now().Add(detectTimeout)
	for {
		v, err := e2e.QueryValue(context.Background(), promURL, query)
		if err == nil && v == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s = %v (%v), want %v within %s", query, v, err, want, detectTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}
}
