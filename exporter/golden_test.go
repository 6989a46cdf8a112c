package exporter

import (
	"bytes"
	"context"
	"flag"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/ivfflat"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/exporter/pagescan/pagescantest"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/horizon"
	"github.com/vectorheal/vectorheal/internal/targets"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/golden")

// fixture is a target with one healthy HNSW and one healthy IVFFlat index whose structure is
// analysed from real stored pages (the fuzz seeds), with fixed probe results, statistics and
// build tracking: everything a scrape would publish after every check ran once, no database.
// newFixture publishes what the default configuration does, newDetailFixture what
// exporter.detail_series does.
type fixture struct {
	e     *Exporter
	t     *target
	stats *targetStats
	now   time.Time
}

var fixtureNow = time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)

// noDeadTIDs is a heap where every row an HNSW element points at is live, as the table of a
// freshly built index is.
type noDeadTIDs struct{}

func (noDeadTIDs) DeadTIDs(context.Context, []hnsw.TID) (int64, error) { return 0, nil }

func newFixture(t *testing.T) *fixture {
	t.Helper()
	return fixtureOf(t, config.Exporter{Recall: config.RecallCheck{K: 10, LatencyBuckets: []float64{}}})
}

func newDetailFixture(t *testing.T) *fixture {
	t.Helper()
	return fixtureOf(t, config.Exporter{DetailSeries: true, Recall: config.RecallCheck{K: 10, LatencyBuckets: config.DetailLatencyBuckets()}})
}

