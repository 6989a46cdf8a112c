package main

import (
	"context"
	"fmt"
	"math"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/figure"
)

// phases runs the application workload throughout, the quiet period, then the churn with
// its decay mechanisms, sampling every interval.
func (s *soak) phases(ctx context.Context) error {
	wctx, stop := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() { stop(); wg.Wait() }()
	for _, tw := range s.twins {
		for si, spec := range soakIndexes() {
			gen := s.docsGen
			if spec.table == eventsTable {
				gen = s.eventsGen
			}
			// The same seed in both twins: both applications send the same queries.
			g := gen.Fork(s.o.seed + 10 + uint64(si))
			wg.Go(func() { application(wctx, tw.pool, spec, g, s.o.qps, &s.prog, tw.lat[spec.index]) })
		}
	}
	wg.Go(func() { s.follow(wctx) })
	s.quietStart = time.Now()
	s.churnStart = s.quietStart.Add(s.o.quiet)
	s.end = s.churnStart.Add(s.o.duration)
	s.printf("quiet period until %s, churn until %s (UTC)\n", s.churnStart.UTC().Format("15:04:05"), s.end.UTC().Format("15:04:05"))
	if err := s.sampleAll(ctx, phaseQuiet); err != nil {
		return err
	}
	churnStarted := false
	tk := time.NewTicker(s.o.sampleEvery)
	defer tk.Stop()
	for {
		now := time.Now()
		if !churnStarted && !now.Before(s.churnStart) {
			churnStarted = true
			s.note("churn begins")
			wg.Go(func() { s.churn(wctx) })
			if s.o.snapshotEvery > 0 {
				for _, tw := range s.twins {
					wg.Go(func() { s.holdSnapshots(wctx, tw) })
				}
			}
		}
		if !now.Before(s.end) {
			stop()
			wg.Wait()
			return s.sampleAll(ctx, phaseChurn)
		}
		wait := time.Until(s.end)
		if !churnStarted {
			wait = min(wait, time.Until(s.churnStart))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tk.C:
			phase := phaseChurn
			if !churnStarted {
				phase = phaseQuiet
			}
			if err := s.sampleAll(ctx, phase); err != nil {
				return err
			}
		case <-time.After(max(wait, 0)):
		}
	}
}

// sampleAll measures every index of both twins with the same probe queries and prints one
// line per twin and index.
func (s *soak) sampleAll(ctx context.Context, phase string) error {
	now := time.Now()
	for _, spec := range soakIndexes() {
		queries := s.probeQueries(spec, s.o.probeQueries)
		var line []string
		for _, tw := range s.twins {
			sm, err := s.sampleOne(ctx, tw, spec, queries)
			if err != nil {
				if ctx.Err() != nil {
					return ctx.Err()
				}
				s.note("sample %s %s: %v", tw.name, spec.index, err)
				continue
			}
			sm.At, sm.Elapsed, sm.Phase = now, now.Sub(s.quietStart), phase
			s.mu.Lock()
			s.samples = append(s.samples, sm)
			s.mu.Unlock()
			line = append(line, fmt.Sprintf("%-8s recall %.3f short %d/%d p50 %s p99 %s size %s dead %d%s", tw.name, sm.Recall, sm.Short, sm.Probes,
				figure.Value("_seconds", sm.P50), figure.Value("_seconds", sm.P99), figure.Value("_bytes", float64(sm.Size)), sm.Dead, vacuumMark(sm.Vacuuming)))
		}
		s.printf("%s +%-6s %-5s %-14s %s\n", now.UTC().Format("15:04:05"), fmtElapsed(now.Sub(s.quietStart)), phase, spec.index, strings.Join(line, " | "))
	}
	return nil
}

func vacuumMark(v bool) string {
	if v {
		return " (vacuum running)"
	}
	return ""
}

func fmtElapsed(d time.Duration) string {
	d = d.Round(time.Second)
	return fmt.Sprintf("%d:%02d", int(d.Minutes()), int(d.Seconds())%60)
}

func (s *soak) sampleOne(ctx context.Context, tw *twin, spec indexSpec, queries [][]float32) (sample, error) {
	pr, err := probeRecall(ctx, tw.dsn, spec, queries)
	if err != nil {
		return sample{}, err
	}
	st, err := readStats(ctx, tw.pool, spec)
	if err != nil {
		return sample{}, err
	}
	w := tw.lat[spec.index].take()
	return sample{Twin: tw.name, Index: spec.index, Recall: pr.recall, Short: pr.short, Probes: len(queries), Setting: pr.setting,
		AppN: w.queries, AppErrors: w.errors, P50: w.p50, P99: w.p99, Filtered: w.filtered, FiltShort: w.filteredShort,
		Size: st.sizeBytes, Live: st.live, Dead: st.dead, Autovac: st.autovacuums, Vacuuming: st.vacuumRunning}, nil
}

