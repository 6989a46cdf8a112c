package engine

import (
	"context"
	"slices"
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
		{Name: "vectorheal_repair_budget_used_ratio", Type: "gauge", Help: "Share of the budget window (remediation.budget.window) that repairs of the index took; automatic repairs are held (reason budget) while it is above remediation.budget.share. Indexes repaired lately or with a circuit.", Labels: indexLabels},
		{Name: "vectorheal_repair_budget_share_ratio", Type: "gauge", Help: "The configured maintenance budget: the share of wall time repairs of one index may take over the budget window (remediation.budget.share)."},
		{Name: "vectorheal_repair_next_allowed_timestamp_seconds", Type: "gauge", Help: "When the next automatic repair of the index may run, as far as known: the scrape time when none is held back; absent while the circuit is open or only the per-target running limit holds.", Labels: indexLabels},
		{Name: "vectorheal_repair_held", Type: "gauge", Help: "1 for the rule holding automatic repairs of the index back the longest (circuit_open, running_limit, cooldown, backoff, budget, flapping; a maintenance window shows on the repairs it holds); absent while repairs may run.", Labels: append(slices.Clone(indexLabels), "reason")},
		{Name: "vectorheal_circuit_open", Type: "gauge", Help: "1 while auto-healing of the index is stopped after failures in a row, until reset through the API.", Labels: []string{"target", "datname", "schemaname", "relname", "indexrelname"}},
	}
}

// indexLabels name an index in the engine's per-index metrics, as in its alerts.
var indexLabels = []string{"target", "datname", "schemaname", "relname", "indexrelname"}

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
	budget    budgetDescs
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
		budget:    newBudgetDescs(doc),
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
	c.m.budget.describe(ch)
}

func (c stateCollector) Collect(ch chan<- prometheus.Metric) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if depth, err := c.m.e.repairs.queueDepth(ctx); err != nil {
		ch <- prometheus.NewInvalidMetric(c.m.queueDesc, err)
	} else {
		ch <- prometheus.MustNewConstMetric(c.m.queueDesc, prometheus.GaugeValue, depth)
	}
	c.m.budget.collect(ctx, c.m.e, ch)
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

// budgetDescs are the metrics of the maintenance budget, read from the state store at scrape
// time by the same rules the precheck applies (Budgets).
type budgetDescs struct{ used, share, next, held *prometheus.Desc }

func newBudgetDescs(doc map[string]metricdoc.Metric) budgetDescs {
	d := func(name string) *prometheus.Desc {
		return prometheus.NewDesc(name, doc[name].Help, doc[name].Labels, nil)
	}
	return budgetDescs{used: d("vectorheal_repair_budget_used_ratio"), share: d("vectorheal_repair_budget_share_ratio"),
		next: d("vectorheal_repair_next_allowed_timestamp_seconds"), held: d("vectorheal_repair_held")}
}

func (d budgetDescs) describe(ch chan<- *prometheus.Desc) {
	for _, x := range []*prometheus.Desc{d.used, d.share, d.next, d.held} {
		ch <- x
	}
}

func (d budgetDescs) collect(ctx context.Context, e *Engine, ch chan<- prometheus.Metric) {
	ch <- prometheus.MustNewConstMetric(d.share, prometheus.GaugeValue, e.o.Config.Budget.Share)
	budgets, err := e.Budgets(ctx)
	if err != nil {
		for _, x := range []*prometheus.Desc{d.used, d.next, d.held} {
			ch <- prometheus.NewInvalidMetric(x, err)
		}
		return
	}
	now := float64(time.Now().Unix())
	for _, b := range budgets {
		lv := []string{b.Target, b.Datname, b.Schema, b.Table, b.Index}
		ch <- prometheus.MustNewConstMetric(d.used, prometheus.GaugeValue, b.UsedRatio, lv...)
		switch {
		case b.Allowed:
			ch <- prometheus.MustNewConstMetric(d.next, prometheus.GaugeValue, now, lv...)
		case b.NextAllowed != nil:
			ch <- prometheus.MustNewConstMetric(d.next, prometheus.GaugeValue, float64(b.NextAllowed.Unix()), lv...)
		}
		if !b.Allowed {
			ch <- prometheus.MustNewConstMetric(d.held, prometheus.GaugeValue, 1, append(lv, b.HeldBy)...)
		}
	}
}
