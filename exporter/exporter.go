// Package exporter measures the health of pgvector indexes (HNSW graph structure and IVFFlat
// list balance read from the index pages, recall, drift, workload statistics) and publishes it
// as Prometheus metrics. Expensive checks run in the background on their own schedules; a
// scrape reads their latest results plus cheap statistics and never waits on a slow check.
package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/shard"
	"github.com/vectorheal/vectorheal/internal/targets"
)

// Exporter is a prometheus.Collector over every configured target. Run starts its background
// checks; Collect (a scrape) reads their latest results and the cheap statistics.
type Exporter struct {
	cfg     config.Exporter
	logger  *slog.Logger
	d       descs
	targets []*target
	global  *slots // bounds background checks over all targets
	builds  buildTracker
	// baselines holds the as-built figures of each build (asbuilt.go).
	baselines baselines
	state     *pgxpool.Pool // nil without a state store
	tick      time.Duration
	// shard is this replica's part of the indexes (WithShard); the zero value owns all.
	shard shard.Shard
}

// WithShard makes the exporter measure only the indexes s owns, and the figures of a target
// as a whole (its database's statistics, pgvector version, custom metrics) only when s owns
// the target: replicas started with each shard of the same total measure everything once.
// Sharded by target, the exporter leaves out the targets s does not own altogether: it never
// uses their pools (no connection, discovery, ping or statistics) and publishes nothing of
// them, not even vectorheal_up.
func WithShard(s shard.Shard) Option {
	return func(e *Exporter) { e.shard = s }
}

// ownsIndex says whether this replica measures ix of t. A partition's index goes with its
// parent index, so a partitioned index's figures and its partitions' are read by one replica.
func (e *Exporter) ownsIndex(t *target, ix catalog.Index) bool {
	schema, name := ix.Schema, ix.Name
	if ix.ParentIndex != "" {
		schema, name = ix.ParentSchema, ix.ParentIndex
	}
	return e.shard.OwnsIndex(t.Name, ix.Datname, schema, name)
}

// ownsTarget says whether this replica publishes the figures of t as a whole.
func (e *Exporter) ownsTarget(t *target) bool { return e.shard.OwnsTarget(t.Name) }

// Option changes how New builds the exporter.
type Option func(*Exporter)

// WithStateStore keeps index build tracking (training staleness, rows changed since build) in
// the state store's index_builds table, so it survives restarts and is shared by replicas.
// pool must have the state schema on its search_path (store.Open does that). Without it the
// exporter tracks builds in memory.
func WithStateStore(pool *pgxpool.Pool) Option {
	return func(e *Exporter) {
		if pool != nil {
			e.builds = &storeBuilds{pool: pool}
			e.baselines = &storeBaselines{pool: pool}
			e.state = pool
		}
	}
}

// New returns an exporter over ts (those of ts its shard visits, WithShard). Call Run to
// start the background checks.
func New(ts *targets.Set, cfg config.Exporter, logger *slog.Logger, opts ...Option) *Exporter {
	e := &Exporter{
		cfg:    cfg,
		logger: logger,
		d:      newDescs(),
		global: newSlots(cfg.MaxConcurrentChecks),
		builds: newMemoryBuilds(),
		tick:   200 * time.Millisecond,

		baselines: newMemoryBaselines(),
	}
	for _, o := range opts {
		o(e)
	}
	e.cfg.CustomMetrics = usableCustomMetrics(cfg.CustomMetrics, e.d, logger)
	for _, t := range ts.All() {
		if !e.shard.Visits(t.Name) {
			// Another shard owns the whole target; its pools stay in ts for the repair
			// engine, which repairs any target whichever replica receives the alert.
			continue
		}
		e.targets = append(e.targets, &target{
			Target:     t,
			logger:     logger.With("target", t.Name),
			slots:      newSlots(t.MaxConcurrentChecks),
			indexes:    map[uint32]*index{},
			collectors: map[string]*collectorStat{},
			custom:     map[string]*customResult{},
			budget:     scanBudget{logger: logger.With("target", t.Name)},
		})
	}
	return e
}

// Run runs the background checks of every target until ctx ends, and waits for the checks
// it started to stop.
func (e *Exporter) Run(ctx context.Context) {
	var wg sync.WaitGroup
	for _, t := range e.targets {
		wg.Go(func() { e.runTarget(ctx, t) })
	}
	wg.Wait()
}

// Check kinds: the names of the background collectors.
const (
	kindDiscovery  = "discovery"
	kindStatistics = "statistics"
	kindStructure  = "structure"
	kindRecall     = "recall"
	kindDrift      = "drift"
	kindCustom     = "custom:" // followed by the metric name
)

// job is the schedule of one background check of one index (or one custom metric).
type job struct {
	next    time.Time
	running bool
}

