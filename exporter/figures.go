package exporter

import (
	"math"
	"slices"
	"sort"
	"strconv"
	"time"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/ivfflat"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/internal/metricdoc"
)

// A figure is one per-index measurement, defined once here. /metrics (emitIndex), the
// Measurer (re-measurement for repair validation), the one-shot report of vectorheal check
// and docs/metrics.md are all read from this table, so they cannot disagree on a figure's
// name, labels or value.
//
// Adding a figure: add its entry to figureTable, compute what it reads where its source is
// measured (structure.go, probe.go, stats.go...) and, when it needs a definition, describe it
// in doc.go. Everything else follows.
type figure struct {
	name string
	help string
	typ  metricType
	// labels are the figure's labels after the index labels (withIndex).
	labels []string
	// unit is the base unit of the value: "seconds", "bytes", "ratio", or "" for a count.
	unit string
	// methods are the index methods the figure applies to; nil for every method.
	methods []string
	// source is what has to be read to measure it.
	source source
	// estimated is set when the value rests on a sample or on PostgreSQL's statistics
	// estimates rather than on an exact count.
	estimated bool
	// measured lists the figures the Measurer re-measures from this one: "" is the figure's
	// name alone (for a labelled figure, the sum of its values), any other entry is a value of
	// its single label, as in "pgvector_hnsw_heap_tids:dead". Empty when it cannot be
	// re-measured on the spot; unmeasured then says why.
	measured   []string
	unmeasured string
	// estimates name, by entry of measured, the documented estimate the Measurer offers
	// where that figure cannot be known on a target (it measures NaN): a validation without a
	// fallback of its own is judged on it, so a role without page or heap access degrades to
	// the estimate rather than to an error.
	estimates map[string]string
	// worst, when set, makes the Measurer's value of "" the worst of the figure's values
	// (math.Min or math.Max) rather than their sum: a ratio every labelled value must meet.
	worst func(a, b float64) float64
	// values returns the figure's samples for one index, nil when it is not known. A NaN
	// value is known to be unknowable (see exactHeap): it is not published, and the Measurer
	// returns it so that it meets no validation bound.
	values func(r *readings) []sample
	// hist returns the observations of a histogram figure (typ histogram; values is nil).
	hist func(r *readings) *histogram
	// byDefault, when set, is what /metrics publishes of the figure without
	// exporter.detail_series; nil publishes every sample. A healthy index must cost a bounded
	// number of series (docs/metrics.md, "Series per index"), so a sample no rule, dashboard
	// or repair needs by default is left out; it is still measured, and the Measurer and
	// vectorheal check read it.
	byDefault *publication
}

// publication says which samples of a figure /metrics publishes by default.
type publication struct {
	// when says it for docs/metrics.md.
	when string
	// keep reports whether sample s of the index of r is published.
	keep func(r *readings, s sample) bool
}

// detailOnly publishes the figure only with exporter.detail_series: per-layer series, scan
// diagnostics, baselines kept for the Measurer, statistics for troubleshooting.
func detailOnly() *publication {
	return &publication{when: "with `exporter.detail_series`", keep: func(*readings, sample) bool { return false }}
}

// onlyFor publishes the figure by default for indexes of method, whose rules read it.
func onlyFor(method string) *publication {
	return &publication{when: method + " only", keep: func(r *readings, _ sample) bool { return r.ix.Method == method }}
}

// atFault publishes a 0-or-1 flag by default only at fault (0): the healthy value is implied
// by another series (see where it is used), and a flag of 1 on every healthy index would be a
// series that says nothing.
func atFault(implied string) *publication {
	return &publication{when: "when 0 (" + implied + ")", keep: func(_ *readings, s sample) bool { return s.v == 0 }}
}

// publishes reports whether /metrics publishes sample s of the figure for the index of r.
func (f figure) publishes(r *readings, s sample, detail bool) bool {
	return detail || f.byDefault == nil || f.byDefault.keep(r, s)
}

// metricType is how a figure is exposed.
type metricType string

const (
	gaugeType     metricType = "gauge"
	counterType   metricType = "counter"
	histogramType metricType = "histogram"
)

// source is what a figure is read from; the Measurer reads exactly that.
type source string

const (
	fromCatalog   source = "catalog"   // the catalog row of the index (discovery)
	fromStructure source = "structure" // a scan of the index pages
	fromProbe     source = "probe"     // the recall probe
	fromStats     source = "stats"     // the cumulative statistics views
	fromHistory   source = "history"   // results kept over time by the exporter (builds, drift, counters)
	fromFiltered  source = "filtered"  // the declared filtered queries of the index (filtered.go)
)

