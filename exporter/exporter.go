// Package exporter measures the health of pgvector indexes (HNSW graph structure and IVFFlat
// list balance read from the index pages, recall, drift, workload statistics) and publishes it
// as Prometheus metrics. Expensive checks run in the background on their own schedules; a
// scrape reads their latest results plus cheap statistics and never waits on a slow check.
package exporter

import (
	"context"
	"log/slog"
	"sync"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/metricdoc"
	"github.com/vectorheal/vectorheal/internal/targets"
)

var upDesc = prometheus.NewDesc("vectorheal_up",
	"Whether the target database answered the last scrape (1) or not (0).",
	[]string{"target"}, nil)

// Exporter is a prometheus.Collector over every configured target.
type Exporter struct {
	targets *targets.Set
	cfg     config.Exporter
	logger  *slog.Logger
}

// New returns an exporter over ts. Call Run to start the background checks.
func New(ts *targets.Set, cfg config.Exporter, logger *slog.Logger) *Exporter {
	return &Exporter{targets: ts, cfg: cfg, logger: logger}
}

// Run runs the background checks until ctx ends.
func (e *Exporter) Run(ctx context.Context) {
	<-ctx.Done()
}

// Describe implements prometheus.Collector.
func (e *Exporter) Describe(ch chan<- *prometheus.Desc) {
	ch <- upDesc
}

// Collect implements prometheus.Collector: it pings every target in parallel.
func (e *Exporter) Collect(ch chan<- prometheus.Metric) {
	var wg sync.WaitGroup
	for _, t := range e.targets.All() {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), e.cfg.StatisticsTimeout)
			defer cancel()
			up := 1.0
			if err := t.Pool.Ping(ctx); err != nil {
				up = 0
				e.logger.Warn("target down", "target", t.Name, "err", err)
			}
			ch <- prometheus.MustNewConstMetric(upDesc, prometheus.GaugeValue, up, t.Name)
		}()
	}
	wg.Wait()
}

// Metrics lists every metric the exporter publishes.
func Metrics() []metricdoc.Metric {
	return []metricdoc.Metric{
		{Name: "vectorheal_up", Type: "gauge", Help: "Whether the target database answered the last scrape (1) or not (0).", Labels: []string{"target"}},
	}
}