func fixtureOf(t *testing.T, cfg config.Exporter) *fixture {
	t.Helper()
	ctx := context.Background()
	hnswPages := pagescantest.ReadSeed(t, "hnsw", "FuzzHNSWPages", "fresh")
	hrep, err := hnsw.Analyze(ctx, pagescan.SplitPages(hnswPages), hnsw.Options{Heap: noDeadTIDs{}})
	if err != nil {
		t.Fatal(err)
	}
	ivfPages := pagescantest.ReadSeed(t, "ivfflat", "FuzzIVFFlatPages", "fresh")
	irep, err := ivfflat.Analyze(ctx, pagescan.SplitPages(ivfPages), ivfflat.Options{Distance: "l2", QualitySample: qualitySample})
	if err != nil {
		t.Fatal(err)
	}
	// The structure scans have an adaptive page budget, so its figures are in the page.
	cfg.Structure.MaxPagesPerSecond, cfg.Structure.Adaptive = 2000, true
	e := &Exporter{cfg: cfg, d: newDescs()}
	tg := &target{Target: &targets.Target{Target: config.Target{Name: "prod"}}, indexes: map[uint32]*index{},
		collectors: map[string]*collectorStat{}, reader: rawPages(), readerSeen: true}
	// The last structure scan backed off twice and is at a quarter of its ceiling.
	tg.budget.rate, tg.budget.backoffs = 500, 2
	for _, c := range []string{kindDiscovery, kindStatistics, kindStructure, kindRecall, kindDrift} {
		tg.collectors[c] = &collectorStat{ok: map[uint32]bool{0: true}, duration: 25 * time.Millisecond, lastSuccess: fixtureNow.Add(-time.Minute)}
	}
	stats := &targetStats{datname: "app", indexes: map[uint32]*indexStats{}, vacuum: map[uint32]float64{},
		queryCalls: new(250.0), queryExecSeconds: new(1.5),
		horizon: &horizon.Holder{Kind: horizon.KindIdleInTransaction, Name: "4242", AgeXIDs: 1830, Age: new(754 * time.Second)}}

	add := func(ix catalog.Index, s *structure, rows int64) {
		st := &index{ix: ix, structure: s, latency: newHistogram(cfg.Recall.LatencyBuckets), drift: new(1.04),
			build: buildInfo{relfilenode: ix.Relfilenode, builtAt: fixtureNow.Add(-26 * time.Hour), rowsAtBuild: rows, writesAtBuild: rows}}
		st.recall = &recallResult{k: 10, ratio: 0.97, indexUsed: true,
			latencies: []float64{0.0004, 0.0009, 0.0011, 0.0012, 0.0014, 0.0018, 0.0021, 0.0032, 0.0047, 0.012}}
		for _, l := range st.recall.latencies {
			st.latency.observe(l)
		}
		// Every check ran once on a fresh build: its baseline is recorded.
		st.asBuilt = &asBuilt{Basis: basisBuild, At: fixtureNow.Add(-26 * time.Hour), Figures: map[string]float64{
			asBuiltRecall: st.recall.ratio, asBuiltRecallK: float64(st.recall.k)}}
		if figures, basis := structureBaseline(s); figures != nil {
			maps.Copy(st.asBuilt.Figures, figures)
			st.asBuilt.Basis = basis
		}
		tg.indexes[ix.OID] = st
		stats.indexes[ix.OID] = &indexStats{scans: 1200, tupRead: 12000, blksHit: 9800, blksRead: 40, sizeBytes: float64(ix.SizeBytes),
			deadTup: 0, liveTup: float64(rows), writes: float64(rows) + 4, vacuumAge: new(3600.0), analyzeAge: new(3600.0)}
	}
	add(catalog.Index{OID: 16401, Datname: "app", Schema: "public", Table: "items", Name: "items_embedding_hnsw", TableOID: 16390,
		Method: "hnsw", Opclass: "vector_l2_ops", Column: "embedding", ColumnType: "vector(3)", Dimensions: 3, Valid: true,
		Relfilenode: 16401, SizeBytes: int64(len(hnswPages)), M: 4, EfConstruction: 8},
		&structure{hnsw: hrep, rows: 40}, 40)
	// One declared filtered query on the HNSW index: 10 samples of k = 10, three of them short.
	tg.indexes[16401].filtered = map[string]*filteredResult{"by_category": {k: 10, samples: 10, short: 3,
		rows: 85, exactRows: 100, hits: 80, want: 100, indexUsed: true, latency: 0.0042}}
	add(catalog.Index{OID: 16402, Datname: "app", Schema: "public", Table: "docs", Name: "docs_embedding_ivfflat", TableOID: 16391,
		Method: "ivfflat", Opclass: "vector_l2_ops", Column: "embedding", ColumnType: "vector(3)", Dimensions: 3, Valid: true,
		Relfilenode: 16402, SizeBytes: int64(len(ivfPages)), Lists: 3},
		&structure{ivf: irep, rows: 60}, 60)
	// A partitioned table: the parent's index has no storage and no statistics of its own, the
	// index of its one partition is measured like any other.
	tg.indexes[16403] = &index{ix: catalog.Index{OID: 16403, Datname: "app", Schema: "public", Table: "events", Name: "events_embedding_ivfflat",
		TableOID: 16392, Method: "ivfflat", Opclass: "vector_l2_ops", Column: "embedding", ColumnType: "vector(3)", Dimensions: 3,
		Partitioned: true, Valid: true, Lists: 3}, latency: newHistogram(cfg.Recall.LatencyBuckets)}
	add(catalog.Index{OID: 16404, Datname: "app", Schema: "public", Table: "events_2024", Name: "events_2024_embedding_idx", TableOID: 16393,
		Method: "ivfflat", Opclass: "vector_l2_ops", Column: "embedding", ColumnType: "vector(3)", Dimensions: 3, Valid: true,
		ParentSchema: "public", ParentIndex: "events_embedding_ivfflat", ParentTable: "events",
		Relfilenode: 16404, SizeBytes: int64(len(ivfPages)), Lists: 3},
		&structure{ivf: irep, rows: 60}, 60)
	return &fixture{e: e, t: tg, stats: stats, now: fixtureNow}
}

// fixtureCollector scrapes the fixture as Collect would, without a database.
type fixtureCollector struct{ *fixture }

func (c fixtureCollector) Describe(ch chan<- *prometheus.Desc) { c.e.Describe(ch) }
func (c fixtureCollector) Collect(ch chan<- prometheus.Metric) {
	c.t.mu.Lock()
	defer c.t.mu.Unlock()
	c.e.emitTarget(emitter{ch: ch, d: c.e.d, detail: c.e.cfg.DetailSeries}, c.t, true, c.stats, nil, c.now)
}