// readsIndex says whether figures of src are read from the index itself (its pages, searches
// through it): those are read on a target's standby when it has one (reads.go), since its
// pages and rows are the primary's once replayed. Statistics are not maintained on a standby,
// and catalog rows and history are read where the exporter keeps them.
func (s source) readsIndex() bool {
	return s == fromStructure || s == fromProbe || s == fromFiltered
}

// readings are the results one index's figures are computed from. Each reader fills what it
// has: the exporter its latest background results, the Measurer one fresh source, the report
// one of each source without history.
type readings struct {
	ix        catalog.Index
	structure *structure    // nil when not scanned
	recall    *recallResult // nil when not probed
	latency   *histogram    // probe search latencies; nil or empty when none
	stats     *indexStats   // nil when not read
	// filtered are the results of the index's declared filtered queries, by query name.
	filtered map[string]*filteredResult

	// Kept over time by the exporter only.
	now        time.Time
	build      *buildInfo      // nil when the build is not tracked
	probeErrs  *uint64         // nil outside the exporter
	drift      *float64        // nil when not computed
	seenFaults map[string]bool // structural fault kinds seen since the build
	asBuilt    *asBuilt        // the build's baseline; nil until recorded
}

// sample is one value of a figure, with the values of its own labels.
type sample struct {
	labels []string
	v      float64
}

func one(v float64) []sample { return []sample{{v: v}} }

// byLabel returns one sample per label value: values[i] labelled labels[i].
func byLabel(labels []string, values ...float64) []sample {
	out := make([]sample, len(labels))
	for i, l := range labels {
		out[i] = sample{labels: []string{l}, v: values[i]}
	}
	return out
}

var (
	hnswOnly    = []string{"hnsw"}
	ivfflatOnly = []string{"ivfflat"}
)

// withHNSW, withIVF, withStats and withRecall compute a figure from one result, or nothing
// when that result is missing.
func withHNSW(f func(r *hnsw.Report) []sample) func(*readings) []sample {
	return func(r *readings) []sample {
		if r.structure == nil || r.structure.hnsw == nil {
			return nil
		}
		return f(r.structure.hnsw)
	}
}

func withIVF(f func(s *structure) []sample) func(*readings) []sample {
	return func(r *readings) []sample {
		if r.structure == nil || r.structure.ivf == nil {
			return nil
		}
		return f(r.structure)
	}
}

func withStats(f func(s *indexStats) []sample) func(*readings) []sample {
	return func(r *readings) []sample {
		if r.stats == nil {
			return nil
		}
		return f(r.stats)
	}
}

func withRecall(f func(p *recallResult) []sample) func(*readings) []sample {
	return func(r *readings) []sample {
		if r.recall == nil {
			return nil
		}
		return f(r.recall)
	}
}

// withAsBuilt computes a figure from the build's baseline when it holds key (any baseline
// for ""): f's samples, or key's value alone when f is nil.
func withAsBuilt(key string, f func(a *asBuilt) []sample) func(*readings) []sample {
	return func(r *readings) []sample {
		a := r.asBuilt
		if a == nil {
			return nil
		}
		v, ok := a.Figures[key]
		if key != "" && !ok {
			return nil
		}
		if f == nil {
			return one(v)
		}
		return f(a)
	}
}

func optional(p *float64) []sample {
	if p == nil {
		return nil
	}
	return one(*p)
}

// perLayer returns one sample per layer, labelled by its number.
func perLayer[T int64 | float64](vs []T) []sample {
	out := make([]sample, len(vs))
	for i, v := range vs {
		out[i] = sample{labels: []string{strconv.Itoa(i)}, v: float64(v)}
	}
	return out
}

// exactHeap returns n, or NaN when the heap could not be read (no superuser): the split is then
// only an upper bound, and an inexact dead count would raise alerts and repairs.
func exactHeap(r *hnsw.Report, n int64) float64 {
	if !r.HeapTIDsExact {
		return math.NaN()
	}
	return float64(n)
}

// exactDeadTIDs reports whether the index's exact count of dead heap TIDs is known.
func exactDeadTIDs(r *readings) bool {
	return r.structure != nil && r.structure.hnsw != nil && r.structure.hnsw.HeapTIDsExact
}

