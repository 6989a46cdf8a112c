package main

import (
	"github.com/vectorheal/vectorheal/internal/benchdoc"
	"os"
	"strings"
	"testing"
	"time"
)

// exposition is a shard's /metrics cut down to what the benchmark reads: two indexes, one
// probed (a histogram with two classic bounds) and scanned, one only discovered, and series
// without index labels.
const exposition = `# TYPE vectorheal_shard_info gauge
vectorheal_shard_info{shard="1",total_shards="3"} 1
# TYPE vectorheal_collector_duration_seconds gauge
vectorheal_collector_duration_seconds{collector="structure",target="fleet_00"} 0.25
vectorheal_collector_duration_seconds{collector="structure",target="fleet_01"} 1.5
# TYPE pgvector_index_info gauge
pgvector_index_info{datname="fleet_00",indexrelname="items_000_hnsw",method="hnsw",relname="items_000",schemaname="public",target="fleet_00"} 1
pgvector_index_info{datname="fleet_01",indexrelname="items_001_ivfflat",method="ivfflat",relname="items_001",schemaname="public",target="fleet_01"} 1
# TYPE pgvector_hnsw_connectivity_ratio gauge
pgvector_hnsw_connectivity_ratio{datname="fleet_00",indexrelname="items_000_hnsw",relname="items_000",schemaname="public",target="fleet_00"} 0
# TYPE pgvector_probe_latency_seconds histogram
pgvector_probe_latency_seconds_bucket{datname="fleet_00",indexrelname="items_000_hnsw",relname="items_000",schemaname="public",target="fleet_00",le="0.001"} 4
pgvector_probe_latency_seconds_bucket{datname="fleet_00",indexrelname="items_000_hnsw",relname="items_000",schemaname="public",target="fleet_00",le="0.01"} 10
pgvector_probe_latency_seconds_bucket{datname="fleet_00",indexrelname="items_000_hnsw",relname="items_000",schemaname="public",target="fleet_00",le="+Inf"} 10
pgvector_probe_latency_seconds_sum{datname="fleet_00",indexrelname="items_000_hnsw",relname="items_000",schemaname="public",target="fleet_00"} 0.02
pgvector_probe_latency_seconds_count{datname="fleet_00",indexrelname="items_000_hnsw",relname="items_000",schemaname="public",target="fleet_00"} 10
# TYPE pgvector_vacuum_progress_ratio gauge
pgvector_vacuum_progress_ratio{datname="fleet_00",relname="items_000",schemaname="public",target="fleet_00"} 0.5
`

func TestParseScrape(t *testing.T) {
	s, err := parseScrape(strings.NewReader(exposition))
	if err != nil {
		t.Fatal(err)
	}
	hnsw := indexKey{"fleet_00", "fleet_00", "public", "items_000_hnsw"}
	ivf := indexKey{"fleet_01", "fleet_01", "public", "items_001_ivfflat"}
	// info + connectivity + 3 buckets, _sum, _count.
	want := map[indexKey]indexObs{
		hnsw: {method: "hnsw", series: 7, probes: 10, structure: true},
		ivf:  {method: "ivfflat", series: 1},
	}
	if len(s.indexes) != len(want) {
		t.Fatalf("indexes %v, want %v", s.indexes, want)
	}
	for k, w := range want {
		if got := s.indexes[k]; got != w {
			t.Errorf("%s: %+v, want %+v", k, got, w)
		}
	}
	if s.shard != "1" {
		t.Errorf("shard %q, want 1", s.shard)
	}
	// 1 shard info, 2 durations, 2 infos, 1 connectivity, 5 histogram lines, 1 vacuum progress.
	if s.series != 12 {
		t.Errorf("series %d, want 12", s.series)
	}
	if got := s.slowest["structure"]; got != 1500*time.Millisecond {
		t.Errorf("slowest structure run %s, want 1.5s", got)
	}
}

