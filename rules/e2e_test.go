package rules

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// shortFor is the hold every alert gets in the end-to-end test, instead of minutes.
const shortFor = "15s"

// writeShortRules writes the embedded rule files to dir with every alert's for set to shortFor,
// so an alert goes pending and then firing within the test.
func writeShortRules(t *testing.T, dir string) {
	t.Helper()
	names, err := fs.Glob(FS(), "*.yml")
	if err != nil || len(names) == 0 {
		t.Fatalf("no embedded rule files: %v", err)
	}
	for _, name := range names {
		data, err := fs.ReadFile(FS(), name)
		if err != nil {
			t.Fatal(err)
		}
		var doc map[string]any
		if err := yaml.Unmarshal(data, &doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		for _, g := range doc["groups"].([]any) {
			for _, r := range g.(map[string]any)["rules"].([]any) {
				if r := r.(map[string]any); r["alert"] != nil {
					r["for"] = shortFor
				}
			}
		}
		out, err := yaml.Marshal(doc)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), out, 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// promAlert is one alert of Prometheus's /api/v1/alerts.
type promAlert struct {
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
	State       string            `json:"state"`
	Value       string            `json:"value"`
}

func promAlerts(t *testing.T, base string) []promAlert {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Alerts []promAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatal(err)
	}
	return body.Data.Alerts
}

// TestEndToEndDeadTuplesAlert runs the real chain: PostgreSQL with an HNSW index holding many
// deleted rows not yet vacuumed, the exporter measuring it, a real Prometheus scraping the
// exporter and evaluating rules/ (with short holds), and checks that PgvectorHNSWDeadTuplesPending
// goes pending, then firing, with the documented labels, on the degraded index only.
func TestEndToEndDeadTuplesAlert(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	datname := strings.TrimPrefix(u.Path, "/")
	// Autovacuum off on the degraded table, so nothing cleans it during the test.
	testenv.Exec(t, dsn,
		`CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(8)) WITH (autovacuum_enabled = false)`,
		`INSERT INTO items (embedding) SELECT (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE i > 0)::vector FROM generate_series(1, 4000) i`,
		`CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`CREATE TABLE docs (id bigserial PRIMARY KEY, embedding vector(8))`,
		`INSERT INTO docs (embedding) SELECT (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE i > 0)::vector FROM generate_series(1, 2000) i`,
		`CREATE INDEX docs_embedding_idx ON docs USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`DELETE FROM items WHERE id <= 2000`,
	)

	chk := func(every time.Duration) config.Check {
		return config.Check{Interval: every, Timeout: 10 * time.Second}
	}
	cfg := config.Exporter{
		Structure:           config.StructureCheck{Check: chk(2 * time.Second)},
		Recall:              config.RecallCheck{Check: chk(2 * time.Second), Queries: 5, K: 10},
		Drift:               config.DriftCheck{Check: chk(5 * time.Second), SampleSize: 100},
		StatisticsTimeout:   5 * time.Second,
		MaxConcurrentChecks: 2,
		PageBatch:           16,
		DiscoveryInterval:   2 * time.Second,
	}
	exporterURL := serveExporter(t, dsn, cfg)

	rulesDir := t.TempDir()
	writeShortRules(t, rulesDir)
	prom := testenv.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s/*.yml
scrape_configs:
  - job_name: vectorheal
    static_configs:
      - targets: [%q]
`, rulesDir, strings.TrimPrefix(exporterURL, "http://")))

	const name = "PgvectorHNSWDeadTuplesPending"
	find := func(index string) *promAlert {
		for _, a := range promAlerts(t, prom.URL) {
			if a.Labels["alertname"] == name && a.Labels["indexrelname"] == index {
				return &a
			}
		}
		return nil
	}
	var pending, firing *promAlert
	deadline := time.Now().Add(3 * time.Minute)
	for firing == nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not fire within 3 minutes (pending seen: %v); alerts: %+v", name, pending != nil, promAlerts(t, prom.URL))
		}
		if a := find("items_embedding_idx"); a != nil {
			switch a.State {
			case "pending":
				pending = a
			case "firing":
				firing = a
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	if pending == nil {
		t.Errorf("%s fired without being seen pending first (for: %s)", name, shortFor)
	}
	want := map[string]string{
		"alertname": name, "target": "e2e", "datname": datname, "schemaname": "public", "relname": "items",
		"indexrelname": "items_embedding_idx", "severity": "warning", "vectorheal_severity": "medium", "vectorheal_role": "cause",
	}
	for k, v := range want {
		if firing.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, firing.Labels[k], v, firing.Labels)
		}
	}
	if got := firing.Annotations["runbook_url"]; got != runbookBase+strings.ToLower(name) {
		t.Errorf("runbook_url %q", got)
	}
	if got := firing.Annotations["description"]; !strings.HasPrefix(got, "2k heap TIDs of deleted rows") {
		t.Errorf("description %q does not report the 2000 dead heap TIDs", got)
	}
	if a := find("docs_embedding_idx"); a != nil {
		t.Errorf("%s is %s on the healthy index", name, a.State)
	}
	checkDashboardQueries(t, prom.URL, map[string]string{"target": "e2e", "indexrelname": "items_embedding_idx"})
}

// withData are panels that must show data for a freshly measured HNSW index.
var withData = []string{"Layer distribution", "Elements by state", "Reachability", "Heap TIDs", "Size", "Valid",
	"Vector indexes", "HNSW dead heap TIDs", "Targets up"}

// checkDashboardQueries runs every dashboard query, with its variables set to vars, on the real
// Prometheus: each must be accepted, and the panels in withData must return data.
func checkDashboardQueries(t *testing.T, promURL string, vars map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	for file, d := range readDashboards(t) {
		var walk func([]panel)
		walk = func(ps []panel) {
			for _, p := range ps {
				walk(p.Panels)
				for _, tg := range p.Targets {
					q := grafanaVarRE.ReplaceAllStringFunc(tg.Expr, func(v string) string {
						name := strings.Trim(v, "${}")
						if strings.HasPrefix(name, "__") {
							return "1m"
						}
						return vars[name]
					})
					n := promQuery(t, promURL, q)
					if n < 0 {
						t.Errorf("%s: panel %q: Prometheus refused %s", file, p.Title, q)
					}
					if n > 0 {
						seen[p.Title] = true
					}
				}
			}
		}
		walk(d.Panels)
	}
	for _, title := range withData {
		if !seen[title] {
			t.Errorf("panel %q shows no data for a measured HNSW index", title)
		}
	}
}

// promQuery runs an instant query and returns the number of series, or -1 when refused.
func promQuery(t *testing.T, base, q string) int {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(q))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []json.RawMessage `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil || body.Status != "success" {
		t.Logf("query %s: %v %s", q, err, body.Error)
		return -1
	}
	return len(body.Data.Result)
}

// testWriter routes the exporter's log into the test log.
type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// serveExporter runs an exporter with cfg on the database dsn (target "e2e") until the test
// ends, and returns the URL that serves its /metrics.
func serveExporter(t *testing.T, dsn string, cfg config.Exporter) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	ts, err := targets.Open(ctx, []config.Target{{Name: "e2e", DSN: config.Secret{Value: dsn}, MaxConnections: 4, MaxConcurrentChecks: 2}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	logger := slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
	e := exporter.New(ts, cfg, logger)
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
	return srv.URL
}