// deadEntriesEstimate estimates the entries of an index that point at dead rows of its table.
// A delete and an update that is not HOT leave, in every index of the table, an entry
// pointing at the dead row version until VACUUM removes it (pruning a page keeps the line
// pointer the entry points at); a HOT update leaves none, as the entry keeps pointing at the
// root of the row's chain. n_dead_tup counts every dead version, HOT ones until pruning removes
// them, and VACUUM sets it anew; the deletes and non-HOT updates counted since the statistics
// were reset include every one since the last VACUUM. The smaller of the two is exact while no
// VACUUM ran since the reset, and otherwise over-counts by at most the HOT versions not yet
// pruned.
func deadEntriesEstimate(s *indexStats) float64 {
	return max(0, min(s.deadTup, s.deletes+s.updates-s.hotUpdates))
}

// structuralFaults returns the fault counts of the last scan by kind. A kind is published
// once a scan of the current build has found it, and stays (at 0 when a later scan finds
// none) until the index is rebuilt: a healthy index carries no fault series at all, yet a
// fault that cleared reads 0 rather than vanishing.
func structuralFaults(r *readings) []sample {
	if r.structure == nil {
		return nil
	}
	found := map[string]int64{}
	for _, faults := range []map[string]int64{hnswFaults(r.structure), ivfFaults(r.structure)} {
		for k, n := range faults {
			found[k] += n
		}
	}
	kinds := map[string]bool{}
	for _, k := range faultKindsOf(r.structure) {
		kinds[k] = true
	}
	for k := range r.seenFaults {
		kinds[k] = true
	}
	out := []sample{} // scanned: no fault is a known 0, not an unknown
	for _, k := range sortedKeys(kinds) {
		out = append(out, sample{labels: []string{k}, v: float64(found[k])})
	}
	return out
}