// poll builds a scrape at offset seconds from t0 of the given indexes: probes counts, every
// index scanned.
func poll(t0 time.Time, offset int, probes map[indexKey]float64) scrape {
	s := scrape{at: t0.Add(time.Duration(offset) * time.Second), indexes: map[indexKey]indexObs{}}
	for k, n := range probes {
		s.indexes[k] = indexObs{method: "hnsw", series: 3, probes: n, structure: true}
	}
	return s
}

func TestTrackDatesProbesByThePollBefore(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := indexKey{"a", "a", "public", "i"}
	tr := newTrack(t0)
	for _, p := range []struct {
		offset int
		probes float64
	}{{5, 0}, {10, 10}, {15, 10}, {20, 10}, {30, 20}, {35, 20}} {
		tr.observe(poll(t0, p.offset, map[indexKey]float64{k: p.probes}))
	}
	it := tr.indexes[k]
	if got := it.probeSeen.Sub(t0); got != 10*time.Second {
		t.Errorf("first probe seen at +%s, want +10s", got)
	}
	// The probe seen at +30 ran after the poll at +20.
	if got := it.measuredAt.Sub(t0); got != 20*time.Second {
		t.Errorf("latest probe dated +%s, want +20s", got)
	}
	// The first probe is dated +5 (the poll before +10), the second +20.
	if it.maxGap != 15*time.Second {
		t.Errorf("longest gap %s, want 15s", it.maxGap)
	}
	if ages := tr.ages(t0.Add(35 * time.Second)); len(ages) != 1 || ages[0] != 15*time.Second {
		t.Errorf("ages at +35: %v, want [15s]", ages)
	}
	unprobed := newTrack(t0)
	unprobed.observe(poll(t0, 5, map[indexKey]float64{k: 0}))
	if ages := unprobed.ages(t0.Add(40 * time.Second)); ages[0] != 40*time.Second {
		t.Errorf("an index never probed is %s old at +40, want 40s (since the start)", ages[0])
	}
}

func TestCoverageFindsMissingDuplicateAndLateIndexes(t *testing.T) {
	t0 := time.Unix(1000, 0)
	key := func(i string) indexKey { return indexKey{"db", "db", "public", i} }
	interval := 60 * time.Second
	shard0, shard1, shard2 := newTrack(t0), newTrack(t0), newTrack(t0)
	// shard 0 measures a at +10; shard 1 measures b at +70, later than one interval.
	shard0.observe(poll(t0, 10, map[indexKey]float64{key("a"): 10}))
	shard1.observe(poll(t0, 70, map[indexKey]float64{key("b"): 10}))
	// c is published twice, measured by neither yet; stray is not in the fleet.
	shard1.observe(poll(t0, 75, map[indexKey]float64{key("b"): 10, key("c"): 0}))
	shard2.observe(poll(t0, 75, map[indexKey]float64{key("c"): 0, key("stray"): 0}))

	c := computeCoverage([]indexKey{key("a"), key("b"), key("c"), key("d")}, []*track{shard0, shard1, shard2}, interval)
	if c.expected != 4 || c.byOne != 2 {
		t.Errorf("expected %d, by one shard %d; want 4 and 2", c.expected, c.byOne)
	}
	if len(c.missing) != 1 || c.missing[0] != key("d") {
		t.Errorf("missing %v, want [d]", c.missing)
	}
	if len(c.duplicates) != 1 || c.duplicates[0] != key("c") {
		t.Errorf("duplicates %v, want [c]", c.duplicates)
	}
	if len(c.unexpected) != 1 || c.unexpected[0] != key("stray") {
		t.Errorf("unexpected %v, want [stray]", c.unexpected)
	}
	if c.measured != 2 || c.withinInterval != 1 {
		t.Errorf("measured %d, within one interval %d; want 2 and 1", c.measured, c.withinInterval)
	}
	if got := lastOf(c.firstMeasured); got != 70*time.Second {
		t.Errorf("slowest first measurement %s, want 70s", got)
	}
}

