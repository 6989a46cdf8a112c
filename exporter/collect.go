package exporter

import (
	"context"
	"math"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/prometheus/client_golang/prometheus"
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
	if e.shard.Total > 1 {
		ch <- prometheus.MustNewConstMetric(e.d.get("vectorheal_shard_info"), prometheus.GaugeValue, 1,
			strconv.Itoa(e.shard.Index), strconv.Itoa(e.shard.Total), string(e.shard.Granularity()))
	}
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
			if stats, err = readStats(ctx, tx, indexOIDs, tableOIDs); err != nil {
				return err
			}
			return stats.readHorizon(ctx, tx, e.cfg.XminHorizonMinAge)
		})
		t.mu.Lock()
		t.noteOutcome(kindStatistics, "", err)
		t.record(kindStatistics, 0, start, err)
		t.mu.Unlock()
		if err != nil {
			stats = nil
		}
	}
	var ext *extension
	if up {
		ext = e.readExtension(ctx, t)
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	e.emitTarget(emitter{ch: ch, d: e.d, detail: e.cfg.DetailSeries}, t, up, stats, ext, time.Now())
}

// emitTarget sends everything known of one target: the self-metrics, and when it is up the
// installed pgvector (ext, nil when unknown), the figures of each index and the target's
// statistics. t.mu must be held. It reads no database, so a test can emit a fixed state.
func (e *Exporter) emitTarget(m emitter, t *target, up bool, stats *targetStats, ext *extension, now time.Time) {
	m.gauge("vectorheal_up", b2f(up), t.Name)
	for name, cs := range t.collectors {
		m.gauge("vectorheal_collector_success", cs.success(), t.Name, name)
		m.gauge("vectorheal_collector_duration_seconds", cs.duration.Seconds(), t.Name, name)
		if !cs.lastSuccess.IsZero() {
			m.gauge("vectorheal_collector_last_success_timestamp_seconds", float64(cs.lastSuccess.UnixNano())/1e9, t.Name, name)
		}
	}
	if t.readerSeen {
		m.gauge("vectorheal_page_reader_available", b2f(t.reader.index != ""), t.Name)
		m.gauge("vectorheal_heap_reader_available", b2f(t.reader.heap != ""), t.Name)
	}
	t.replica.emit(m, t.Name)
	t.budget.emit(m, t.Name, e.cfg.Structure.Adaptive)
	if !up {
		return // figures of an unreachable database would be stale
	}
	whole := e.ownsTarget(t) // the database's own figures: from one shard only
	if whole {
		ext.emit(m, t.Name)
	}
	tables := map[uint32]bool{}
	for _, st := range t.indexes {
		var is *indexStats
		if stats != nil {
			is = stats.indexes[st.ix.OID]
		}
		m.index(t.Name, st.readings(is, now))
		if stats != nil && !tables[st.ix.TableOID] {
			tables[st.ix.TableOID] = true
			if p, ok := stats.vacuum[st.ix.TableOID]; ok {
				m.gauge("pgvector_vacuum_progress_ratio", p, t.Name, st.ix.Datname, st.ix.Schema, st.ix.Table)
			}
		}
	}
	if !whole {
		return
	}
	if stats != nil && stats.queryCalls != nil {
		m.counter("pgvector_query_calls_total", *stats.queryCalls, t.Name, stats.datname)
		m.counter("pgvector_query_exec_seconds_total", *stats.queryExecSeconds, t.Name, stats.datname)
	}
	if stats != nil {
		stats.emitHorizon(m, t.Name)
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
				m.ch <- prometheus.NewInvalidMetric(desc, err)
				continue
			}
			m.ch <- metric
		}
	}
}

// readings returns what the exporter knows of the index, with is its statistics of this
// scrape (nil when they could not be read). The target's mu must be held.
func (st *index) readings(is *indexStats, now time.Time) *readings {
	r := &readings{ix: st.ix, structure: st.structure, recall: st.recall, latency: st.latency, stats: is,
		filtered: st.filtered, now: now, probeErrs: &st.probeErrs, drift: st.drift, seenFaults: st.faultKinds, asBuilt: st.asBuilt}
	if st.build.relfilenode != 0 {
		b := st.build
		r.build = &b
	}
	return r
}

// index sends every figure of figureTable known for one index, as far as the figure publishes
// it (figure.byDefault).
func (m emitter) index(targetName string, r *readings) {
	ix := r.ix
	l := []string{targetName, ix.Datname, ix.Schema, ix.Table, ix.Name}
	for _, f := range figureTable() {
		if !f.appliesTo(ix.Method) {
			continue
		}
		if f.typ == histogramType {
			if h := f.hist(r); h != nil && h.count > 0 {
				m.ch <- h.metric(m.d.get(f.name), l...)
			}
			continue
		}
		vt := prometheus.GaugeValue
		if f.typ == counterType {
			vt = prometheus.CounterValue
		}
		for _, s := range f.values(r) {
			if math.IsNaN(s.v) {
				continue // known to be unknowable here, see figure.values
			}
			if !f.publishes(r, s, m.detail) {
				continue
			}
			m.ch <- prometheus.MustNewConstMetric(m.d.get(f.name), vt, s.v, append(slices.Clone(l), s.labels...)...)
		}
	}
}

// emitter sends constant metrics built from the exporter's descriptors.
type emitter struct {
	ch chan<- prometheus.Metric
	d  descs
	// detail publishes every sample of every figure (exporter.detail_series).
	detail bool
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
