package engine

import (
	"context"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/metricdoc"
)

// Metrics lists the metrics the engine publishes.
func Metrics() []metricdoc.Metric {
	return []metricdoc.Metric{
		{Name: "vectorheal_repairs_total", Type: "counter", Help: "Repair steps finished, by strategy and outcome (succeeded, failed, rolled_back, skipped, dry_run).", Labels: []string{"strategy", "outcome"}},
		{Name: "vectorheal_repair_skips_total", Type: "counter", Help: "Repairs skipped before they ran, by reason.", Labels: []string{"reason"}},
		{Name: "vectorheal_repair_duration_seconds", Type: "histogram", Help: "Duration of repair steps that ran, by strategy.", Labels: []string{"strategy"}},
		{Name: "vectorheal_repairs_active", Type: "gauge", Help: "Repairs running in this process."},
		{Name: "vectorheal_repair_queue_depth", Type: "gauge", Help: "Repairs queued or awaiting approval in the state store."},
		{Name: "vectorheal_repair_futile_total", Type: "counter", Help: "Repair steps whose validation failed with the figure where it was before the step: the step could not help the index.", Labels: []string{"strategy"}},
		{Name: "vectorheal_repair_deferrals_total", Type: "counter", Help: "Repairs put back in the queue because a step said retry later (another index build on the table, a lock not had in time), by the repair's first strategy.", Labels: []string{"strategy"}},
		{Name: "vectorheal_repair_steps_held_total", Type: "counter", Help: "Repair steps held back (deferred, or failed once the repair's timeout passed) because a holder of the database's xmin horizon keeps them from removing dead rows, by strategy and the holder's kind (session, idle_in_transaction, prepared, replication_slot, standby_feedback).", Labels: []string{"strategy", "kind"}},
		{Name: "vectorheal_repair_rollbacks_total", Type: "counter", Help: "Rollbacks run after a step failed, timed out or was interrupted, by strategy.", Labels: []string{"strategy"}},
		{Name: "vectorheal_circuit_open", Type: "gauge", Help: "1 while auto-healing of the index is stopped after failures in a row, until reset through the API.", Labels: []string{"target", "datname", "schemaname", "relname", "indexrelname"}},
	}
}

type metrics struct {
	repairs   *prometheus.CounterVec
	skips     *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	active    prometheus.Gauge
	rollbacks *prometheus.CounterVec
	futile    *prometheus.CounterVec
	deferrals *prometheus.CounterVec
	held      *prometheus.CounterVec
	queueDesc *prometheus.Desc
	circDesc  *prometheus.Desc
	e         *Engine
}

func newMetrics(reg prometheus.Registerer, e *Engine) (*metrics, error) {
	doc := map[string]metricdoc.Metric{}
	for _, m := range Metrics() {
		doc[m.Name] = m
	}
	m := &metrics{
		repairs: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vectorheal_repairs_total",
			Help: doc["vectorheal_repairs_total"].Help}, doc["vectorheal_repairs_total"].Labels),
		skips: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vectorheal_repair_skips_total",
			Help: doc["vectorheal_repair_skips_total"].Help}, doc["vectorheal_repair_skips_total"].Labels),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "vectorheal_repair_duration_seconds",
			Help:    doc["vectorheal_repair_duration_seconds"].Help,
			Buckets: []float64{1, 5, 15, 60, 300, 900, 1800, 3600, 7200, 14400}}, doc["vectorheal_repair_duration_seconds"].Labels),
		active: prometheus.NewGauge(prometheus.GaugeOpts{Name: "vectorheal_repairs_active",
			Help: doc["vectorheal_repairs_active"].Help}),
		rollbacks: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vectorheal_repair_rollbacks_total",
			Help: doc["vectorheal_repair_rollbacks_total"].Help}, doc["vectorheal_repair_rollbacks_total"].Labels),
		futile: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vectorheal_repair_futile_total",
			Help: doc["vectorheal_repair_futile_total"].Help}, doc["vectorheal_repair_futile_total"].Labels),
		deferrals: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vectorheal_repair_deferrals_total",
			Help: doc["vectorheal_repair_deferrals_total"].Help}, doc["vectorheal_repair_deferrals_total"].Labels),
		held: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "vectorheal_repair_steps_held_total",
			Help: doc["vectorheal_repair_steps_held_total"].Help}, doc["vectorheal_repair_steps_held_total"].Labels),
		queueDesc: prometheus.NewDesc("vectorheal_repair_queue_depth", doc["vectorheal_repair_queue_depth"].Help, nil, nil),
		circDesc:  prometheus.NewDesc("vectorheal_circuit_open", doc["vectorheal_circuit_open"].Help, doc["vectorheal_circuit_open"].Labels, nil),
		e:         e,
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.repairs, m.skips, m.duration, m.active, m.rollbacks, m.futile, m.deferrals, m.held, stateCollector{m}} {
			if err := reg.Register(c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

func (m *metrics) skip(reason, strategy string) {
	m.skips.WithLabelValues(reason).Inc()
	m.repairs.WithLabelValues(strategy, "skipped").Inc()
}

// stateCollector reads the queue depth and open circuits from the state store at scrape
// time, so every replica reports the shared truth.
type stateCollector struct{ m *metrics }

func (c stateCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.m.queueDesc
	ch <- c.m.circDesc
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	pool := c.m.e.o.State
	var depth float64
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM repairs WHERE state IN ('queued', 'awaiting_approval')`).Scan(&depth); err != nil {
		ch <- prometheus.NewInvalidMetric(c.m.queueDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.m.queueDesc, prometheus.GaugeValue, depth)
	}
	circuits, err := c.m.e.Circuits(ctx)
	if err != nil {
		ch <- prometheus.NewInvalidMetric(c.m.circDesc, err)
		return
	}
	for _, ci := range circuits {
		v := 0.0
		if ci.Open {
			v = 1
		}
		ch <- prometheus.MustNewConstMetric(c.m.circDesc, prometheus.GaugeValue, v,
			ci.Target, ci.Datname, ci.Schema, ci.Table, ci.Index)
	}
}