func (f *fixture) gather(t *testing.T) []*dto.MetricFamily {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(fixtureCollector{f})
	fams, err := reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	return fams
}

// golden compares got with testdata/golden/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", "golden", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (write it with go test ./exporter -run %s -update)", err, t.Name())
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from the output (go test ./exporter -run %s -update rewrites it); got:\n%s", path, t.Name(), got)
	}
}

// TestGoldenMetrics: the whole /metrics text of the fixture, linted by promtool.
func TestGoldenMetrics(t *testing.T) {
	var b bytes.Buffer
	enc := expfmt.NewEncoder(&b, expfmt.NewFormat(expfmt.TypeTextPlain))
	for _, mf := range newFixture(t).gather(t) {
		if err := enc.Encode(mf); err != nil {
			t.Fatal(err)
		}
	}
	golden(t, "metrics.prom", b.Bytes())
	promtoolCheck(t, b.String())
}

// TestGoldenCheckJSON: the report of vectorheal check --format json over the fixture's
// readings (as Report reads them: no build tracking, one probe's latencies).
func TestGoldenCheckJSON(t *testing.T) {
	f := newFixture(t)
	rep := &DatabaseReport{Datname: "app", IndexReadsOn: onPrimary, PageReaderAvailable: 1, HeapReaderAvailable: 1, QueryCallsTotal: f.stats.queryCalls, QueryExecSeconds: f.stats.queryExecSeconds,
		XminHorizon: xminHorizonReport(f.stats.horizon)}
	for _, oid := range []uint32{16401, 16402, 16403, 16404} {
		st := f.t.indexes[oid]
		r := &readings{ix: st.ix, structure: st.structure, recall: st.recall, stats: f.stats.indexes[oid], now: f.now}
		if st.recall != nil {
			r.latency = st.recall.histogram()
		}
		rep.Indexes = append(rep.Indexes, indexReport(r))
	}
	rollUpPartitions(rep.Indexes)
	var js, text bytes.Buffer
	if err := rep.WriteJSON(&js); err != nil {
		t.Fatal(err)
	}
	golden(t, "check.json", js.Bytes())
	if err := rep.WriteText(&text); err != nil {
		t.Fatal(err)
	}
	golden(t, "check.txt", text.Bytes())
}

// seriesOf counts the series Prometheus stores per index from a scrape in the text format,
// by indexrelname: one per gauge or counter sample, and per histogram its classic buckets,
// +Inf, _sum and _count.
func seriesOf(fams []*dto.MetricFamily) map[string]int {
	out := map[string]int{}
	for _, mf := range fams {
		for _, m := range mf.GetMetric() {
			ix := ""
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "indexrelname" {
					ix = lp.GetValue()
				}
			}
			if ix == "" {
				continue
			}
			n := 1
			if h := m.GetHistogram(); h != nil {
				n = len(h.GetBucket()) + 3
			}
			out[ix] += n
		}
	}
	return out
}

