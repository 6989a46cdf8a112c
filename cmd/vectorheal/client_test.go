package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

const e2eRunbook = `
entries:
  - name: analyze-on-alert
    matchers: ['alertname="VecE2E"']
    cooldown: 0s
    steps:
      - strategy: analyze
`

// TestHealingEndToEnd runs the real vectorheal serve with a real Alertmanager routing to its
// webhook: an alert posted to Alertmanager becomes a repair (the real analyze strategy) that
// the CLI then shows; the CLI triggers a manual repair, pauses and resumes; the runbook
// reloads on POST /-/reload (an invalid one is refused) and on SIGHUP.
func TestHealingEndToEnd(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := t.Context()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	for _, q := range []string{
		`CREATE TABLE t (id bigserial PRIMARY KEY, v vector(3))`,
		`INSERT INTO t (v) SELECT ARRAY[random(), random(), random()]::vector FROM generate_series(1, 100)`,
		`CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	var datname string
	if err := conn.QueryRow(ctx, `SELECT current_database()`).Scan(&datname); err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	am := testenv.StartAlertmanager(t, fmt.Sprintf(`
route:
  receiver: vectorheal
  group_wait: 0s
  group_interval: 1s
receivers:
  - name: vectorheal
    webhook_configs:
      - url: %s/webhook/alertmanager
        http_config:
          authorization: {credentials: hook-token}
`, url))
	dir := t.TempDir()
	rbFile := writeFile(t, dir, "runbook.yml", e2eRunbook)
	cfg := writeFile(t, dir, "vectorheal.yml", fmt.Sprintf(`
state_store:
  dsn: {value: %q}
targets:
  - name: db1
    dsn: {value: %q}
alertmanager:
  url: %s
webhook:
  bearer_token: {value: hook-token}
remediation:
  runbook: %s
  api_token: {value: api-token}
  api_read_token: {value: read-token}
`, dsn, dsn, am.URL, rbFile))
	v := startVectorheal(t, "serve", "--config.file", cfg, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port))
	waitReady(t, v, url)

	// Reads take the read token unless a call gives its own.
	cli := func(args ...string) (int, string, string) {
		var out, errOut bytes.Buffer
		args = append(args, "--url", url, "--user", "tester")
		if !slices.Contains(args, "--token") {
			args = append(args, "--token", "read-token")
		}
		code := run(args, &out, &errOut)
		return code, out.String(), errOut.String()
	}
	// A firing alert in Alertmanager reaches the webhook and is repaired.
	labels := map[string]string{"alertname": "VecE2E", "target": "db1", "datname": datname, "schemaname": "public",
		"relname": "t", "indexrelname": "t_v_idx"}
	body, _ := json.Marshal([]map[string]any{{"labels": labels, "endsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}})
	res, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	auto := waitRepair(t, cli, 1, "succeeded")
	if auto.Entry != "analyze-on-alert" || auto.Fingerprint == "" || len(auto.Steps) != 1 || !strings.Contains(auto.Steps[0].Statements[0], "ANALYZE") {
		t.Fatalf("repair from the alert: %+v", auto)
	}
	if code, out, _ := cli("issues"); code != 0 || !strings.Contains(out, "VecE2E") || !strings.Contains(out, "#1 succeeded  now") {
		t.Fatalf("issues: %d\n%s", code, out)
	}

	// Manual repair through the CLI; a wrong token is refused.
	if code, _, errOut := cli("repair", "--token", "wrong", "--target", "db1", "--index", "t_v_idx", "--strategy", "analyze"); code != 1 || !strings.Contains(errOut, "HTTP 403") {
		t.Fatalf("wrong token: %d %s", code, errOut)
	}
	if code, out, errOut := cli("repair", "--token", "api-token", "--target", "db1", "--index", "t_v_idx", "--strategy", "analyze"); code != 0 || !strings.Contains(out, "repair 2 queued") {
		t.Fatalf("repair: %d %s %s", code, out, errOut)
	}
	manual := waitRepair(t, cli, 2, "succeeded")
	if manual.RequestedBy != "tester" {
		t.Fatalf("manual repair requested by %q", manual.RequestedBy)
	}
	if code, out, _ := cli("repairs", "--outcome", "succeeded"); code != 0 || strings.Count(out, "succeeded") != 2 {
		t.Fatalf("repairs: %d\n%s", code, out)
	}
	// Two quick repairs leave the index's budget almost whole: the next may run now.
	if code, out, _ := cli("repairs"); code != 0 || !strings.Contains(out, "next automatic repair per index") ||
		!regexp.MustCompile(`db1 +public\.t_v_idx +now +0\.0% of 10\.0% over 24h0m0s +-`).MatchString(out) {
		t.Fatalf("repairs: %d\n%s", code, out)
	}
	// check asks the server when each index of the database may next be repaired.
	var chk, chkErr bytes.Buffer
	if code := run([]string{"check", "--dsn", dsn, "--no-probe", "--url", url, "--token", "read-token"}, &chk, &chkErr); code != 0 ||
		!regexp.MustCompile(`public\.t_v_idx +now; budget used 0\.0% of 10\.0% over 24h0m0s`).MatchString(chk.String()) {
		t.Fatalf("check --url: %d %s\n%s", code, chkErr.String(), chk.String())
	}
	if code, out, _ := cli("repairs", "1"); code != 0 || !strings.Contains(out, "sql: ANALYZE") {
		t.Fatalf("repairs 1: %d\n%s", code, out)
	}

	// Pause and resume as silences: the read token may not pause; a pause needs a scope or
	// --all, and says what it covers.
	if code, _, errOut := cli("pause", "--all"); code != 1 || !strings.Contains(errOut, "HTTP 403") {
		t.Fatalf("pause with the read token: %d %s", code, errOut)
	}
	if code, _, errOut := cli("pause", "--token", "api-token"); code != 1 || !strings.Contains(errOut, "--all") {
		t.Fatalf("pause without a scope: %d %s", code, errOut)
	}
	if code, out, errOut := cli("pause", "--token", "api-token", "--all", "--duration", "10m", "--comment", "deploy"); code != 0 ||
		!strings.Contains(out, "paused every target") || !strings.Contains(out, "covers: the runbook's alerts VecE2E") ||
		!strings.Contains(out, `never silenced: vectorheal's own alerts (alertname=~"Vectorheal.*")`) {
		t.Fatalf("pause: %d %s %s", code, out, errOut)
	}
	if code, out, _ := cli("status"); code != 0 || !strings.Contains(out, "PAUSED") {
		t.Fatalf("status while paused: %d\n%s", code, out)
	}
	if code, out, _ := cli("pauses"); code != 0 || !strings.Contains(out, `{alertname=~"VecE2E", alertname!~"Vectorheal.*"}`) {
		t.Fatalf("pauses: %d\n%s", code, out)
	}
	if code, _, errOut := cli("resume", "--token", "api-token"); code != 0 {
		t.Fatalf("resume: %d %s", code, errOut)
	}
	if code, out, _ := cli("status"); code != 0 || !strings.Contains(out, "active") {
		t.Fatalf("status after resume: %d\n%s", code, out)
	}

	// Reload: an invalid runbook is refused and the old one stays; SIGHUP loads a valid one.
	writeFile(t, dir, "runbook.yml", "entries:\n  - name: x\n    matchers: ['alertname=']\n    stepz: []\n")
	reload := func(token string) int {
		req, err := http.NewRequest(http.MethodPost, url+"/-/reload", nil)
		if err != nil {
			t.Fatal(err)
		}
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	if code := reload(""); code != 401 {
		t.Fatalf("reload without the API token: %d, want 401", code)
	}
	for _, tok := range []string{"read-token", "hook-token"} {
		if code := reload(tok); code != 403 {
			t.Fatalf("reload with %s: %d, want 403", tok, code)
		}
	}
	if code := reload("api-token"); code != 400 {
		t.Fatalf("reload of an invalid runbook: %d", code)
	}
	if n := runbookEntries(t, cli); n != 1 {
		t.Fatalf("runbook entries after refused reload: %d", n)
	}
	writeFile(t, dir, "runbook.yml", e2eRunbook+`
  - name: second
    matchers: ['alertname="Other"']
    steps:
      - strategy: vacuum
`)
	if err := v.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for runbookEntries(t, cli) != 2 {
		if time.Now().After(deadline) {
			t.Fatal("SIGHUP did not reload the runbook")
		}
		time.Sleep(100 * time.Millisecond)
	}
	code, metrics := httpGet(t, url+"/metrics")
	for _, want := range []string{`vectorheal_repairs_total{outcome="succeeded",strategy="analyze"} 2`, "vectorheal_repair_queue_depth 0",
		`vectorheal_webhook_notifications_total{outcome="recorded"}`} {
		if code != 200 || !strings.Contains(metrics, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func waitReady(t *testing.T, v *vectorheal, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := httpGet(t, url+"/-/ready"); code == 200 {
			return
		}
		select {
		case err := <-v.exited:
			t.Fatalf("vectorheal exited before ready: %v\n%s", err, v.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("vectorheal not ready after 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func waitRepair(t *testing.T, cli func(...string) (int, string, string), id int, state string) engine.Repair {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	var r engine.Repair
	for {
		code, out, _ := cli("repairs", fmt.Sprint(id), "-o", "json")
		if code == 0 {
			if err := json.Unmarshal([]byte(out), &r); err != nil {
				t.Fatal(err)
			}
			if r.State == state {
				return r
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("repair %d not %s: %+v", id, state, r)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func runbookEntries(t *testing.T, cli func(...string) (int, string, string)) int {
	t.Helper()
	code, out, errOut := cli("status", "-o", "json")
	if code != 0 {
		t.Fatalf("status: %s", errOut)
	}
	var st engine.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatal(err)
	}
	return st.RunbookEntries
}

// TestPrintRepair: figures are name=value pairs sorted by name with their units, never Go maps.
func TestPrintRepair(t *testing.T) {
	r := engine.Repair{ID: 7, State: "succeeded", Entry: "hnsw-dead-tuples", Target: "main", Datname: "app", Schema: "public",
		Index: "items_idx", Priority: 50, RequestedBy: "alertmanager",
		Steps: []engine.Step{{Position: 0, Strategy: "vacuum", State: "succeeded",
			Impact:     &strategy.Impact{LockLevel: "SHARE UPDATE EXCLUSIVE", IndexBytes: 5 << 20, DiskBytesNeeded: 0, EstimatedDuration: 90 * time.Second},
			Statements: []string{`VACUUM "public"."items"`},
			Before:     map[string]float64{"pgvector_hnsw_heap_tids:dead": 2400, "pgvector_recall_ratio": 0.9412},
			After:      map[string]float64{"pgvector_recall_ratio": 0.97, "pgvector_hnsw_heap_tids:dead": 0},
			Validation: json.RawMessage(`{"figure":"pgvector_hnsw_heap_tids:dead","op":"<","value":1000,"wait":0,"attempts":3,"measured":0,"tries":1,"passed":true}`),
		}}}
	var b bytes.Buffer
	if err := printRepair(&b, r); err != nil {
		t.Fatal(err)
	}
	want := `repair 7: succeeded
entry hnsw-dead-tuples, index main app/public.items_idx, priority 50, requested by alertmanager
step 1 vacuum: succeeded
  impact: lock="SHARE UPDATE EXCLUSIVE" index_size=5MiB extra_disk=0B estimated=1m30s
  sql: VACUUM "public"."items"
  before: pgvector_hnsw_heap_tids:dead=2400 pgvector_recall_ratio=94.1%
  after:  pgvector_hnsw_heap_tids:dead=0 pgvector_recall_ratio=97%
  validation: pgvector_hnsw_heap_tids:dead < 1000 passed measured=0 tries=1
`
	if got := b.String(); got != want {
		t.Errorf("printRepair\n got:\n%s\nwant:\n%s", got, want)
	}
}
