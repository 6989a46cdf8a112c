package exporter

import (
	"log/slog"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/targets"
)

// target is the exporter's state of one configured database: what discovery found and the
// latest result of every check. mu guards everything below it.
type target struct {
	*targets.Target
	logger *slog.Logger
	slots  *slots // bounds background checks on this target

	mu         sync.Mutex
	indexes    map[uint32]*index // by index OID
	discovered bool
	up         *bool      // nil until the first scrape
	reader     pageReader // how pages are read (detectPageReader)
	readerSeen bool
	collectors map[string]*collectorStat
	custom     map[string]*customResult // by metric name
	customJobs map[string]*job
	// filteredJobs are the schedules of the declared filtered queries, by name.
	filteredJobs map[string]*job
	discErr      string            // last discovery error, for logging changes only
	lastErr      map[string]string // last error per check and index, for logging changes only
	extension    *extension        // installed pgvector, last read (version.go)
	replica      replica           // the standby's lag and where checks read (reads.go); own lock
	// elsewhere are the watched indexes (schema.name) another shard measures, from the last
	// discovery: their filtered queries are that shard's to run.
	elsewhere map[string]bool
	// requestsSeen are the check requests for the whole target this shard has acted on
	// (requests.go); runTarget's goroutine alone uses it.
	requestsSeen map[int64]bool
	budget       scanBudget // the page budget of structure scans (budget.go); own lock
}

// index is one watched index with its latest check results.
type index struct {
	ix        catalog.Index
	build     buildInfo
	asBuilt   *asBuilt // baseline of the current build, nil until first measured
	structure *structure
	recall    *recallResult
	latency   *histogram
	probeErrs uint64
	drift     *float64
	// filtered are the latest results of the declared filtered queries of the index, by name.
	filtered map[string]*filteredResult
	// faultKinds are the structural fault kinds a scan of the current build has found.
	faultKinds map[string]bool
	jobs       map[string]*job
}

// job returns the schedule of kind, creating it with a first run spread over a quarter of
// interval so the checks of many indexes do not start together.
func (ix *index) job(kind string, now time.Time, interval time.Duration) *job {
	j, ok := ix.jobs[kind]
	if !ok {
		j = &job{next: now.Add(jitter(interval / 4))}
		ix.jobs[kind] = j
	}
	return j
}

func (t *target) customJob(name string, now time.Time, interval time.Duration) *job {
	if t.customJobs == nil {
		t.customJobs = map[string]*job{}
	}
	j, ok := t.customJobs[name]
	if !ok {
		j = &job{next: now.Add(jitter(interval / 4))}
		t.customJobs[name] = j
	}
	return j
}

// collectorStat is the self-monitoring state of one collector on one target.
type collectorStat struct {
	ok          map[uint32]bool // last outcome per index OID (0 for target-wide collectors)
	duration    time.Duration
	lastSuccess time.Time
}

// record notes a run of collector for index oid (0 for target-wide ones). t.mu must be held.
func (t *target) record(collector string, oid uint32, start time.Time, err error) {
	cs, ok := t.collectors[collector]
	if !ok {
		cs = &collectorStat{ok: map[uint32]bool{}}
		t.collectors[collector] = cs
	}
	cs.duration = time.Since(start)
	cs.ok[oid] = err == nil
	if err == nil {
		cs.lastSuccess = time.Now()
	}
}

// success is 1 when the last run on every index succeeded.
func (cs *collectorStat) success() float64 {
	for _, ok := range cs.ok {
		if !ok {
			return 0
		}
	}
	return 1
}

// histogram accumulates observations for a constant histogram metric that carries both
// classic buckets (for Prometheus without native histograms, and for the text format) and
// native exponential buckets (for Prometheus that ingests them).
type histogram struct {
	bounds []float64 // classic upper bounds, sorted; may be empty
	counts []uint64  // per classic bucket, not cumulative
	count  uint64
	sum    float64
	max    float64
	native map[int]int64 // native bucket index -> observations
	zero   uint64        // observations at or below nativeZeroThreshold
}

// Native histogram layout: schema 3 is a growth factor of 2^(1/8) ≈ 1.09 per bucket, what
// client_golang chooses for NativeHistogramBucketFactor 1.1. The probe observes few values,
// so the number of populated buckets stays small.
const (
	nativeSchema        = 3
	nativeZeroThreshold = prometheus.DefNativeHistogramZeroThreshold
)

// newHistogram returns an empty histogram with the given classic upper bounds.
func newHistogram(bounds []float64) *histogram {
	b := slices.Clone(bounds)
	slices.Sort(b)
	return &histogram{bounds: b, counts: make([]uint64, len(b)), native: map[int]int64{}}
}

func (h *histogram) observe(v float64) {
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.count++
	h.sum += v
	h.max = max(h.max, v)
	if v <= nativeZeroThreshold {
		h.zero++
		return
	}
	if h.native == nil {
		h.native = map[int]int64{}
	}
	h.native[nativeIndex(v)]++
}

// nativeIndex is the native bucket of v > 0: bucket i holds (2^((i-1)/8), 2^(i/8)]. Frexp
// keeps exact powers of two on their bucket's upper bound.
func nativeIndex(v float64) int {
	frac, exp := math.Frexp(v) // v = frac * 2^exp, frac in [0.5, 1)
	const perOctave = 1 << nativeSchema
	return int(math.Ceil(math.Log2(frac)*perOctave)) + exp*perOctave
}

// cumulative returns the classic buckets as Prometheus wants them: upper bound -> count of
// values <= it.
func (h *histogram) cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(h.bounds))
	var acc uint64
	for i, b := range h.bounds {
		acc += h.counts[i]
		out[b] = acc
	}
	return out
}

// metric returns the histogram as one constant metric with classic and native buckets.
func (h *histogram) metric(desc *prometheus.Desc, labels ...string) prometheus.Metric {
	native, err := prometheus.NewConstNativeHistogram(desc, h.count, h.sum, h.native, nil, h.zero,
		nativeSchema, nativeZeroThreshold, time.Time{}, labels...)
	if err != nil {
		return prometheus.NewInvalidMetric(desc, err)
	}
	var acc uint64
	buckets := make([]*dto.Bucket, len(h.bounds))
	for i, b := range h.bounds {
		acc += h.counts[i]
		buckets[i] = &dto.Bucket{UpperBound: new(b), CumulativeCount: new(acc)}
	}
	return classicAndNative{Metric: native, buckets: buckets}
}

// classicAndNative adds classic buckets to a constant native histogram, as client_golang's own
// histograms do when both kinds are configured.
type classicAndNative struct {
	prometheus.Metric
	buckets []*dto.Bucket
}

func (m classicAndNative) Write(out *dto.Metric) error {
	if err := m.Metric.Write(out); err != nil {
		return err
	}
	out.Histogram.Bucket = m.buckets
	// No created timestamp: the histogram starts with the exporter's index state, not at a
	// moment worth exposing.
	out.Histogram.CreatedTimestamp = nil
	return nil
}