func TestCoverageNeedsBothChecks(t *testing.T) {
	t0 := time.Unix(1000, 0)
	k := indexKey{"db", "db", "public", "i"}
	tr := newTrack(t0)
	tr.observe(scrape{at: t0.Add(5 * time.Second), indexes: map[indexKey]indexObs{k: {probes: 10}}})
	if c := computeCoverage([]indexKey{k}, []*track{tr}, time.Minute); c.measured != 0 {
		t.Errorf("probed but never scanned counts as measured")
	}
	tr.observe(scrape{at: t0.Add(9 * time.Second), indexes: map[indexKey]indexObs{k: {probes: 10, structure: true}}})
	c := computeCoverage([]indexKey{k}, []*track{tr}, time.Minute)
	if c.measured != 1 || c.firstMeasured[0] != 9*time.Second {
		t.Errorf("measured %d at %v, want 1 at 9s (when the later check was seen)", c.measured, c.firstMeasured)
	}
}

func TestPlanSpreadsLargeIndexesAndMixesMethods(t *testing.T) {
	o := options{databases: 10, indexes: 100, large: 3, largeMin: 20000, largeMax: 50000, smallMin: 2000, smallMax: 3000, ivfflatShare: 0.3}
	specs := plan(o)
	if len(specs) != 100 {
		t.Fatalf("%d indexes, want 100", len(specs))
	}
	seen := map[indexKey]bool{}
	dbs := map[string]int{}
	var large []indexSpec
	ivf := 0
	for _, s := range specs {
		if seen[s.key()] {
			t.Errorf("%s twice", s.key())
		}
		seen[s.key()] = true
		dbs[s.db]++
		if s.large {
			large = append(large, s)
		} else if s.rows < o.smallMin || s.rows > o.smallMax {
			t.Errorf("%s: %d rows, outside the small range", s.key(), s.rows)
		}
		if s.method == "ivfflat" {
			ivf++
		}
	}
	if len(dbs) != 10 {
		t.Errorf("%d databases, want 10", len(dbs))
	}
	if len(large) != 3 || large[0].rows != 20000 || large[2].rows != 50000 || large[0].db == large[1].db {
		t.Errorf("large indexes %+v: want 3 in different databases, 20000 to 50000 rows", large)
	}
	if ivf < 25 || ivf > 35 {
		t.Errorf("%d IVFFlat indexes of 100, want about 30", ivf)
	}
}

func TestProcFields(t *testing.T) {
	status := []byte("Name:\tvectorheal\nVmHWM:\t   51200 kB\nVmRSS:\t   40960 kB\nRssAnon:\t   20480 kB\nRssFile:\t   20000 kB\nRssShmem:\t       0 kB\nThreads:\t9\n")
	rss, anon, file, err := parseRSS(status)
	if err != nil || rss != 40960*1024 || anon != 20480*1024 || file != 20000*1024 {
		t.Errorf("RSS %d, anon %d, file %d, %v; want %d, %d, %d", rss, anon, file, err, 40960*1024, 20480*1024, 20000*1024)
	}
	if _, _, _, err := parseRSS([]byte("Name:\tvectorheal\nVmRSS:\t   40960 kB\n")); err == nil || err.Error() != "no RssAnon, RssFile in /proc status" {
		t.Errorf("status without RssAnon and RssFile: %v", err)
	}
	// The command name may hold spaces and parentheses.
	stat := []byte("4242 (vector heal (x)) S 1 4242 4242 0 -1 4194304 100 0 0 0 250 50 7 3 20 0 9 0 100 0 0")
	if got, err := parseCPU(stat); err != nil || got != 3*time.Second {
		t.Errorf("CPU %s, %v; want 3s (300 ticks)", got, err)
	}
}

// TestDocsHoldTheMarkers: the document -write-docs updates by default has this tool's block.
func TestDocsHoldTheMarkers(t *testing.T) {
	data, err := os.ReadFile("../../docs/BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (benchdoc.Markers{Begin: docsBegin, End: docsEnd}).Replace(string(data), "x\n"); err != nil {
		t.Error(err)
	}
}
