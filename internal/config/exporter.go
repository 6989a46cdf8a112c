package config

import (
	"math"
	"regexp"
	"strings"
	"time"
)

// Exporter sets what the exporter measures and how much it may spend doing so.
type Exporter struct {
	// Structure is the HNSW/IVFFlat page scan. Default every 5m, timeout 2m.
	Structure StructureCheck `yaml:"structure"`
	// Recall is the recall probe. Default every 5m, timeout 1m.
	Recall RecallCheck `yaml:"recall"`
	// Drift is the distribution-shift check. Default every 10m, timeout 1m.
	Drift DriftCheck `yaml:"drift"`
	// StatisticsTimeout bounds the cheap statistics queries run on every scrape. Default 5s.
	StatisticsTimeout time.Duration `yaml:"statistics_timeout"`
	// MaxConcurrentChecks caps background checks running at once over all targets. Default 4.
	MaxConcurrentChecks int `yaml:"max_concurrent_checks"`
	// PageBatch is how many index pages one query fetches. Default 64.
	PageBatch int `yaml:"page_batch"`
	// DiscoveryInterval is how often each target's vector indexes are listed again. Default 1m.
	DiscoveryInterval time.Duration `yaml:"discovery_interval"`
	// XminHorizonMinAge is how long a session or prepared transaction must have held the
	// xmin horizon before pgvector_xmin_horizon_age_* names it: younger ones are ordinary work,
	// and naming each would give every scrape of a busy database a new pid label. Default 1m.
	XminHorizonMinAge time.Duration `yaml:"xmin_horizon_min_age"`
	// CustomMetrics are user SQL metrics.
	CustomMetrics []CustomMetric `yaml:"custom_metrics"`
	// FilteredQueries are representative filtered searches, measured for short results,
	// recall and latency (filtered.go).
	FilteredQueries []FilteredQuery `yaml:"filtered_queries"`
	// PageReaderSchema is the schema of each target database where "vectorheal migrate"
	// installs the page-reading functions and where the exporter looks for them. It must differ
	// from state_store.schema: the state store's owner and the page readers' grants are not the
	// same roles. Default DefaultPageReaderSchema.
	PageReaderSchema string `yaml:"page_reader_schema"`
	// DetailSeries publishes every series of every figure: the per-layer HNSW series, the
	// figures no rule, dashboard or repair reads by default (scan diagnostics, baselines the
	// Measurer reads from the state store, statistics kept for troubleshooting), the flags
	// that are also published while healthy, and, when recall.latency_buckets is unset,
	// DetailLatencyBuckets. Off by default, so that a healthy index costs a bounded number of
	// series (docs/metrics.md, "Series per index"); the Measurer and vectorheal check read
	// every figure either way.
	DetailSeries bool `yaml:"detail_series"`
}

// DefaultPageReaderSchema is the default of exporter.page_reader_schema.
const DefaultPageReaderSchema = "vectorheal_pages"

// StructureCheck reads the pages of each vector index and analyses its structure.
type StructureCheck struct {
	Check `yaml:",inline"`
	// MaxPagesPerSecond caps the index pages one scan fetches per second on average, so that a
	// scan of a large index takes a bounded share of the server while the application queries
	// it; the timeout must then cover the index's pages at that rate. Default 0: no cap.
	MaxPagesPerSecond float64 `yaml:"max_pages_per_second"`
	// Adaptive makes MaxPagesPerSecond a ceiling: the budget halves while the application's
	// latency (the mean plus twice the standard deviation of the execution times of its
	// statements that use a vector distance operator, from pg_stat_statements, vectorheal's
	// probes left out) is above its level just before the scan times LatencyFactor, not below MinPagesPerSecond, and grows back by a tenth of
	// the range per calm AdjustInterval. Without pg_stat_statements, or with too few statements
	// to judge, the scan keeps MaxPagesPerSecond. It needs MaxPagesPerSecond above 0. Default
	// false: the ceiling has no default (0 is no cap), and a scan that backs off takes longer,
	// so the timeout must be chosen with it.
	Adaptive bool `yaml:"adaptive"`
	// MinPagesPerSecond is the floor of the adaptive budget. Default a tenth of
	// MaxPagesPerSecond (0).
	MinPagesPerSecond float64 `yaml:"min_pages_per_second"`
	// LatencyFactor is how far above its level before the scan the application's latency may
	// rise before the adaptive budget halves. Above 1. Default 2: the latency is a tail (mean
	// plus twice the standard deviation of a window's statements), which moves more from window
	// to window than a mean, and a factor nearer 1 would halve the budget on noise.
	LatencyFactor float64 `yaml:"latency_factor"`
	// AdjustInterval is how often the adaptive budget is judged again, and how long the
	// application's latency is measured before the scan starts. Default 5s.
	AdjustInterval time.Duration `yaml:"adjust_interval"`
}

