package exporter

import (
	"context"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
)

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range e.d {
		ch <- d
	}
	for _, m := range e.cfg.CustomMetrics {
		ch <- customDesc(m.Name, m.Help, m.LabelColumns)
	}
}

// Collect implements prometheus.Collector. Targets are scraped in parallel; each answers
// whether it is up, its cheap statistics, and the latest results of the background checks.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, t := range e.targets {
		wg.Go(func() { e.collectTarget(ch, t) })
	}
	wg.Wait()
}

func (e *Exporter) collectTarget(ch chan<- prometheus.Metric, t *target) {
	ctx, cancel := context.WithTimeout(context.Background(), e.cfg.StatisticsTimeout)
	defer cancel()
	err := t.Pool.Ping(ctx)
	up := err == nil

	t.mu.Lock()
	if t.up == nil || *t.up != up {
		if up {
			t.logger.Info("target is up")
		} else {
			t.logger.Warn("target is down", "err", err)
		}
	}
	t.up = &up
	var indexOIDs, tableOIDs []uint32
	for oid, st := range t.indexes {
		indexOIDs = append(indexOIDs, oid)
		tableOIDs = append(tableOIDs, st.ix.TableOID)
	}
	t.mu.Unlock()

	var stats *targetStats
	if up {
		start := time.Now()
		err := readOnly(ctx, t.Pool, e.cfg.StatisticsTimeout, func(tx pgx.Tx) error {
			var err error
			stats, err = readStats(ctx, tx, indexOIDs, tableOIDs)
			return err
		})
		t.mu.Lock()
		t.noteOutcome(kindStatistics, "", err)
		t.record(kindStatistics, 0, start, err)
		t.mu.Unlock()
		if err != nil {
			stats = nil
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	m := emitter{ch: ch, d: e.d}
	m.gauge("vectorheal_up", b2f(up), t.Name)
	for name, cs := range t.collectors {
		m.gauge("vectorheal_collector_success", cs.success(), t.Name, name)
		m.gauge("vectorheal_collector_duration_seconds", cs.duration.Seconds(), t.Name, name)
		if !cs.lastSuccess.IsZero() {
			m.gauge("vectorheal_collector_last_success_timestamp_seconds", float64(cs.lastSuccess.UnixNano())/1e9, t.Name, name)
		}
	}
	if t.readerSeen {
		m.gauge("vectorheal_page_reader_available", b2f(t.reader != ""), t.Name)
	}
	if !up {
		return // figures of an unreachable database would be stale
	}
	tables := map[uint32]bool{}
	for _, st := range t.indexes {
		var is *indexStats
		if stats != nil {
			is = stats.indexes[st.ix.OID]
		}
		e.emitIndex(m, t.Name, st, is)
		if stats != nil && !tables[st.ix.TableOID] {
			tables[st.ix.TableOID] = true
			if p, ok := stats.vacuum[st.ix.TableOID]; ok {
				m.gauge("pgvector_vacuum_progress_ratio", p, t.Name, st.ix.Datname, st.ix.Schema, st.ix.Table)
			}
		}
	}
	if stats != nil && stats.queryCalls != nil {
		m.counter("pgvector_query_calls_total", *stats.queryCalls, t.Name, stats.datname)
		m.counter("pgvector_query_exec_seconds_total", *stats.queryExecSeconds, t.Name, stats.datname)
	}
	for _, cm := range e.cfg.CustomMetrics {
		res, ok := t.custom[cm.Name]
		if !ok {
			continue
		}
		desc := customDesc(cm.Name, cm.Help, cm.LabelColumns)
		vt := prometheus.GaugeValue
		if cm.Type == "counter" {
			vt = prometheus.CounterValue
		}
		for _, s := range res.samples {
			metric, err := prometheus.NewConstMetric(desc, vt, s.value, append([]string{t.Name}, s.labels...)...)
			if err != nil {
				ch <- prometheus.NewInvalidMetric(desc, err)
				continue
			}
			ch <- metric
		}
	}
}

// emitIndex sends every figure known for one index. t.mu must be held.
func (e *Exporter) emitIndex(m emitter, targetName string, st *index, is *indexStats) {
	ix := st.ix
	l := []string{targetName, ix.Datname, ix.Schema, ix.Table, ix.Name}
	with := func(v string) []string { return append(append([]string{}, l...), v) }

	m.gauge("pgvector_index_info", 1, append(append([]string{}, l...), ix.Method, ix.Opclass,
		strconv.Itoa(ix.Dimensions), strconv.Itoa(ix.M), strconv.Itoa(ix.EfConstruction), strconv.Itoa(ix.Lists))...)
	size := float64(ix.SizeBytes)
	if is != nil {
		size = is.sizeBytes
	}
	m.gauge("pgvector_index_size_bytes", size, l...)
	m.gauge("pgvector_index_valid", b2f(ix.Valid), l...)

	if s := st.structure; s != nil && s.hnsw != nil {
		r := s.hnsw
		m.gauge("pgvector_hnsw_elements", float64(r.ElementsLive), with("live")...)
		m.gauge("pgvector_hnsw_elements", float64(r.ElementsBeingDeleted), with("being_deleted")...)
		m.gauge("pgvector_hnsw_elements", float64(r.ElementsDeleted), with("deleted")...)
		// Without superuser the heap cannot be read and the split is only an upper bound: an
		// inexact dead count would raise alerts and repairs, so it is left out.
		if r.HeapTIDsExact {
			m.gauge("pgvector_hnsw_heap_tids", float64(r.HeapTIDsLive), with("live")...)
			m.gauge("pgvector_hnsw_heap_tids", float64(r.HeapTIDsDead), with("dead")...)
		}
		for layer, n := range r.LayerElements {
			m.gauge("pgvector_hnsw_layer_elements", float64(n), with(strconv.Itoa(layer))...)
		}
		for layer, f := range r.NeighborFill {
			m.gauge("pgvector_hnsw_neighbor_fill_ratio", f, with(strconv.Itoa(layer))...)
		}
		m.gauge("pgvector_hnsw_unreachable_elements", float64(r.Unreachable), l...)
		m.gauge("pgvector_hnsw_connectivity_ratio", r.ConnectivityRatio, l...)
		m.gauge("pgvector_hnsw_orphan_elements", float64(r.Orphans), l...)
		m.gauge("pgvector_hnsw_entry_point_quality_ratio", r.EntryPointQuality, l...)
		m.gauge("pgvector_index_fragmentation_ratio", r.FragmentationRatio, l...)
		for kind, n := range faults(r.Faults, hnswFaultKinds()) {
			m.gauge("pgvector_index_structural_faults", float64(n), with(kind)...)
		}
	}
	if s := st.structure; s != nil && s.ivf != nil {
		r := s.ivf
		rows := s.rows
		if is != nil {
			rows = is.liveTup
		}
		m.gauge("pgvector_ivfflat_lists", float64(r.Lists), l...)
		m.gauge("pgvector_ivfflat_recommended_lists", recommendedLists(rows), l...)
		m.gauge("pgvector_ivfflat_list_size_cv", r.ListSizeCV, l...)
		m.gauge("pgvector_ivfflat_empty_lists", float64(r.EmptyLists), l...)
		m.gauge("pgvector_ivfflat_centroid_quality_ratio", r.CentroidQuality, l...)
		for kind, n := range faults(r.Faults, nil) {
			m.gauge("pgvector_index_structural_faults", float64(n), with(kind)...)
		}
	}

	if b := st.build; b.relfilenode != 0 {
		m.gauge("pgvector_index_training_staleness_seconds", time.Since(b.builtAt).Seconds(), l...)
		if is != nil && is.writes >= float64(b.writesAtBuild) {
			m.gauge("pgvector_index_rows_changed_since_build_ratio", (is.writes-float64(b.writesAtBuild))/float64(max(b.rowsAtBuild, 1)), l...)
		}
	}

	if r := st.recall; r != nil {
		if r.indexUsed { // otherwise the probe measured another index, or none: no figure of this one
			m.gauge("pgvector_recall_ratio", r.ratio, with(strconv.Itoa(r.k))...)
		}
		m.gauge("pgvector_probe_index_used", b2f(r.indexUsed), l...)
	}
	if st.latency.count > 0 {
		m.ch <- prometheus.MustNewConstHistogram(m.d.get("pgvector_probe_latency_seconds"),
			st.latency.count, st.latency.sum, st.latency.cumulative(), l...)
	}
	if ix.Valid {
		m.counter("pgvector_probe_errors_total", float64(st.probeErrs), l...)
	}
	if st.drift != nil {
		m.gauge("pgvector_drift_score", *st.drift, l...)
	}

	if is != nil {
		m.counter("pgvector_index_scans_total", is.scans, l...)
		m.counter("pgvector_index_tuples_read_total", is.tupRead, l...)
		m.counter("pgvector_index_blocks_hit_total", is.blksHit, l...)
		m.counter("pgvector_index_blocks_read_total", is.blksRead, l...)
		m.gauge("pgvector_table_dead_tuples", is.deadTup, l...)
		m.gauge("pgvector_table_live_tuples", is.liveTup, l...)
		if is.vacuumAge != nil {
			m.gauge("pgvector_table_last_vacuum_age_seconds", *is.vacuumAge, l...)
		}
		if is.analyzeAge != nil {
			m.gauge("pgvector_table_last_analyze_age_seconds", *is.analyzeAge, l...)
		}
		if is.buildProgress != nil {
			m.gauge("pgvector_index_build_progress_ratio", *is.buildProgress, l...)
		}
	}
}

// hnswFaultKinds are always published (as 0 when absent), so a fault appearing is a change of
// value, which rules can compare, rather than a new series.
func hnswFaultKinds() []string {
	return []string{hnsw.FaultBadPage, hnsw.FaultBadMeta, hnsw.FaultBadTuple, hnsw.FaultVersionMismatch,
		hnsw.FaultMissingNeighbors, hnsw.FaultDanglingNeighbor, hnsw.FaultBadEntryPoint, hnsw.FaultChain}
}

func faults(found map[string]int64, always []string) map[string]int64 {
	out := map[string]int64{}
	for _, k := range always {
		out[k] = 0
	}
	for k, n := range found {
		out[k] = n
	}
	return out
}

// emitter sends constant metrics built from the exporter's descriptors.
type emitter struct {
	ch chan<- prometheus.Metric
	d  descs
}

func (m emitter) gauge(name string, v float64, labels ...string) {
	m.ch <- prometheus.MustNewConstMetric(m.d.get(name), prometheus.GaugeValue, v, labels...)
}

func (m emitter) counter(name string, v float64, labels ...string) {
	m.ch <- prometheus.MustNewConstMetric(m.d.get(name), prometheus.CounterValue, v, labels...)
}

func customDesc(name, help string, labels []string) *prometheus.Desc {
	return prometheus.NewDesc(name, help, append([]string{"target"}, labels...), nil)
}

func b2f(b bool) float64 {
	if b {
		return 1
	}
	return 0
}