// churn applies one planned second of writes to both twins per second until ctx ends. Both
// twins get each tick before the next is planned, so a twin slowed by a repair delays the
// other rather than receiving different writes.
func (s *soak) churn(ctx context.Context) {
	c := newChurner(s.o.seed+1000, s.docsGen.Fork(s.o.seed+1001), s.eventsGen.Fork(s.o.seed+1002), s.o.rows, s.o.rows/5, s.o.churnRate, s.o.driftRate)
	tk := time.NewTicker(time.Second)
	defer tk.Stop()
	for n := 0; ; n++ {
		select {
		case <-ctx.Done():
			return
		case <-tk.C:
		}
		f := math.Min(time.Since(s.churnStart).Seconds()/s.o.duration.Seconds(), 1)
		s.prog.set(f)
		t := c.next(f)
		err := s.both(func(tw *twin) error { return t.apply(ctx, tw.pool) })
		if err != nil && ctx.Err() == nil {
			s.note("churn tick %d: %v", n, err)
		}
	}
}

// holdSnapshots opens a repeatable-read transaction in tw -snapshot-every after the previous
// one was released (the first after half of it) and keeps it, idle, for -snapshot-hold. Source: DESIGN's "old
// snapshots that keep dead rows" (idle-in-transaction sessions, long reports, replication
// slots): while it is open no VACUUM or REINDEX can remove the rows deleted after it began.
func (s *soak) holdSnapshots(ctx context.Context, tw *twin) {
	next := s.o.snapshotEvery / 2
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		next = s.o.snapshotEvery
		if err := s.holdOne(ctx, tw); err != nil && ctx.Err() == nil {
			s.note("old snapshot in %s: %v", tw.name, err)
		}
	}
}

func (s *soak) holdOne(ctx context.Context, tw *twin) error {
	conn, err := pgx.Connect(ctx, tw.dsn)
	if err != nil {
		return err
	}
	defer conn.Close(context.WithoutCancel(ctx))
	tx, err := conn.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead})
	if err != nil {
		return err
	}
	defer tx.Rollback(context.WithoutCancel(ctx))
	var n int64
	if err := tx.QueryRow(ctx, "SELECT count(*) FROM "+pgx.Identifier{docsTable}.Sanitize()+" WHERE id = 1").Scan(&n); err != nil {
		return err
	}
	s.note("old snapshot in %s held for %s", tw.name, s.o.snapshotHold)
	select {
	case <-ctx.Done():
		return nil
	case <-time.After(s.o.snapshotHold):
	}
	s.note("old snapshot in %s released", tw.name)
	return tx.Commit(ctx)
}

// follow polls Prometheus and the state store, prints alerts and repairs as they happen, and
// keeps every alert episode: an alert (its whole label set) firing in a poll where it was not
// firing in the one before. The watcher's timeline keys alerts by name, index and severity,
// which two rules of one alert can share (a warning at |z| > 3 and another at |z| > 4), so
// its firing events repeat while one of them is pending; the label set tells them apart.
func (s *soak) follow(ctx context.Context) {
	firing := map[string]bool{}
	for {
		if evs, err := s.watch.Poll(ctx); err == nil {
			for _, e := range evs {
				switch e.Kind {
				case e2e.AlertFiring, e2e.AlertResolved, e2e.RepairRunning, e2e.RepairFinished, e2e.StepFinished:
					s.printf("    %s\n", strings.TrimSpace(e.String()))
				}
			}
		}
		if alerts, err := s.stack.PrometheusAlerts(ctx); err == nil {
			now := map[string]bool{}
			for _, a := range alerts {
				if a.State != "firing" {
					continue
				}
				fp := e2e.LabelKey(a.Labels)
				now[fp] = true
				if !firing[fp] {
					s.mu.Lock()
					s.alerts = append(s.alerts, alertMark{At: time.Now(), Alert: a.Labels["alertname"], Index: a.Labels["indexrelname"], Severity: a.Labels["severity"]})
					s.mu.Unlock()
				}
			}
			firing = now
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(5 * time.Second):
		}
	}
}