// Floor is the lowest rate of the adaptive budget: MinPagesPerSecond, or a tenth of
// MaxPagesPerSecond when it is 0.
func (s StructureCheck) Floor() float64 {
	if s.MinPagesPerSecond > 0 {
		return s.MinPagesPerSecond
	}
	return s.MaxPagesPerSecond / 10
}

// RecallCheck measures recall@k of the index against an exact search.
type RecallCheck struct {
	Check `yaml:",inline"`
	// Queries is how many query vectors are sampled from the table per run. Default 10.
	Queries int `yaml:"queries"`
	// K is the number of neighbours compared. Default 10.
	K int `yaml:"k"`
	// NewestShare is the share of the query vectors taken from the most recently written rows
	// among the sampled ones; the rest are drawn uniformly. Applications mostly ask about
	// recent data, and data that drifts into a region the index was not built for is recent
	// and, at first, a small share of the table: drawn uniformly, its queries would be too few
	// to move the measured recall until the region is large. Default 0.5 (nil); 0 samples
	// uniformly.
	NewestShare *float64 `yaml:"newest_share"`
	// LatencyBuckets are the upper bounds, in seconds, of the classic buckets of
	// pgvector_probe_latency_seconds; each is one series per index. Native buckets are always
	// offered besides them, and a Prometheus that ingests native histograms needs no classic
	// bucket. Default none (an empty list), or DetailLatencyBuckets with detail_series; for a
	// Prometheus without native histograms SmallLatencyBuckets is the documented small set.
	LatencyBuckets []float64 `yaml:"latency_buckets"`
}

// DefaultNewestShare is the default of exporter.recall.newest_share.
const DefaultNewestShare = 0.5

// Newest is how many of the Queries query vectors come from the most recently written rows.
func (r RecallCheck) Newest() int {
	share := DefaultNewestShare
	if r.NewestShare != nil {
		share = *r.NewestShare
	}
	return int(math.Round(share * float64(r.Queries)))
}

// DetailLatencyBuckets are the classic buckets of the probe latency with detail_series and
// recall.latency_buckets unset: 0.5ms to 5s, 13 bounds.
func DetailLatencyBuckets() []float64 {
	return []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5}
}

// SmallLatencyBuckets are the classic buckets docs/configuration.md suggests for a Prometheus
// that does not ingest native histograms: a decade each from 1ms to 1s, four series per
// index, enough for index:pgvector_probe_latency_seconds:p99_15m to tell milliseconds from
// seconds.
func SmallLatencyBuckets() []float64 {
	return []float64{0.001, 0.01, 0.1, 1}
}

// DriftCheck compares vectors written since the build with the build-time data.
type DriftCheck struct {
	Check `yaml:",inline"`
	// SampleSize is how many vectors each side of the comparison samples. Default 200.
	SampleSize int `yaml:"sample_size"`
}