// TestSeriesPerHealthyIndex holds a healthy index's series to the numbers docs/metrics.md
// states (seriesPerIndex), by default and with exporter.detail_series.
func TestSeriesPerHealthyIndex(t *testing.T) {
	want := seriesPerIndex()
	f := newFixture(t)
	got := seriesOf(f.gather(t))
	filtered := want.perFiltered * len(f.t.indexes[16401].filtered)
	if n := want.hnsw + want.latency + filtered; got["items_embedding_hnsw"] != n {
		t.Errorf("healthy HNSW index: %d series, docs/metrics.md says %d", got["items_embedding_hnsw"], n)
	}
	if n := want.ivfflat + want.latency; got["docs_embedding_ivfflat"] != n {
		t.Errorf("healthy IVFFlat index: %d series, docs/metrics.md says %d", got["docs_embedding_ivfflat"], n)
	}
	if n := want.ivfflat + want.latency + want.partition; got["events_2024_embedding_idx"] != n {
		t.Errorf("healthy IVFFlat index of a partition: %d series, docs/metrics.md says %d", got["events_2024_embedding_idx"], n)
	}
	if got["items_embedding_hnsw"]-filtered > 25 || got["docs_embedding_ivfflat"] > 20 {
		t.Errorf("healthy HNSW %d and IVFFlat %d series, over the bound of 25 and 20", got["items_embedding_hnsw"]-filtered, got["docs_embedding_ivfflat"])
	}

	d := newDetailFixture(t)
	got = seriesOf(d.gather(t))
	layers := len(d.t.indexes[16401].structure.hnsw.LayerElements)
	latency := len(config.DetailLatencyBuckets()) + 3
	if n := want.detailHNSW + want.detailPerLayer*layers + latency + filtered; got["items_embedding_hnsw"] != n {
		t.Errorf("detail: healthy HNSW index with %d layers: %d series, docs/metrics.md says %d", layers, got["items_embedding_hnsw"], n)
	}
	if n := want.detailIVFFlat + latency; got["docs_embedding_ivfflat"] != n {
		t.Errorf("detail: healthy IVFFlat index: %d series, docs/metrics.md says %d", got["docs_embedding_ivfflat"], n)
	}
	// Without classic buckets the latency is _sum, _count and +Inf in the text format.
	d.t.indexes[16402].latency = newHistogram(nil)
	for _, l := range d.t.indexes[16402].recall.latencies {
		d.t.indexes[16402].latency.observe(l)
	}
	if n := seriesOf(d.gather(t))["docs_embedding_ivfflat"]; n != want.detailIVFFlat+3 {
		t.Errorf("detail: IVFFlat without classic latency buckets: %d series, want %d", n, want.detailIVFFlat+3)
	}
}

// TestEveryFigureIsMeasuredOrSaysWhyNot: a figure published on /metrics is either known to
// the Measurer, under each label value it names, or says why it cannot be re-measured.
func TestEveryFigureIsMeasuredOrSaysWhyNot(t *testing.T) {
	f := newDetailFixture(t)
	published := map[string]map[string]bool{} // metric -> label values seen (of a one-label figure)
	for _, mf := range f.gather(t) {
		for _, m := range mf.GetMetric() {
			if published[mf.GetName()] == nil {
				published[mf.GetName()] = map[string]bool{}
			}
			for _, lp := range m.GetLabel() {
				if slices.Contains([]string{"state", "layer", "kind", "k"}, lp.GetName()) {
					published[mf.GetName()][lp.GetValue()] = true
				}
			}
		}
	}
	names := FigureNames()
	for _, fig := range figureTable() {
		if (len(fig.measured) == 0) == (fig.unmeasured == "") {
			t.Errorf("%s: measured %q, unmeasured %q; give exactly one", fig.name, fig.measured, fig.unmeasured)
		}
		for _, key := range fig.measured {
			if key != "" && len(fig.labels) != 1 {
				t.Errorf("%s: measured by label value %q but has labels %v", fig.name, key, fig.labels)
			}
		}
		seen, ok := published[fig.name]
		if !ok && fig.name != "pgvector_index_build_progress_ratio" && fig.name != "pgvector_index_structural_faults" {
			t.Errorf("%s is in the figure table but the fixture publishes nothing for it", fig.name)
		}
		for v := range seen {
			if fig.unmeasured == "" && len(fig.labels) == 1 && !slices.Contains(fig.measured, "") && !slices.Contains(names, fig.name+":"+v) {
				t.Errorf("%s{%s=%q} is published but the Measurer does not know %s:%s", fig.name, fig.labels[0], v, fig.name, v)
			}
		}
	}
	// Every metric family the fixture publishes is documented.
	for name := range published {
		if !isListed(name) {
			t.Errorf("%s is published but not listed in Metrics()", name)
		}
	}
	// Every Measurer figure has a value from its source's readings of the fixture.
	for _, name := range names {
		fig, key, _ := lookupFigure(name)
		var ix *index
		for _, st := range f.t.indexes {
			if fig.appliesTo(st.ix.Method) && !st.ix.Partitioned { // a parent has no figures of its own
				ix = st
			}
		}
		r := &readings{ix: ix.ix, structure: ix.structure, recall: ix.recall, latency: ix.latency, stats: f.stats.indexes[ix.ix.OID], now: f.now,
			filtered: ix.filtered}
		if fig.source == fromFiltered && ix.filtered == nil {
			r.filtered = f.t.indexes[16401].filtered
		}
		if fig.name == "pgvector_index_build_progress_ratio" {
			r.stats.buildProgress = new(0.5)
		}
		if _, ok := fig.value(r, key); !ok {
			t.Errorf("Measurer figure %s has no value from the fixture's %s readings", name, fig.source)
		}
	}
	if !strings.Contains(strings.Join(names, " "), "pgvector_hnsw_heap_tids:dead") {
		t.Error("runbooks name pgvector_hnsw_heap_tids:dead")
	}
}

