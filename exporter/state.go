package exporter

import (
	"log/slog"
	"sync"
	"time"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/targets"
)

// target is the exporter's state of one configured database: what discovery found and the
// latest result of every check. mu guards everything below it.
type target struct {
	*targets.Target
	logger *slog.Logger
	sem    chan struct{} // bounds background checks on this target

	mu         sync.Mutex
	indexes    map[uint32]*index // by index OID
	discovered bool
	up         *bool  // nil until the first scrape
	reader     string // page reading function, "" when pages cannot be read
	readerWhy  string // why pages cannot be read
	readerSeen bool
	collectors map[string]*collectorStat
	custom     map[string]*customResult // by metric name
	customJobs map[string]*job
	discErr    string            // last discovery error, for logging changes only
	lastErr    map[string]string // last error per check and index, for logging changes only
	extension  *extension        // installed pgvector, last read (version.go)
}

// index is one watched index with its latest check results.
type index struct {
	ix        catalog.Index
	build     buildInfo
	structure *structure
	recall    *recallResult
	latency   histogram
	probeErrs uint64
	drift     *float64
	jobs      map[string]*job
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

// histogram accumulates observations for a constant histogram metric.
type histogram struct {
	bounds []float64 // upper bounds, probeBuckets
	counts []uint64  // per bucket, not cumulative
	count  uint64
	sum    float64
}

func (h *histogram) observe(v float64) {
	if h.bounds == nil {
		h.bounds = probeBuckets()
		h.counts = make([]uint64, len(h.bounds))
	}
	for i, b := range h.bounds {
		if v <= b {
			h.counts[i]++
			break
		}
	}
	h.count++
	h.sum += v
}

// cumulative returns the buckets as Prometheus wants them: upper bound -> count of values <= it.
func (h *histogram) cumulative() map[float64]uint64 {
	out := make(map[float64]uint64, len(h.bounds))
	var acc uint64
	for i, b := range h.bounds {
		acc += h.counts[i]
		out[b] = acc
	}
	return out
}