// CustomMetric is a gauge or counter read by user SQL, for systems that keep their own figures.
type CustomMetric struct {
	// Name of the metric; must be a valid Prometheus metric name. Required.
	Name string `yaml:"name"`
	// Help text. Required.
	Help string `yaml:"help"`
	// Type is gauge (default) or counter.
	Type string `yaml:"type"`
	// SQL returning one row per series. Required. Run read-only with the timeout below.
	SQL string `yaml:"sql"`
	// ValueColumn names the numeric column holding the value. Default "value".
	ValueColumn string `yaml:"value_column"`
	// LabelColumns name text columns that become labels.
	LabelColumns []string `yaml:"label_columns"`
	// Targets limits the metric to these target names; empty means every target.
	Targets []string `yaml:"targets"`
	// Interval between runs. Default 1m.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one run. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// reservedMetricPrefixes start the names of the metrics vectorheal publishes itself: a user
// metric under one of them would clash with the exporter's and be left out at run time.
var reservedMetricPrefixes = []string{"pgvector_", "vectorheal_"}

var (
	metricNameRE = regexp.MustCompile(`^[a-zA-Z_:][a-zA-Z0-9_:]*$`)
	labelNameRE  = regexp.MustCompile(`^[a-zA-Z_][a-zA-Z0-9_]*$`)
)

func (e *Exporter) setDefaults() {
	defCheck(&e.Structure.Check, 5*time.Minute, 2*time.Minute)
	if e.Structure.LatencyFactor == 0 {
		e.Structure.LatencyFactor = 2
	}
	defDur(&e.Structure.AdjustInterval, 5*time.Second)
	defCheck(&e.Recall.Check, 5*time.Minute, time.Minute)
	defCheck(&e.Drift.Check, 10*time.Minute, time.Minute)
	defInt(&e.Recall.Queries, 10)
	defInt(&e.Recall.K, 10)
	if e.Recall.LatencyBuckets == nil { // unset; [] keeps no classic buckets either way
		e.Recall.LatencyBuckets = []float64{}
		if e.DetailSeries {
			e.Recall.LatencyBuckets = DetailLatencyBuckets()
		}
	}
	defInt(&e.Drift.SampleSize, 200)
	defDur(&e.StatisticsTimeout, 5*time.Second)
	defInt(&e.MaxConcurrentChecks, 4)
	defInt(&e.PageBatch, 64)
	if e.PageReaderSchema == "" {
		e.PageReaderSchema = DefaultPageReaderSchema
	}
	defDur(&e.DiscoveryInterval, time.Minute)
	defDur(&e.XminHorizonMinAge, time.Minute)
	for i := range e.CustomMetrics {
		m := &e.CustomMetrics[i]
		if m.Type == "" {
			m.Type = "gauge"
		}
		if m.ValueColumn == "" {
			m.ValueColumn = "value"
		}
		defDur(&m.Interval, time.Minute)
		defDur(&m.Timeout, 10*time.Second)
	}
	for i := range e.FilteredQueries {
		e.FilteredQueries[i].setDefaults()
	}
}

func (e *Exporter) validate(v *validator, targets map[string]bool) {
	e.Structure.validate(v, "exporter.structure")
	if r := e.Structure.MaxPagesPerSecond; math.IsNaN(r) || math.IsInf(r, 0) || r < 0 {
		v.errorf("exporter.structure.max_pages_per_second", "%g is not a number of pages per second (0 or more; 0 is no cap)", r)
	}
	e.Structure.validateAdaptive(v, "exporter.structure")
	e.Recall.validate(v, "exporter.recall")
	e.Drift.validate(v, "exporter.drift")
	v.positive("exporter.recall.queries", e.Recall.Queries)
	v.positive("exporter.recall.k", e.Recall.K)
	if s := e.Recall.NewestShare; s != nil && (math.IsNaN(*s) || *s < 0 || *s > 1) {
		v.errorf("exporter.recall.newest_share", "%g is not a share between 0 and 1", *s)
	}
	if e.Recall.K > 1000 {
		v.errorf("exporter.recall.k", "%d is above the limit of 1000", e.Recall.K)
	}
	for i, b := range e.Recall.LatencyBuckets {
		p := v.index("exporter.recall.latency_buckets", i)
		switch {
		case math.IsNaN(b) || math.IsInf(b, 0) || b <= 0:
			v.errorf(p, "%g is not a positive number of seconds", b)
		case i > 0 && b <= e.Recall.LatencyBuckets[i-1]:
			v.errorf(p, "%g is not above the previous bound %g (bounds must increase)", b, e.Recall.LatencyBuckets[i-1])
		}
	}
	v.positive("exporter.drift.sample_size", e.Drift.SampleSize)
	if e.XminHorizonMinAge < time.Second {
		v.errorf("exporter.xmin_horizon_min_age", "%s is below 1s: every short transaction would be named, a new series each", e.XminHorizonMinAge)
	}
	v.positive("exporter.max_concurrent_checks", e.MaxConcurrentChecks)
	v.positive("exporter.page_batch", e.PageBatch)
	validateFilteredQueries(v, e.FilteredQueries, targets)
	seen := map[string]bool{}
	for i, m := range e.CustomMetrics {
		m.validate(v, v.index("exporter.custom_metrics", i), seen, targets)
	}
}

// validate checks one user SQL metric at path p; seen holds the names of the metrics before
// it.
func (m CustomMetric) validate(v *validator, p string, seen, targets map[string]bool) {
	v.uniqueName(p+".name", m.Name, metricNameRE, "a valid Prometheus metric name", seen)
	if m.Help == "" {
		v.errorf(p+".help", "must be set")
	}
	if m.SQL == "" {
		v.errorf(p+".sql", "must be set")
	}
	if m.Type != "gauge" && m.Type != "counter" {
		v.errorf(p+".type", "must be gauge or counter, not %q", m.Type)
	}
	for j, l := range m.LabelColumns {
		if !labelNameRE.MatchString(l) {
			v.errorf(v.index(p+".label_columns", j), "%q is not a valid label name", l)
		}
	}
	for j, t := range m.Targets {
		if !targets[t] {
			v.errorf(v.index(p+".targets", j), "no target is named %q", t)
		}
	}
	if m.Timeout > m.Interval {
		v.errorf(p+".timeout", "%s is longer than the interval %s", m.Timeout, m.Interval)
	}
	for _, prefix := range reservedMetricPrefixes {
		if strings.HasPrefix(m.Name, prefix) {
			v.errorf(p+".name", "%q: names starting with %s are vectorheal's own metrics", m.Name, prefix)
		}
	}
	if !labelNameRE.MatchString(m.ValueColumn) {
		v.errorf(p+".value_column", "%q is not a column name a query can return as is", m.ValueColumn)
	}
	labels := map[string]bool{}
	for j, l := range m.LabelColumns {
		switch {
		case l == "target":
			v.errorf(v.index(p+".label_columns", j), "%q is the label vectorheal adds to every series itself", l)
		case labels[l]:
			v.errorf(v.index(p+".label_columns", j), "%q is given twice", l)
		case l == m.ValueColumn:
			v.errorf(v.index(p+".label_columns", j), "%q is the value column", l)
		}
		labels[l] = true
	}
}

// validateAdaptive checks the keys of the adaptive page budget; their values are checked even
// when adaptive is off, so that a mistake shows before it is turned on.
func (s StructureCheck) validateAdaptive(v *validator, p string) {
	maxRate := s.MaxPagesPerSecond
	if s.Adaptive && !(maxRate > 0) {
		v.errorf(p+".adaptive", "needs max_pages_per_second above 0: the adaptive budget moves between min_pages_per_second and that ceiling")
	}
	switch r := s.MinPagesPerSecond; {
	case math.IsNaN(r) || math.IsInf(r, 0) || r < 0:
		v.errorf(p+".min_pages_per_second", "%g is not a number of pages per second (above 0; 0 is a tenth of max_pages_per_second)", r)
	case r > 0 && maxRate > 0 && r > maxRate:
		v.errorf(p+".min_pages_per_second", "%g is above max_pages_per_second %g", r, maxRate)
	}
	if f := s.LatencyFactor; math.IsNaN(f) || f <= 1 || f > 100 {
		v.errorf(p+".latency_factor", "%g is not a factor above 1 and at most 100 (the budget backs off when the application's latency exceeds its level before the scan times this factor)", f)
	}
	switch d := s.AdjustInterval; {
	case d < 100*time.Millisecond:
		v.errorf(p+".adjust_interval", "%s is below 100ms: too few statements end in a window that short to judge their latency", d)
	case s.Adaptive && s.Timeout > 0 && d >= s.Timeout:
		v.errorf(p+".adjust_interval", "%s is not shorter than timeout %s: the budget would never be judged during a scan", d, s.Timeout)
	}
}