// TestProbeLatencyIsAlsoNative: the latency histogram carries native buckets beside the
// classic ones, holding every observation.
func TestProbeLatencyIsAlsoNative(t *testing.T) {
	for _, mf := range newDetailFixture(t).gather(t) {
		if mf.GetName() != "pgvector_probe_latency_seconds" {
			continue
		}
		for _, m := range mf.GetMetric() {
			h := m.GetHistogram()
			var total, count int64
			for _, d := range h.GetPositiveDelta() { // deltas of the bucket counts
				count += d
				total += count
			}
			if h.GetSchema() != nativeSchema || len(h.GetPositiveSpan()) == 0 || uint64(total)+h.GetZeroCount() != h.GetSampleCount() ||
				h.GetSampleCount() != 10 || len(h.GetBucket()) != len(config.DetailLatencyBuckets()) {
				t.Errorf("latency histogram: schema %d, %d spans, %d in native buckets of %d, %d classic buckets",
					h.GetSchema(), len(h.GetPositiveSpan()), total, h.GetSampleCount(), len(h.GetBucket()))
			}
		}
		return
	}
	t.Fatal("no pgvector_probe_latency_seconds")
}

// TestFaultKindsOnceSeen: a healthy index has no fault series; a kind appears when a scan finds
// it, stays at 0 after it cleared, and goes with a rebuild.
func TestFaultKindsOnceSeen(t *testing.T) {
	f := newFixture(t)
	st := f.t.indexes[16401]
	faults := func() map[string]float64 {
		out := map[string]float64{}
		for _, mf := range f.gather(t) {
			if mf.GetName() != "pgvector_index_structural_faults" {
				continue
			}
			for _, m := range mf.GetMetric() {
				for _, lp := range m.GetLabel() {
					if lp.GetName() == "kind" {
						out[lp.GetValue()] = m.GetGauge().GetValue()
					}
				}
			}
		}
		return out
	}
	if got := faults(); len(got) != 0 {
		t.Fatalf("healthy index publishes fault kinds %v", got)
	}
	// A scan that finds a fault, as indexCheck applies it.
	bad := *st.structure.hnsw
	bad.Faults = map[string]int64{hnsw.FaultDanglingNeighbor: 3}
	st.structure = &structure{hnsw: &bad, rows: st.structure.rows}
	st.faultKinds = map[string]bool{}
	for _, k := range faultKindsOf(st.structure) {
		st.faultKinds[k] = true
	}
	if got := faults(); len(got) != 1 || got[hnsw.FaultDanglingNeighbor] != 3 {
		t.Errorf("after a scan finding 3 dangling neighbours: %v", got)
	}
	clean := bad
	clean.Faults = map[string]int64{}
	st.structure = &structure{hnsw: &clean, rows: st.structure.rows}
	if got := faults(); len(got) != 1 || got[hnsw.FaultDanglingNeighbor] != 0 {
		t.Errorf("after a clean scan: %v, want the seen kind at 0", got)
	}
	st.faultKinds = nil // what discovery does when the relfilenode changes
	if got := faults(); len(got) != 0 {
		t.Errorf("after a rebuild: %v, want none", got)
	}
}