// runTarget is the scheduler of one target: discovery, then each due check in its own
// goroutine, bounded by the target's and the process's slots (longest due first).
func (e *Exporter) runTarget(ctx context.Context, t *target) {
	var wg sync.WaitGroup
	defer wg.Wait()
	// Spread targets so they do not all discover at the same instant.
	if !sleep(ctx, jitter(e.tick*5)) {
		return
	}
	var nextDiscovery, nextRequests time.Time
	ticker := time.NewTicker(e.tick)
	defer ticker.Stop()
	for {
		now := time.Now()
		var requested []checkRequest
		if e.state != nil && !now.Before(nextRequests) {
			requested = e.takeCheckRequests(ctx, t)
			nextRequests = now.Add(requestPoll)
			if len(requested) > 0 {
				nextDiscovery = now // the index asked about may be new
			}
		}
		if !now.Before(nextDiscovery) {
			interval := e.cfg.DiscoveryInterval
			if err := e.discover(ctx, t); err != nil {
				// Retry sooner while the target is unreachable, so it is picked up quickly.
				interval = min(interval, 10*time.Second)
			}
			nextDiscovery = time.Now().Add(interval)
		}
		if len(requested) > 0 {
			t.makeDue(requested, now)
		}
		for _, run := range e.dueJobs(t, now) {
			wg.Go(func() { run(ctx) })
		}
		select {
		case <-ctx.Done():
			return
		case <-ticker.C:
		}
	}
}

// dueJobs marks the checks that are due as running and returns them.
func (e *Exporter) dueJobs(t *target, now time.Time) []func(context.Context) {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []func(context.Context)
	checks := []struct {
		kind  string
		check indexChecker
		c     config.Check
	}{
		{kindStructure, structureCheck{}, e.cfg.Structure.Check},
		{kindRecall, recallCheck{}, e.cfg.Recall.Check},
		{kindDrift, driftCheck{}, e.cfg.Drift.Check},
	}
	for _, ix := range t.indexes {
		if !ix.ix.Valid {
			continue // an INVALID index is not used by queries and may be half built
		}
		for _, c := range checks {
			if c.c.Disabled || c.c.Interval <= 0 {
				continue
			}
			j := ix.job(c.kind, now, c.c.Interval)
			if j.running || now.Before(j.next) {
				continue
			}
			j.running = true
			out = append(out, e.indexCheck(t, ix, c.kind, c.check, c.c, j))
		}
	}
	for i := range e.cfg.CustomMetrics {
		m := e.cfg.CustomMetrics[i]
		if !appliesTo(m, t.Name) || !e.ownsTarget(t) {
			continue
		}
		j := t.customJob(m.Name, now, m.Interval)
		if j.running || now.Before(j.next) {
			continue
		}
		j.running = true
		out = append(out, e.customCheck(t, m, j))
	}
	return append(out, e.filteredJobs(t, now)...)
}

// acquire takes a slot of the target and one of the whole process for a check due at due,
// each handed to the longest-due waiting check first; release gives them back.
func (e *Exporter) acquire(ctx context.Context, t *target, due time.Time) (release func(), ok bool) {
	if !t.slots.acquire(ctx, due) {
		return nil, false
	}
	if !e.global.acquire(ctx, due) {
		t.slots.release()
		return nil, false
	}
	return func() { e.global.release(); t.slots.release() }, true
}

// dueAt is when j became due: the next run it was scheduled for.
func (t *target) dueAt(j *job) time.Time {
	t.mu.Lock()
	defer t.mu.Unlock()
	return j.next
}

// finish schedules j's next run about interval from now (±10 %, so checks that started
// together drift apart).
func (t *target) finish(j *job, interval time.Duration) {
	t.mu.Lock()
	defer t.mu.Unlock()
	j.running = false
	spread := interval / 5
	j.next = time.Now().Add(interval - spread/2 + jitter(spread))
}

// jitter returns a random duration in [0, d).
func jitter(d time.Duration) time.Duration {
	if d <= 0 {
		return 0
	}
	return rand.N(d)
}

// sleep waits d or until ctx ends; it reports whether d passed.
func sleep(ctx context.Context, d time.Duration) bool {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return false
	case <-t.C:
		return true
	}
}

func appliesTo(m config.CustomMetric, target string) bool {
	if len(m.Targets) == 0 {
		return true
	}
	for _, t := range m.Targets {
		if t == target {
			return true
		}
	}
	return false
}

// usableCustomMetrics drops, with an error in the log, user metrics that would clash with the
// exporter's own names or labels: registering them would fail the whole collector.
func usableCustomMetrics(ms []config.CustomMetric, d descs, logger *slog.Logger) []config.CustomMetric {
	var out []config.CustomMetric
	for _, m := range ms {
		seen := map[string]bool{"target": true}
		clash := ""
		if _, ok := d[m.Name]; ok {
			clash = "the name is one of the exporter's own metrics"
		}
		for _, l := range m.LabelColumns {
			if seen[l] {
				clash = fmt.Sprintf("label column %q is the target label or given twice", l)
			}
			seen[l] = true
		}
		if clash != "" {
			logger.Error("custom metric left out", "metric", m.Name, "reason", clash)
			continue
		}
		out = append(out, m)
	}
	return out
}
