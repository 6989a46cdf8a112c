package engine_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"sort"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

const amConfig = `
route:
  receiver: "null"
  group_wait: 0s
receivers:
  - name: "null"
`

// TestSilenceSkipsQueuedRepair: with a real Alertmanager, a repair whose alert was silenced
// before it started is skipped as silenced; an alert that is not silenced is repaired; an
// alert Alertmanager no longer holds counts as resolved.
func TestSilenceSkipsQueuedRepair(t *testing.T) {
	b := setup(t)
	am := testenv.StartAlertmanager(t, amConfig)
	ac, err := amclient.New(config.Alertmanager{URL: am.URL, Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	dat := b.datname(t)
	start := time.Now().Add(-time.Minute).Truncate(time.Second)
	silenced := alert("VecTest", "firing", start, map[string]string{"datname": dat})
	free := alert("VecTest", "firing", start, map[string]string{"datname": dat, "indexrelname": "t_v_idx2"})
	gone := alert("VecTest", "firing", start, map[string]string{"datname": dat, "severity": "critical"})
	postAlerts(t, am.URL, silenced, free)

	id, err := ac.CreateSilence(b.ctx, amclient.Silence{
		Matchers:  []amclient.Matcher{{Name: "indexrelname", Value: "t_v_idx", IsEqual: true}, {Name: "severity", Value: "high", IsEqual: true}},
		EndsAt:    time.Now().Add(time.Hour),
		CreatedBy: "test", Comment: "maintenance",
	})
	if err != nil {
		t.Fatal(err)
	}
	waitSilenced(t, ac, labelsOf(silenced))

	rb := b.parseRunbook(t, okRunbook)
	e := b.engine(t, rb, func(o *engine.Options) { o.Alertmanager = ac })
	b.notify(t, e, silenced, free, gone)
	rs := b.waitRepairs(t, 3, "succeeded", "skipped")
	byIndex := map[string]string{}
	rows, err := b.state.Query(b.ctx, `SELECT indexrelname || '/' || (labels->>'severity'), state || ':' || reason FROM repairs`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var k, v string
		if err := rows.Scan(&k, &v); err != nil {
			t.Fatal(err)
		}
		byIndex[k] = v
	}
	want := map[string]string{"t_v_idx/high": "skipped:silenced", "t_v_idx2/high": "succeeded:", "t_v_idx/critical": "skipped:resolved"}
	for k, v := range want {
		if byIndex[k] != v {
			t.Errorf("repair of %s: %s, want %s (all %v, %+v)", k, byIndex[k], v, byIndex, rs)
		}
	}

	// Silences list and expire, as pause and resume use them.
	ss, err := ac.Silences(b.ctx, []string{`indexrelname="t_v_idx"`})
	if err != nil || len(ss) != 1 || ss[0].ID != id || ss[0].State != "active" || ss[0].CreatedBy != "test" {
		t.Fatalf("silences %+v (%v)", ss, err)
	}
	if err := ac.ExpireSilence(b.ctx, id); err != nil {
		t.Fatal(err)
	}
	ss, err = ac.Silences(b.ctx, []string{`indexrelname="t_v_idx"`})
	if err != nil || len(ss) != 1 || ss[0].State != "expired" {
		t.Fatalf("silences after expire %+v (%v)", ss, err)
	}
}

// TestAlertmanagerDownWaits: when Alertmanager cannot be asked, the repair waits (fail-safe)
// and records why, instead of running.
func TestAlertmanagerDownWaits(t *testing.T) {
	b := setup(t)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	ac, err := amclient.New(config.Alertmanager{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	e := b.engine(t, b.parseRunbook(t, okRunbook), func(o *engine.Options) { o.Alertmanager = ac })
	b.notify(t, e, alert("VecTest", "firing", time.Now(), nil))
	deadline := time.Now().Add(30 * time.Second)
	for {
		rs := b.repairs(t)
		if len(rs) == 1 && rs[0].State == "queued" && rs[0].Reason == "alertmanager_unreachable" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("repairs %+v, want queued waiting for alertmanager", rs)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := b.fakes.okRuns.Load(); n != 0 {
		t.Fatalf("ran %d times without asking Alertmanager", n)
	}
}

func labelsOf(a map[string]any) map[string]string { return a["labels"].(map[string]string) }

// waitSilenced waits until Alertmanager reports the alert as silenced.
func waitSilenced(t *testing.T, ac *amclient.Client, labels map[string]string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		st, err := ac.Alert(context.Background(), labels, "")
		if err == nil && len(st.SilencedBy) > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("alert not silenced in Alertmanager: %+v %v", st, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTwoEnginesNeverOverlapOnOneIndex: two engines (two River clients) on one state store
// run repairs of one index one at a time, and of different indexes side by side.
func TestTwoEnginesNeverOverlapOnOneIndex(t *testing.T) {
	b := setup(t)
	e1 := b.engine(t, nil, func(o *engine.Options) { o.ID = "replica-1" })
	e2 := b.engine(t, nil, func(o *engine.Options) { o.ID = "replica-2" })
	for i := range 6 {
		e := e1
		if i%2 == 1 {
			e = e2
		}
		if _, err := e.Trigger(b.ctx, engine.TriggerRequest{Target: "db1", Index: "t_v_idx", Strategy: "ok",
			Params: map[string]any{"sleep": 0.3}}, "test"); err != nil {
			t.Fatal(err)
		}
	}
	rs := b.waitRepairs(t, 6, "succeeded")
	sort.Slice(rs, func(i, j int) bool { return rs[i].Started.Before(*rs[j].Started) })
	runners := map[string]bool{}
	for i, r := range rs {
		runners[r.Runner] = true
		if i > 0 && r.Started.Before(*rs[i-1].Finished) {
			t.Fatalf("repair %d started at %s before repair %d finished at %s", r.ID, r.Started, rs[i-1].ID, rs[i-1].Finished)
		}
	}
	t.Logf("runners: %v", runners)
	if n := b.fakes.okRuns.Load(); n != 6 {
		t.Fatalf("strategy ran %d times, want 6", n)
	}
}

// TestCancelRunningRepair: cancelling through the API stops the running SQL and rolls back.
func TestCancelRunningRepair(t *testing.T) {
	b := setup(t)
	e := b.engine(t, nil, nil)
	id, err := e.Trigger(b.ctx, engine.TriggerRequest{Target: "db1", Index: "t_v_idx", Strategy: "block"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	waitBlockRunning(t, b)
	if err := e.Cancel(b.ctx, id, "carol"); err != nil {
		t.Fatal(err)
	}
	rs := b.waitRepairs(t, 1, "cancelled")
	if rs[0].Reason != "cancelled" {
		t.Fatalf("repair %+v", rs[0])
	}
	if b.rollbacks(t, "block") != 1 {
		t.Fatal("cancelled step not rolled back")
	}
	if n := blockStatements(t, b); n != 0 {
		t.Fatalf("%d block statements still running", n)
	}
}

func waitBlockRunning(t *testing.T, b *bundle) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for blockStatements(t, b) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("block strategy never started; repairs %+v", b.repairs(t))
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func blockStatements(t *testing.T, b *bundle) int {
	var n int
	if err := b.target.QueryRow(b.ctx, `SELECT count(*) FROM pg_stat_activity
		WHERE query LIKE '%vectorheal-block%' AND state = 'active' AND pid <> pg_backend_pid()`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestStoppedEngineRecovered: an engine stopped hard mid-repair rolls the running step back
// and records it.
func TestStoppedEngineRecovered(t *testing.T) {
	b := setup(t)
	e := b.engine(t, nil, nil)
	if _, err := e.Trigger(b.ctx, engine.TriggerRequest{Target: "db1", Index: "t_v_idx", Strategy: "block"}, "test"); err != nil {
		t.Fatal(err)
	}
	waitBlockRunning(t, b)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := e.StopAndCancel(ctx); err != nil {
		t.Fatal(err)
	}
	rs := b.waitRepairs(t, 1, "rolled_back")
	if rs[0].Reason != "interrupted" || b.rollbacks(t, "block") != 1 {
		t.Fatalf("repair %+v, rollbacks %d", rs[0], b.rollbacks(t, "block"))
	}
}

// TestKilledProcessRecovered: a process killed (SIGKILL) in the middle of a repair leaves it
// running; a new engine finds it on start, rolls its step back with the undo data recorded
// and records the repair as rolled back.
func TestKilledProcessRecovered(t *testing.T) {
	b := setup(t)
	intake := b.engine(t, nil, func(o *engine.Options) { o.Workers = false })
	id, err := intake.Trigger(b.ctx, engine.TriggerRequest{Target: "db1", Index: "t_v_idx", Strategy: "block"}, "test")
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"="+b.dsn)
	cmd.Stdout, cmd.Stderr = tWriter{t}, tWriter{t}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitBlockRunning(t, b)
	if rs := b.repairs(t); rs[0].State != "running" || rs[0].Runner != "child" {
		t.Fatalf("repair %+v, want running in the child", rs[0])
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Wait()
	// PostgreSQL has not noticed that the sleeping backend's client died; end it like an
	// operator would. The repair's lock went with the child's idle state-store session.
	if _, err := b.target.Exec(b.ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		WHERE query LIKE '%vectorheal-block%' AND pid <> pg_backend_pid()`); err != nil {
		t.Fatal(err)
	}
	// A successor (a new process, or a replica that kept running) finds the repair on start
	// or on its next round, once the dead session's advisory lock is gone.
	b.engine(t, nil, func(o *engine.Options) { o.ID = "successor"; o.RecoverInterval = 200 * time.Millisecond })
	rs := b.waitRepairs(t, 1, "rolled_back", "failed")
	if rs[0].ID != id || rs[0].State != "rolled_back" || rs[0].Reason != "interrupted" {
		t.Fatalf("repair after recovery %+v", rs[0])
	}
	if b.rollbacks(t, "block") != 1 {
		t.Fatal("interrupted step not rolled back")
	}
	steps, err := intake.Repair(b.ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if len(steps.Steps) != 1 || steps.Steps[0].State != "rolled_back" {
		t.Fatalf("steps %+v", steps.Steps)
	}
	var undo string
	if err := b.target.QueryRow(b.ctx, `SELECT coalesce(undo, '') FROM public.rollbacks`).Scan(&undo); err != nil {
		t.Fatal(err)
	}
	// The child died inside Run, before it returned undo data: the rollback gets none.
	if undo != "" {
		t.Fatalf("rollback got undo %q, want none", undo)
	}
}

// childEnv carries the DSN to a child test process that runs an engine until killed.
const childEnv = "VECTORHEAL_ENGINE_CHILD_DSN"

func runChild() int {
	dsn := os.Getenv(childEnv)
	ctx := context.Background()
	pool, err := store.Open(ctx, dsn, schema, 10)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	ts, err := targets.Open(ctx, []config.Target{{Name: "db1", DSN: config.Secret{Value: dsn}, MaxConnections: 4}})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	f := &fakes{}
	reg, err := strategy.NewRegistry(byParams(&okStrategy{f: f}), byParams(&failStrategy{f: f}), byParams(&blockStrategy{f: f}))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	e, err := engine.New(engine.Options{State: pool, Schema: schema, Targets: ts, Strategies: reg, Measurer: fakeMeasurer(),
		Runbook: func() *runbook.Runbook { return nil }, Config: config.DefaultRemediation(), Workers: true, ID: "child", PollInterval: 100 * time.Millisecond,
		Registerer: prometheus.NewRegistry()})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if err := e.Start(ctx); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	select {} // until killed
}

// postAlerts sends alerts to Alertmanager as Prometheus would.
func postAlerts(t *testing.T, amURL string, alerts ...map[string]any) {
	t.Helper()
	var body []map[string]any
	for _, a := range alerts {
		body = append(body, map[string]any{"labels": a["labels"], "startsAt": a["startsAt"],
			"endsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339Nano)})
	}
	data, _ := json.Marshal(body)
	res, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("post alerts: %s", res.Status)
	}
}
