package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestEndToEndFilteredQueriesShortAlert runs the real chain for filtered search: PostgreSQL
// with an HNSW index at the default hnsw.ef_search = 40 and a declared filtered query whose
// filter matches a tenth of the rows (about 4 of 10 rows come back), the exporter measuring it,
// a real Prometheus evaluating rules/ (with short holds): PgvectorFilteredQueriesShort fires
// with the query set's labels, and the filtered recall alert, whose cause it is, stays quiet.
func TestEndToEndFilteredQueriesShortAlert(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn,
		`CREATE TABLE items (id bigserial PRIMARY KEY, category int NOT NULL, embedding vector(16))`,
		`INSERT INTO items (category, embedding) SELECT i % 10, (SELECT array_agg(random()) FROM generate_series(1, 16) WHERE i > 0)::vector
		 FROM generate_series(1, 10000) i`,
		`CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_l2_ops)`,
		`ANALYZE items`,
	)
	off := config.Check{Disabled: true}
	cfg := config.Exporter{
		Structure: config.StructureCheck{Check: off}, Drift: config.DriftCheck{Check: off},
		Recall:              config.RecallCheck{Check: config.Check{Interval: 5 * time.Second, Timeout: 10 * time.Second}, Queries: 5, K: 10},
		StatisticsTimeout:   5 * time.Second,
		MaxConcurrentChecks: 2,
		DiscoveryInterval:   2 * time.Second,
		FilteredQueries: []config.FilteredQuery{{Name: "by_category", Schema: "public", Index: "items_embedding_idx",
			Filters: []string{"category"}, K: 10, Samples: 10, Interval: 2 * time.Second, Timeout: 10 * time.Second,
			SQL: `SELECT id FROM items WHERE category = $2 ORDER BY embedding <-> $1 LIMIT $3`}},
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

	const name = "PgvectorFilteredQueriesShort"
	var firing *promAlert
	deadline := time.Now().Add(3 * time.Minute)
	for firing == nil {
		if time.Now().After(deadline) {
			t.Fatalf("%s did not fire within 3 minutes; alerts: %+v", name, promAlerts(t, prom.URL))
		}
		for _, a := range promAlerts(t, prom.URL) {
			if a.Labels["alertname"] == name && a.State == "firing" {
				firing = &a
			}
		}
		time.Sleep(250 * time.Millisecond)
	}
	want := map[string]string{"target": "e2e", "schemaname": "public", "relname": "items", "indexrelname": "items_embedding_idx",
		"query": "by_category", "severity": "warning", "vectorheal_role": "symptom"}
	for k, v := range want {
		if firing.Labels[k] != v {
			t.Errorf("label %s = %q, want %q (labels %v)", k, firing.Labels[k], v, firing.Labels)
		}
	}
	if got := firing.Annotations["runbook_url"]; got != runbookBase+strings.ToLower(name) {
		t.Errorf("runbook_url %q", got)
	}
	t.Logf("firing: %s", firing.Annotations["description"])
	for _, a := range promAlerts(t, prom.URL) {
		if a.Labels["alertname"] == "PgvectorFilteredRecallBelowTarget" {
			t.Errorf("PgvectorFilteredRecallBelowTarget is %s while the results are short (its cause)", a.State)
		}
	}
}