// ofScan returns a figure of the last scan itself, read from the report of whichever method
// was scanned.
func ofScan(h func(*hnsw.Report) int64, v func(*ivfflat.Report) int64) func(r *readings) []sample {
	return func(r *readings) []sample {
		switch s := r.structure; {
		case s != nil && s.hnsw != nil:
			return one(float64(h(s.hnsw)))
		case s != nil && s.ivf != nil:
			return one(float64(v(s.ivf)))
		}
		return nil
	}
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// figureTable is every per-index figure, in the order of docs/metrics.md.
func figureTable() []figure {
	return append(indexFigures(), filteredFigures()...)
}

// indexFigures are the figures measured on every index. It stays one long function: it is a
// table, one entry per figure in the order of docs/metrics.md, and the one place a figure is
// defined; split, a reader would have to find which part holds a figure.
func indexFigures() []figure {
	g, c := gaugeType, counterType
	return []figure{
		// Discovery.
		{name: "pgvector_index_info", typ: g, source: fromCatalog,
			labels: []string{"method", "opclass", "dimensions", "m", "ef_construction", "lists"},
			help:   "A pgvector index and its build options (m and ef_construction for HNSW, lists for IVFFlat; 0 when not applicable). Always 1.",
			// The report carries these labels as its index_info object.
			unmeasured: "its labels describe the index; the value is always 1",
			values: func(r *readings) []sample {
				ix := r.ix
				return []sample{{labels: []string{ix.Method, ix.Opclass, strconv.Itoa(ix.Dimensions), strconv.Itoa(ix.M),
					strconv.Itoa(ix.EfConstruction), strconv.Itoa(ix.Lists)}, v: 1}}
			}},
		// One info series per partition's index rather than parent labels on every series: the
		// parent's names would add three labels to each series of each partition, and rules and
		// dashboards that group by the parent join this series instead.
		{name: "pgvector_index_partition_info", typ: g, source: fromCatalog,
			labels: []string{"parent_schemaname", "parent_relname", "parent_indexrelname"},
			help:   "The index of a partition and the partitioned index it is attached to (pg_inherits), with that index's table. Always 1; absent for indexes of tables that are not partitions. Join it to group a partition's series by the parent (docs/metrics.md).",
			// The report carries these labels as its partition_of object.
			unmeasured: "its labels name the parent index; the value is always 1",
			values: func(r *readings) []sample {
				ix := r.ix
				if ix.ParentIndex == "" {
					return nil
				}
				return []sample{{labels: []string{ix.ParentSchema, ix.ParentTable, ix.ParentIndex}, v: 1}}
			}},
		{name: "pgvector_index_size_bytes", typ: g, unit: "bytes", source: fromStats, measured: []string{""},
			help: "Size of the index on disk in bytes.",
			values: func(r *readings) []sample {
				if r.stats != nil {
					return one(r.stats.sizeBytes)
				}
				return one(float64(r.ix.SizeBytes)) // as discovery saw it
			}},
		{name: "pgvector_index_valid", typ: g, source: fromCatalog, measured: []string{""},
			help:      "Whether the index is valid (1) or INVALID (0), e.g. a leftover of a failed REINDEX CONCURRENTLY.",
			byDefault: atFault("a listed index without it is valid"),
			values:    func(r *readings) []sample { return one(b2f(r.ix.Valid)) }},

		// HNSW structure, from the pages.
		{name: "pgvector_hnsw_elements", typ: g, labels: []string{"state"}, methods: hnswOnly, source: fromStructure,
			measured: []string{"live", "being_deleted", "deleted"},
			help:     "HNSW graph elements by state: live (has a heap TID), being_deleted (no heap TID, not yet marked deleted), deleted (marked deleted, slot reusable).",
			// Deleted elements are what fragmentation and dead heap TIDs already measure: a
			// healthy graph has none, so their states cost a series only once there are some.
			byDefault: &publication{when: "live; the other states when not 0", keep: func(_ *readings, s sample) bool {
				return s.labels[0] == "live" || s.v != 0
			}},
			values: withHNSW(func(h *hnsw.Report) []sample {
				return byLabel([]string{"live", "being_deleted", "deleted"}, float64(h.ElementsLive), float64(h.ElementsBeingDeleted), float64(h.ElementsDeleted))
			})},
		{name: "pgvector_hnsw_heap_tids", typ: g, labels: []string{"state"}, methods: hnswOnly, source: fromStructure,
			measured:  []string{"live", "dead"},
			estimates: map[string]string{"dead": "pgvector_index_dead_entries_estimated"},
			help:      "Heap TIDs held by HNSW elements: live rows, and dead rows deleted from the table but still in the graph until VACUUM. Absent while a TID needs its HOT chain followed and the role cannot read heap pages (vectorheal_heap_reader_available 0): pgvector_index_dead_entries_estimated stands in.",
			values: withHNSW(func(h *hnsw.Report) []sample {
				return byLabel([]string{"live", "dead"}, exactHeap(h, h.HeapTIDsLive), exactHeap(h, h.HeapTIDsDead))
			})},
		{name: "pgvector_hnsw_layer_elements", typ: g, labels: []string{"layer"}, methods: hnswOnly, source: fromStructure,
			unmeasured: "per layer, for dashboards; layer 0 is pgvector_hnsw_elements:live",
			help:       "Live HNSW elements present on each layer (level >= layer; every element is on layer 0).",
			byDefault:  detailOnly(),
			values:     withHNSW(func(h *hnsw.Report) []sample { return perLayer(h.LayerElements) })},
		{name: "pgvector_hnsw_unreachable_elements", typ: g, methods: hnswOnly, source: fromStructure, measured: []string{""},
			help: "Live HNSW elements not reachable from the entry point by following neighbour lists.",
			// pgvector_hnsw_elements{state="live"} * (1 - pgvector_hnsw_connectivity_ratio) is
			// the same number (the ratio is defined from it), which the rules use.
			byDefault: detailOnly(),
			values:    withHNSW(func(h *hnsw.Report) []sample { return one(float64(h.Unreachable)) })},
		{name: "pgvector_hnsw_connectivity_ratio", typ: g, unit: "ratio", methods: hnswOnly, source: fromStructure, measured: []string{""},
			help:   "Share of live HNSW elements reachable from the entry point (1 = fully connected).",
			values: withHNSW(func(h *hnsw.Report) []sample { return one(h.ConnectivityRatio) })},
		{name: "pgvector_hnsw_orphan_elements", typ: g, methods: hnswOnly, source: fromStructure, measured: []string{""},
			help:   "Live HNSW elements that no live element lists as a neighbour (no live in-neighbour).",
			values: withHNSW(func(h *hnsw.Report) []sample { return one(float64(h.Orphans)) })},
		{name: "pgvector_hnsw_entry_point_quality_ratio", typ: g, unit: "ratio", methods: hnswOnly, source: fromStructure, measured: []string{""},
			help:      "Quality of the HNSW entry point from 0 to 1: 0 when missing, not live or without usable neighbours; 1 for a live entry point on the top layer with full neighbour lists (see docs/metrics.md).",
			byDefault: detailOnly(),
			values:    withHNSW(func(h *hnsw.Report) []sample { return one(h.EntryPointQuality) })},
		{name: "pgvector_hnsw_neighbor_fill_ratio", typ: g, unit: "ratio", labels: []string{"layer"}, methods: hnswOnly, source: fromStructure,
			unmeasured: "per layer, for dashboards",
			help:       "Share of neighbour slots holding a valid TID, per layer, over live HNSW elements.",
			byDefault:  detailOnly(),
			values:     withHNSW(func(h *hnsw.Report) []sample { return perLayer(h.NeighborFill) })},
		{name: "pgvector_index_fragmentation_ratio", typ: g, unit: "ratio", methods: hnswOnly, source: fromStructure, measured: []string{""},
			help:   "Share of the HNSW element and neighbour tuple space no live row needs: deleted and being-deleted elements, and the dead heap TIDs' share of live ones.",
			values: withHNSW(func(h *hnsw.Report) []sample { return one(h.FragmentationRatio) })},
		{name: "pgvector_index_structural_faults", typ: g, labels: []string{"kind"}, source: fromStructure, measured: []string{""},
			help:   "Structural faults found in the last page scan, by kind (e.g. bad_page, version_mismatch, dangling_neighbor). A kind appears once a scan of the current build found it; a healthy index has none.",
			values: structuralFaults},
		{name: "pgvector_index_structural_faults_unconfirmed", typ: g, source: fromStructure, measured: []string{""},
			help:      "Faults the last page scan saw only on pages written while it ran and that reading those pages again did not confirm: states a concurrent write passes through. Never counted in pgvector_index_structural_faults; a busy healthy index may show a few.",
			byDefault: detailOnly(),
			values:    ofScan(func(h *hnsw.Report) int64 { return h.Unconfirmed }, func(v *ivfflat.Report) int64 { return v.Unconfirmed })},
		{name: "pgvector_index_scan_pages_changed", typ: g, source: fromStructure,
			unmeasured: "describes the last scan, not the index",
			byDefault:  detailOnly(),
			help:       "Pages of the index written while the last page scan ran (their LSN passed the WAL position read before the scan). Figures read from pages are of one state of the index except on these (docs/metrics.md).",
			values:     ofScan(func(h *hnsw.Report) int64 { return h.PagesChanged }, func(v *ivfflat.Report) int64 { return v.PagesChanged })},
		{name: "pgvector_hnsw_duplicate_neighbor_elements", typ: g, methods: hnswOnly, source: fromStructure, measured: []string{""},
			help:   "Live HNSW elements that list one neighbour twice on one layer (pgvector up to 0.8.6, an insert racing a vacuum): out-degree wasted, recall lower. A rebuild removes them; VACUUM does not.",
			values: withHNSW(func(h *hnsw.Report) []sample { return one(float64(h.DuplicateNeighborElements)) })},

		// IVFFlat structure, from the pages.
		{name: "pgvector_ivfflat_lists", typ: g, methods: ivfflatOnly, source: fromStructure, measured: []string{""},
			help:   "Number of IVFFlat lists (centers) in the index.",
			values: withIVF(func(s *structure) []sample { return one(float64(s.ivf.Lists)) })},
		{name: "pgvector_ivfflat_recommended_lists", typ: g, methods: ivfflatOnly, source: fromStructure, estimated: true, measured: []string{""},
			help:   "Recommended number of lists for the table's rows at the last page scan (the estimate the retrain strategy uses): rows/1000 up to 1M rows, sqrt(rows) above, at least 1 and at most pgvector's limit of 32768.",
			values: withIVF(func(s *structure) []sample { return one(float64(measure.RecommendedLists(s.rows))) })},
		{name: "pgvector_ivfflat_list_size_cv", typ: g, unit: "ratio", methods: ivfflatOnly, source: fromStructure, measured: []string{""},
			help:   "Coefficient of variation (stddev/mean) of the entries per IVFFlat list: 0 = perfectly balanced.",
			values: withIVF(func(s *structure) []sample { return one(s.ivf.ListSizeCV) })},
		{name: "pgvector_ivfflat_largest_list_ratio", typ: g, unit: "ratio", methods: ivfflatOnly, source: fromStructure, measured: []string{""},
			help:      "Entries in the largest IVFFlat list over the mean per list: 1 = perfectly balanced. A query that probes that list reads this many times the average list.",
			byDefault: detailOnly(),
			values:    withIVF(func(s *structure) []sample { return one(s.ivf.LargestListRatio) })},
		{name: "pgvector_ivfflat_empty_lists", typ: g, methods: ivfflatOnly, source: fromStructure, measured: []string{""},
			help:   "IVFFlat lists holding no entry.",
			values: withIVF(func(s *structure) []sample { return one(float64(s.ivf.EmptyLists)) })},
		{name: "pgvector_ivfflat_centroid_quality_ratio", typ: g, unit: "ratio", methods: ivfflatOnly, source: fromStructure, estimated: true, measured: []string{""},
			help:      "On a bounded sample of entries, mean distance to their own center over mean distance to the nearest other center (lower is better; near 1 means centers do not separate the data; absent with fewer than two centers).",
			byDefault: detailOnly(),
			values:    withIVF(func(s *structure) []sample { return one(s.ivf.CentroidQuality) })},

		// Training staleness.
		{name: "pgvector_index_training_staleness_seconds", typ: g, unit: "seconds", source: fromHistory, estimated: true,
			unmeasured: "needs the build tracked over time",
			help:       "Seconds since the index was (re)built, detected by its relfilenode changing (since first seen when the build predates vectorheal).",
			values: func(r *readings) []sample {
				if r.build == nil {
					return nil
				}
				return one(r.now.Sub(r.build.builtAt).Seconds())
			}},
		{name: "pgvector_index_rows_changed_since_build_ratio", typ: g, unit: "ratio", source: fromHistory, estimated: true,
			unmeasured: "needs the build tracked over time",
			help:       "Rows inserted, updated or deleted in the table since the build, over the index's rows at build.",
			// IVFFlat's centers are trained on the rows at build (PgvectorIVFFlatTrainingStale);
			// HNSW has no training, and its drift score says what changed.
			byDefault: onlyFor("ivfflat"),
			values: func(r *readings) []sample {
				b, is := r.build, r.stats
				if b == nil || is == nil || is.writes < float64(b.writesAtBuild) {
					return nil // statistics reset: unknown until the counter passes the recorded value
				}
				return one((is.writes - float64(b.writesAtBuild)) / float64(max(b.rowsAtBuild, 1)))
			}},

		// As-built baselines (asbuilt.go): the current build as first measured. The rules read
		// these; the rest of a baseline (neighbour fill, layers, counts) stays in the state store
		// for the Measurer and costs no series.
		{name: "pgvector_index_as_built_timestamp_seconds", typ: g, unit: "seconds", labels: []string{"basis"}, source: fromHistory,
			unmeasured: "a record kept by the exporter",
			help:       "Unix time the as-built baseline of the index's current build was recorded; basis is build (no deleted element or dead heap TID since the build) or first_seen (first measured after churn).",
			// Its basis tells the HNSW rules whether a baseline is a build's own
			// (PgvectorHNSWBornPoorlyConnected); no IVFFlat rule reads it.
			byDefault: onlyFor("hnsw"),
			values: withAsBuilt("", func(a *asBuilt) []sample {
				return []sample{{labels: []string{a.Basis}, v: float64(a.At.UnixNano()) / 1e9}}
			})},
		{name: "pgvector_hnsw_as_built_connectivity_ratio", typ: g, unit: "ratio", methods: hnswOnly, source: fromHistory,
			unmeasured: "a baseline; the Measurer's AsBuilt reads it for pgvector_hnsw_connectivity_ratio",
			help:       "Share of live HNSW elements reachable from the entry point when the current build was first measured.",
			values:     withAsBuilt(asBuiltConnectivity, nil)},
		{name: "pgvector_hnsw_as_built_orphan_ratio", typ: g, unit: "ratio", methods: hnswOnly, source: fromHistory,
			unmeasured: "a baseline; the Measurer's AsBuilt reads the as-built pgvector_hnsw_orphan_elements",
			help:       "Share of live HNSW elements without a live in-neighbour when the current build was first measured.",
			values:     withAsBuilt(asBuiltOrphanRatio, nil)},
		{name: "pgvector_ivfflat_as_built_list_size_cv", typ: g, unit: "ratio", methods: ivfflatOnly, source: fromHistory,
			unmeasured: "a baseline; the Measurer's AsBuilt reads it for pgvector_ivfflat_list_size_cv",
			byDefault:  detailOnly(),
			help:       "Coefficient of variation of the IVFFlat list sizes when the current build was first measured: the balance k-means left, against which later skew is judged.",
			values:     withAsBuilt(asBuiltListCV, nil)},
		{name: "pgvector_recall_as_built_ratio", typ: g, unit: "ratio", labels: []string{"k"}, source: fromHistory, estimated: true,
			unmeasured: "a baseline; the Measurer's AsBuilt reads it for pgvector_recall_ratio",
			byDefault:  detailOnly(),
			help:       "Recall@k first measured on the current build, at the search settings a new session gets.",
			values: withAsBuilt(asBuiltRecall, func(a *asBuilt) []sample {
				return []sample{{labels: []string{strconv.Itoa(int(a.Figures[asBuiltRecallK]))}, v: a.Figures[asBuiltRecall]}}
			})},

		// Recall probe.
		{name: "pgvector_recall_ratio", typ: g, unit: "ratio", labels: []string{"k"}, source: fromProbe, estimated: true, measured: []string{""},
			help: "Recall@k of the index measured by the last probe: share of exact top-k neighbours (index scans off) the index search returns with the current hnsw.ef_search / ivfflat.probes.",
			values: withRecall(func(p *recallResult) []sample {
				if !p.indexUsed {
					return nil // the probe measured another index, or none: no figure of this one
				}
				return []sample{{labels: []string{strconv.Itoa(p.k)}, v: p.ratio}}
			})},
		{name: "pgvector_probe_latency_seconds", typ: histogramType, unit: "seconds", source: fromProbe, measured: []string{""},
			help: "Duration of the probe's top-k searches through the index (classic buckets as configured, and native buckets for Prometheus with native histograms). Re-measured as the mean of one probe's searches.",
			hist: func(r *readings) *histogram { return r.latency }},
		{name: "pgvector_probe_index_used", typ: g, source: fromProbe, measured: []string{""},
			help:      "Whether the planner uses the index for a top-k search (1) or not (0), from EXPLAIN of the probe query.",
			byDefault: atFault("pgvector_recall_ratio is published exactly when it is 1"),
			values:    withRecall(func(p *recallResult) []sample { return one(b2f(p.indexUsed)) })},
		{name: "pgvector_probe_errors_total", typ: c, source: fromHistory,
			unmeasured: "a count kept by the exporter",
			help:       "Recall probes that failed.",
			values: func(r *readings) []sample {
				if r.probeErrs == nil || !r.ix.Valid {
					return nil // an INVALID index is not probed
				}
				return one(float64(*r.probeErrs))
			}},

		// Drift.
		{name: "pgvector_drift_score", typ: g, source: fromHistory, estimated: true,
			unmeasured: "compares with the build tracked over time",
			help:       "Distribution shift of rows written since the build: their mean distance to the nearest reference vector (IVFFlat centers, or a sample of build-time rows) over the same for build-time rows. 1 means no shift.",
			values:     func(r *readings) []sample { return optional(r.drift) }},

		// Workload statistics.
		{name: "pgvector_index_scans_total", typ: c, source: fromStats, measured: []string{""},
			help:   "Index scans started on the index (pg_stat_user_indexes.idx_scan).",
			values: withStats(func(s *indexStats) []sample { return one(s.scans) })},
		{name: "pgvector_index_tuples_read_total", typ: c, source: fromStats, measured: []string{""},
			help:      "Index entries returned by scans of the index (pg_stat_user_indexes.idx_tup_read).",
			byDefault: detailOnly(),
			values:    withStats(func(s *indexStats) []sample { return one(s.tupRead) })},
		{name: "pgvector_index_blocks_hit_total", typ: c, source: fromStats, measured: []string{""},
			help:   "Index blocks found in shared buffers (pg_statio_user_indexes.idx_blks_hit).",
			values: withStats(func(s *indexStats) []sample { return one(s.blksHit) })},
		{name: "pgvector_index_blocks_read_total", typ: c, source: fromStats, measured: []string{""},
			help:   "Index blocks read from disk or the OS cache (pg_statio_user_indexes.idx_blks_read).",
			values: withStats(func(s *indexStats) []sample { return one(s.blksRead) })},
		{name: "pgvector_table_dead_tuples", typ: g, source: fromStats, estimated: true, measured: []string{""},
			help:   "Estimated dead rows of the indexed table (pg_stat_user_tables.n_dead_tup).",
			values: withStats(func(s *indexStats) []sample { return one(s.deadTup) })},
		{name: "pgvector_table_live_tuples", typ: g, source: fromStats, estimated: true, measured: []string{""},
			help:   "Estimated live rows of the indexed table (pg_stat_user_tables.n_live_tup).",
			values: withStats(func(s *indexStats) []sample { return one(s.liveTup) })},
		{name: "pgvector_index_dead_entries_estimated", typ: g, source: fromStats, estimated: true, measured: []string{""},
			help: "Estimated index entries pointing at dead rows, waiting for VACUUM, from the statistics views: the table's dead rows (n_dead_tup), at most its deletes and non-HOT updates (n_tup_del + n_tup_upd - n_tup_hot_upd), as HOT updates leave no index entry. Needs no page access, so managed PostgreSQL gets it; pgvector_hnsw_heap_tids{state=\"dead\"} is the exact count where pages and heap can be read.",
			// The rules read it for an HNSW index whose exact count is not published; where
			// it is, and for IVFFlat (no rule counts its dead entries), it is a detail.
			byDefault: &publication{when: "hnsw without an exact `pgvector_hnsw_heap_tids{state=\"dead\"}`", keep: func(r *readings, _ sample) bool {
				return r.ix.Method == "hnsw" && !exactDeadTIDs(r)
			}},
			values: withStats(func(s *indexStats) []sample { return one(deadEntriesEstimate(s)) })},
		{name: "pgvector_table_last_vacuum_age_seconds", typ: g, unit: "seconds", source: fromStats, measured: []string{""},
			help:   "Seconds since the indexed table was last vacuumed, manually or by autovacuum (absent when never).",
			values: withStats(func(s *indexStats) []sample { return optional(s.vacuumAge) })},
		{name: "pgvector_table_last_analyze_age_seconds", typ: g, unit: "seconds", source: fromStats, measured: []string{""},
			help:      "Seconds since the indexed table was last analyzed, manually or by autovacuum (absent when never).",
			byDefault: detailOnly(),
			values:    withStats(func(s *indexStats) []sample { return optional(s.analyzeAge) })},
		{name: "pgvector_index_build_progress_ratio", typ: g, unit: "ratio", source: fromStats, measured: []string{""},
			help:   "Progress of a running CREATE INDEX / REINDEX of the index (blocks or tuples done over total; present only while one runs).",
			values: withStats(func(s *indexStats) []sample { return optional(s.buildProgress) })},
	}
}

// appliesTo reports whether the figure is defined for indexes of method.
func (f figure) appliesTo(method string) bool {
	return f.methods == nil || slices.Contains(f.methods, method)
}

// metric returns the figure's entry of Metrics.
func (f figure) metric() metricdoc.Metric {
	return metricdoc.Metric{Name: f.name, Type: string(f.typ), Help: f.help, Labels: withIndex(f.labels...)}
}

// measuredNames returns the Measurer's names of the figure.
func (f figure) measuredNames() []string {
	out := make([]string, len(f.measured))
	for i, m := range f.measured {
		out[i] = f.name
		if m != "" {
			out[i] += ":" + m
		}
	}
	return out
}

// value returns the Measurer's value of the figure for key ("" or a label value): the sample
// with that label value, the sum of the samples for "", the mean observation of a histogram.
// ok is false when the figure has no such value for the index now.
func (f figure) value(r *readings, key string) (v float64, ok bool) {
	if f.typ == histogramType {
		h := f.hist(r)
		if h == nil || h.count == 0 {
			return 0, false
		}
		return h.sum / float64(h.count), true
	}
	samples := f.values(r)
	if samples == nil {
		return 0, false
	}
	if key == "" && f.worst != nil {
		if len(samples) == 0 {
			return 0, false
		}
		v = samples[0].v
		for _, s := range samples[1:] {
			v = f.worst(v, s.v)
		}
		return v, true
	}
	for _, s := range samples {
		if key == "" {
			v += s.v
		} else if len(s.labels) == 1 && s.labels[0] == key {
			return s.v, true
		}
	}
	return v, key == ""
}

// FigureNames lists, sorted, every figure name the Measurer re-measures: a metric name, or a
// metric name and a value of its label after a colon ("pgvector_hnsw_heap_tids:dead"). Runbook
// validations and strategy parameters name figures from this list.
func FigureNames() []string {
	var out []string
	for _, f := range figureTable() {
		out = append(out, f.measuredNames()...)
	}
	sort.Strings(out)
	return out
}

// EstimateOf returns the documented estimate that stands in for figure where figure cannot be
// known on a target (Measure returns NaN), or "" when it has none. remediation/validation
// judges a validation without a fallback of its own on it.
func (m *Measurer) EstimateOf(figure string) string {
	f, key, ok := lookupFigure(figure)
	if !ok {
		return ""
	}
	return f.estimates[key]
}

// lookupFigure returns the figure a Measurer name refers to and the label value it selects.
func lookupFigure(name string) (figure, string, bool) {
	for _, f := range figureTable() {
		for i, n := range f.measuredNames() {
			if n == name {
				return f, f.measured[i], true
			}
		}
	}
	return figure{}, "", false
}
