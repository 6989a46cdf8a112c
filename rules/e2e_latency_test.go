package rules

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestEndToEndLatencyRulesReadEitherForm: the probe latency reaches Prometheus as a native
// histogram where Prometheus ingests them and as classic series where it scrapes the text
// format, and the latency recording rules read whichever it got. By default (no classic
// bucket) a native-histogram Prometheus records the mean and the p99, a text-format one the
// mean only; with the documented small classic set a text-format one records both.
func TestEndToEndLatencyRulesReadEitherForm(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn,
		`CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(8))`,
		`INSERT INTO items (embedding) SELECT (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE i > 0)::vector FROM generate_series(1, 3000) i`,
		`CREATE INDEX items_embedding_idx ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`ANALYZE items`,
	)
	rulesDir := t.TempDir()
	writeShortRules(t, rulesDir)
	// Native histograms are a feature flag up to Prometheus 3.7 and a scrape setting from 3.8
	// on (where the flag first only sets its default, then does nothing).
	major, minor, err := testenv.PrometheusVersion()
	if err != nil {
		t.Fatal(err)
	}
	settingFrom38 := major > 3 || (major == 3 && minor >= 8)
	promFor := func(exporterURL string, native bool) string {
		var flags []string
		scrapeNative := ""
		switch {
		case native && settingFrom38:
			scrapeNative = "\n    scrape_native_histograms: true"
		case native:
			flags = append(flags, "--enable-feature=native-histograms")
		}
		return testenv.StartPrometheus(t, fmt.Sprintf(`
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - %s/*.yml
scrape_configs:
  - job_name: vectorheal%s
    static_configs:
      - targets: [%q]
`, rulesDir, scrapeNative, strings.TrimPrefix(exporterURL, "http://")), flags...).URL
	}
	byDefault := startLatencyExporter(t, dsn, []float64{})
	small := startLatencyExporter(t, dsn, config.SmallLatencyBuckets())
	for _, c := range []struct {
		name        string
		prom        string
		native, p99 bool
	}{
		{"native histograms, no classic bucket", promFor(byDefault, true), true, true},
		{"text format, no classic bucket", promFor(byDefault, false), false, false},
		{"text format, the small classic set", promFor(small, false), false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			const sel = `{indexrelname="items_embedding_idx"}`
			deadline := time.Now().Add(2 * time.Minute)
			for promQuery(t, c.prom, "index:pgvector_probe_latency_seconds:mean15m"+sel+" > 0") != 1 {
				if time.Now().After(deadline) {
					t.Fatalf("no mean probe latency recorded within 2 minutes")
				}
				time.Sleep(250 * time.Millisecond)
			}
			// Both rules are of one group: evaluated together, the p99 is there with the mean or never.
			if got := promQuery(t, c.prom, "index:pgvector_probe_latency_seconds:p99_15m"+sel+" > 0"); got != map[bool]int{true: 1}[c.p99] {
				t.Errorf("p99 latency: %d series, want p99 %v", got, c.p99)
			}
			if got := promQuery(t, c.prom, "pgvector_probe_latency_seconds_count"+sel); got != map[bool]int{false: 1}[c.native] {
				t.Errorf("pgvector_probe_latency_seconds_count: %d series, want native %v", got, c.native)
			}
		})
	}
}

// startLatencyExporter runs an exporter on dsn with only the recall probe, every 2s, with the
// given classic latency buckets, and returns the URL of its /metrics.
func startLatencyExporter(t *testing.T, dsn string, buckets []float64) string {
	t.Helper()
	off := config.Check{Disabled: true}
	cfg := config.Exporter{
		Structure: config.StructureCheck{Check: off}, Drift: config.DriftCheck{Check: off},
		Recall: config.RecallCheck{Check: config.Check{Interval: 2 * time.Second, Timeout: 10 * time.Second}, Queries: 5, K: 10,
			LatencyBuckets: buckets},
		StatisticsTimeout:   5 * time.Second,
		MaxConcurrentChecks: 2,
		DiscoveryInterval:   2 * time.Second,
	}
	exporterURL := serveExporter(t, dsn, cfg)
	return exporterURL
}
