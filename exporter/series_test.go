package exporter

import (
	"bufio"
	"regexp"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestSeriesPerIndexOnPostgres: a healthy HNSW and a healthy IVFFlat index of a real database,
// once every check ran, cost at most 25 and 20 series by default, counted in a scrape in the
// text format, and the numbers docs/metrics.md states; with exporter.detail_series every
// figure comes back, in the series it had before they were bounded.
func TestSeriesPerIndexOnPostgres(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	const rows = 3000
	clustered(t, dsn, rows, 8, 12)
	// One index per table: two indexes on one column would leave one unused by the planner,
	// without recall, and so not a healthy index.
	testenv.Exec(t, dsn,
		`CREATE TABLE docs (id bigserial PRIMARY KEY, embedding vector(8))`,
		`INSERT INTO docs (embedding) SELECT embedding FROM items`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`CREATE INDEX docs_ivf ON docs USING ivfflat (embedding vector_l2_ops) WITH (lists = 10)`,
		`VACUUM ANALYZE items`, `VACUUM ANALYZE docs`)

	want := seriesPerIndex()
	def := measureSeries(t, dsn, "")
	t.Logf("by default: HNSW %d series, IVFFlat %d", def.count["items_hnsw"], def.count["docs_ivf"])
	if n := def.count["items_hnsw"]; n > 25 || n != want.hnsw+want.latency {
		t.Errorf("healthy HNSW index: %d series, want at most 25 and docs/metrics.md says %d:\n%s", n, want.hnsw+want.latency, def.lines["items_hnsw"])
	}
	if n := def.count["docs_ivf"]; n > 20 || n != want.ivfflat+want.latency {
		t.Errorf("healthy IVFFlat index: %d series, want at most 20 and docs/metrics.md says %d:\n%s", n, want.ivfflat+want.latency, def.lines["docs_ivf"])
	}

	detail := measureSeries(t, dsn, "  detail_series: true\n")
	layers := detail.names["items_hnsw"]["pgvector_hnsw_layer_elements"]
	if layers < 2 {
		t.Fatalf("%d graph layers: too few to count the per-layer series", layers)
	}
	latency := len(config.DetailLatencyBuckets()) + 3
	t.Logf("detail_series: HNSW %d series (%d layers), IVFFlat %d", detail.count["items_hnsw"], layers, detail.count["docs_ivf"])
	if n, w := detail.count["items_hnsw"], want.detailHNSW+want.detailPerLayer*layers+latency; n != w {
		t.Errorf("detail: healthy HNSW index with %d layers: %d series, docs/metrics.md says %d:\n%s", layers, n, w, detail.lines["items_hnsw"])
	}
	if n, w := detail.count["docs_ivf"], want.detailIVFFlat+latency; n != w {
		t.Errorf("detail: healthy IVFFlat index: %d series, docs/metrics.md says %d:\n%s", n, w, detail.lines["docs_ivf"])
	}
	// Every figure of the table is back, but those a healthy index has none of.
	absent := map[string]bool{"pgvector_index_partition_info": true, "pgvector_index_structural_faults": true,
		"pgvector_index_build_progress_ratio": true}
	for ix, method := range map[string]string{"items_hnsw": "hnsw", "docs_ivf": "ivfflat"} {
		for _, f := range indexFigures() {
			name := f.name
			if f.typ == histogramType {
				name += "_count"
			}
			if f.appliesTo(method) && !absent[f.name] && detail.names[ix][name] == 0 {
				t.Errorf("detail: %s publishes no %s", ix, name)
			}
		}
		for name := range def.names[ix] {
			if detail.names[ix][name] == 0 {
				t.Errorf("%s publishes %s by default but not with detail_series", ix, name)
			}
		}
	}
}

// scrapeSeries are the series of one scrape in the text format, by index.
type scrapeSeries struct {
	count map[string]int            // by indexrelname
	names map[string]map[string]int // by indexrelname, then sample name
	lines map[string]string         // by indexrelname, for failure messages
}

var indexrelnameRE = regexp.MustCompile(`[{,]indexrelname="([^"]*)"`)

// measureSeries starts an exporter on dsn with the test configuration, except that its
// series and latency buckets are what config.Parse makes of exporterYAML (lines under
// exporter:), waits until every check has run on both indexes and they hold their figures,
// and counts the series of a text-format scrape by index: each sample line is one series.
func measureSeries(t *testing.T, dsn, exporterYAML string) scrapeSeries {
	t.Helper()
	parsed, err := config.Parse("vectorheal.yml", []byte("targets:\n  - name: main\n    dsn: {value: 'postgres://x'}\nexporter:\n"+exporterYAML+"  page_batch: 16\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := testConfig()
	cfg.DetailSeries = parsed.Exporter.DetailSeries
	cfg.Recall.LatencyBuckets = parsed.Exporter.Recall.LatencyBuckets
	s := start(t, cfg, map[string]string{"main": dsn})

	h := map[string]string{"target": "main", "indexrelname": "items_hnsw"}
	iv := map[string]string{"target": "main", "indexrelname": "docs_ivf"}
	for _, c := range []string{kindDiscovery, kindStatistics, kindStructure, kindRecall, kindDrift} {
		s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": c}, "1", eq(1))
	}
	for _, l := range []map[string]string{h, iv} {
		s.waitSample(t, "pgvector_recall_ratio", withLabel(l, "k", "10"), "measured", exists)
		s.waitSample(t, "pgvector_probe_latency_seconds", l, "a probe's searches", func(v float64) bool { return v >= 10 })
		s.waitSample(t, "pgvector_drift_score", l, "computed", exists)
		s.waitSample(t, "pgvector_table_last_vacuum_age_seconds", l, "read", exists)
	}
	s.waitSample(t, "pgvector_hnsw_as_built_connectivity_ratio", h, "recorded", exists)
	s.waitSample(t, "pgvector_index_as_built_timestamp_seconds", withLabel(h, "basis", basisBuild), "recorded on the build", exists)
	s.waitSample(t, "pgvector_hnsw_connectivity_ratio", h, "fully connected", eq(1))
	s.waitSample(t, "pgvector_ivfflat_list_size_cv", iv, "measured", exists)

	// Native buckets go to a Prometheus that asks for them (protobuf), whatever the classic ones.
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range fams {
		if mf.GetName() == "pgvector_probe_latency_seconds" {
			for _, m := range mf.GetMetric() {
				if h := m.GetHistogram(); len(h.GetPositiveSpan()) == 0 || len(h.GetBucket()) != len(cfg.Recall.LatencyBuckets) {
					t.Errorf("probe latency: %d native spans, %d classic buckets, want native ones and %d classic",
						len(h.GetPositiveSpan()), len(h.GetBucket()), len(cfg.Recall.LatencyBuckets))
				}
			}
		}
	}

	out := scrapeSeries{count: map[string]int{}, names: map[string]map[string]int{}, lines: map[string]string{}}
	text := s.scrape(t)
	promtoolCheck(t, text)
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		m := indexrelnameRE.FindStringSubmatch(line)
		if m == nil {
			continue
		}
		ix, name := m[1], line[:strings.IndexAny(line, "{ ")]
		out.count[ix]++
		if out.names[ix] == nil {
			out.names[ix] = map[string]int{}
		}
		out.names[ix][name]++
		out.lines[ix] += line + "\n"
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}
