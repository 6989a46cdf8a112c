package exporter

import (
	"context"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
)

// indexCheck returns the run of one background check of one index. Its result replaces the
// index's previous one; a failure drops the previous result (a stale figure would mislead) and
// is logged when it differs from the last outcome, not on every run.
func (e *Exporter) indexCheck(t *target, st *index, kind string, c config.Check, j *job) func(context.Context) {
	return func(ctx context.Context) {
		defer t.finish(j, c.Interval)
		release, ok := e.acquire(ctx, t, t.dueAt(j))
		if !ok {
			return
		}
		defer release()

		t.mu.Lock()
		ix, build, reader, have := st.ix, st.build, t.reader, st.asBuilt
		var centers [][]float32
		if st.structure != nil && st.structure.ivf != nil {
			centers = st.structure.ivf.Centers
		}
		t.mu.Unlock()

		start := time.Now()
		var apply func()
		var err error
		switch kind {
		case kindStructure:
			if reader.index == "" {
				return // vectorheal_page_reader_available says why; not a failure of the check
			}
			var s *structure
			pool, on := e.readsOn(ctx, t)
			err = e.retryConflicts(ctx, t, on, func() (err error) {
				s, err = scanStructureBudgeted(ctx, pool, ix, reader, e.cfg, &t.budget)
				return err
			})
			var base *asBuilt
			if err == nil {
				base = e.noteStructureBaseline(ctx, t, ix, build, have, s)
			}
			apply = func() {
				st.structure = s
				if base != nil && st.build.relfilenode == build.relfilenode {
					st.asBuilt = base
				}
				for _, k := range faultKindsOf(s) {
					if st.faultKinds == nil {
						st.faultKinds = map[string]bool{}
					}
					st.faultKinds[k] = true
				}
			}
		case kindRecall:
			var r *recallResult
			pool, on := e.readsOn(ctx, t)
			err = e.retryConflicts(ctx, t, on, func() (err error) {
				r, err = probe(ctx, pool, ix, e.cfg.Recall.Queries, e.cfg.Recall.Newest(), e.cfg.Recall.K, c.Timeout)
				return err
			})
			var base *asBuilt
			if err == nil {
				base = e.noteRecallBaseline(ctx, t, ix, build, have, r)
			}
			apply = func() {
				st.recall = r
				if base != nil && st.build.relfilenode == build.relfilenode {
					st.asBuilt = base
				}
				if r != nil {
					for _, l := range r.latencies {
						st.latency.observe(l)
					}
				}
			}
		case kindDrift:
			if build.relfilenode == 0 {
				return // build not tracked yet
			}
			if ix.Method == "ivfflat" && reader.index != "" && !e.cfg.Structure.Disabled && centers == nil {
				// Wait for the centers of a page scan rather than switch definitions between runs.
				return
			}
			var score float64
			var ok bool
			score, ok, err = driftScore(ctx, t.Pool, ix, build.xidAtBuild, e.cfg.Drift.SampleSize, centers, c.Timeout)
			apply = func() {
				st.drift = nil
				if ok {
					st.drift = &score
				}
			}
		}
		if ctx.Err() != nil {
			return // shutting down: not a result
		}

		t.mu.Lock()
		defer t.mu.Unlock()
		if t.indexes[ix.OID] != st {
			return // dropped while the check ran
		}
		if err != nil {
			switch kind {
			case kindStructure:
				st.structure = nil
			case kindRecall:
				st.recall = nil
				st.probeErrs++
			case kindDrift:
				st.drift = nil
			}
		} else {
			apply()
		}
		t.noteOutcome(kind, ix.String(), err)
		t.record(kind, ix.OID, start, err)
	}
}

// customCheck returns the run of one user SQL metric on t.
func (e *Exporter) customCheck(t *target, m config.CustomMetric, j *job) func(context.Context) {
	return func(ctx context.Context) {
		defer t.finish(j, m.Interval)
		release, ok := e.acquire(ctx, t, t.dueAt(j))
		if !ok {
			return
		}
		defer release()
		start := time.Now()
		res, err := runCustom(ctx, t.Pool, m)
		if ctx.Err() != nil {
			return
		}
		t.mu.Lock()
		defer t.mu.Unlock()
		if err != nil {
			delete(t.custom, m.Name)
		} else {
			t.custom[m.Name] = res
		}
		t.noteOutcome(kindCustom+m.Name, "", err)
		t.record(kindCustom+m.Name, 0, start, err)
	}
}

// noteOutcome logs a check's failure when it is new or different, and its recovery. t.mu
// must be held.
func (t *target) noteOutcome(kind, ix string, err error) {
	if t.lastErr == nil {
		t.lastErr = map[string]string{}
	}
	key := kind + " " + ix
	prev := t.lastErr[key]
	attrs := []any{"check", kind}
	if ix != "" {
		attrs = append(attrs, "index", ix)
	}
	switch {
	case err != nil && err.Error() != prev:
		t.lastErr[key] = err.Error()
		t.logger.Warn("check failed", append(attrs, "err", err)...)
	case err == nil && prev != "":
		delete(t.lastErr, key)
		t.logger.Info("check succeeds again", attrs...)
	}
}
