package exporter

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
)

// indexChecker is one kind of background check of an index (kindStructure, kindRecall,
// kindDrift). It measures only; indexCheck is the one wrapper around every kind that takes a
// check slot, times the run, stores or drops its result under the target's lock, logs a
// changed outcome and records the run's duration and success.
type indexChecker interface {
	// measure reads in.ix and returns what to store in the index's state, or skip when
	// there is nothing to measure now (which is not a failure).
	measure(ctx context.Context, e *Exporter, t *target, in checkInput) (apply func(st *index), skip bool, err error)
	// clear drops the index's previous result after a failed run: a stale figure would
	// mislead.
	clear(st *index)
}

// checkInput is what a check reads of the index's state, copied under the target's lock.
type checkInput struct {
	ix      catalog.Index
	build   buildInfo
	reader  pageReader
	have    *asBuilt
	centers [][]float32 // the IVFFlat centers of the last page scan, for drift
	timeout time.Duration
}

// indexCheck returns the run of one background check of one index. Its result replaces the
// index's previous one; a failure drops the previous result (a stale figure would mislead) and
// is logged when it differs from the last outcome, not on every run.
func (e *Exporter) indexCheck(t *target, st *index, kind string, check indexChecker, c config.Check, j *job) func(context.Context) {
	return func(ctx context.Context) {
		defer t.finish(j, c.Interval)
		release, ok := e.acquire(ctx, t, t.dueAt(j))
		if !ok {
			return
		}
		defer release()

		t.mu.Lock()
		in := checkInput{ix: st.ix, build: st.build, reader: t.reader, have: st.asBuilt, timeout: c.Timeout}
		if st.structure != nil && st.structure.ivf != nil {
			in.centers = st.structure.ivf.Centers
		}
		t.mu.Unlock()

		start := time.Now()
		apply, skip, err := check.measure(ctx, e, t, in)
		if skip || ctx.Err() != nil {
			return // nothing to measure now, or shutting down: not a result
		}

		t.mu.Lock()
		defer t.mu.Unlock()
		if t.indexes[in.ix.OID] != st {
			return // dropped while the check ran
		}
		if err != nil {
			check.clear(st)
		} else {
			apply(st)
		}
		t.noteOutcome(kind, in.ix.String(), err)
		t.record(kind, in.ix.OID, start, err)
	}
}

// keepBaseline makes base the index's as-built baseline, unless the index was rebuilt while
// the check ran (its baseline is then the new build's to note).
func (in checkInput) keepBaseline(st *index, base *asBuilt) {
	if base != nil && st.build.relfilenode == in.build.relfilenode {
		st.asBuilt = base
	}
}

// structureCheck reads the index's pages (scanStructureBudgeted), on the standby where the
// target has one, and notes the as-built baseline of a new build.
type structureCheck struct{}

func (structureCheck) measure(ctx context.Context, e *Exporter, t *target, in checkInput) (func(*index), bool, error) {
	if in.reader.index == "" {
		return nil, true, nil // vectorheal_page_reader_available says why; not a failure of the check
	}
	var s *structure
	err := e.onReads(ctx, t, func(pool *pgxpool.Pool) (err error) {
		s, err = scanStructureBudgeted(ctx, pool, in.ix, in.reader, e.cfg, &t.budget)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	base := e.noteStructureBaseline(ctx, t, in.ix, in.build, in.have, s)
	return func(st *index) {
		st.structure = s
		in.keepBaseline(st, base)
		for _, k := range faultKindsOf(s) {
			if st.faultKinds == nil {
				st.faultKinds = map[string]bool{}
			}
			st.faultKinds[k] = true
		}
	}, false, nil
}

func (structureCheck) clear(st *index) { st.structure = nil }

// recallCheck runs the recall probe (probe), on the standby where the target has one, and
// notes the as-built recall of a new build.
type recallCheck struct{}

func (recallCheck) measure(ctx context.Context, e *Exporter, t *target, in checkInput) (func(*index), bool, error) {
	var r *recallResult
	err := e.onReads(ctx, t, func(pool *pgxpool.Pool) (err error) {
		r, err = probe(ctx, pool, in.ix, e.cfg.Recall.Queries, e.cfg.Recall.Newest(), e.cfg.Recall.K, in.timeout)
		return err
	})
	if err != nil {
		return nil, false, err
	}
	base := e.noteRecallBaseline(ctx, t, in.ix, in.build, in.have, r)
	return func(st *index) {
		st.recall = r
		in.keepBaseline(st, base)
		if r != nil {
			for _, l := range r.latencies {
				st.latency.observe(l)
			}
		}
	}, false, nil
}

// clear counts the failed probe (pgvector_probe_errors_total) besides dropping its result.
func (recallCheck) clear(st *index) {
	st.recall = nil
	st.probeErrs++
}

// driftCheck scores the rows written since the build against the build-time ones
// (driftScore), on the primary: it reads rows by transaction ID.
type driftCheck struct{}

func (driftCheck) measure(ctx context.Context, e *Exporter, t *target, in checkInput) (func(*index), bool, error) {
	if in.build.relfilenode == 0 {
		return nil, true, nil // build not tracked yet
	}
	if in.ix.Method == "ivfflat" && in.reader.index != "" && !e.cfg.Structure.Disabled && in.centers == nil {
		// Wait for the centers of a page scan rather than switch definitions between runs.
		return nil, true, nil
	}
	score, ok, err := driftScore(ctx, t.Pool, in.ix, in.build.xidAtBuild, e.cfg.Drift.SampleSize, in.centers, in.timeout)
	if err != nil {
		return nil, false, err
	}
	return func(st *index) {
		st.drift = nil
		if ok {
			st.drift = &score
		}
	}, false, nil
}

func (driftCheck) clear(st *index) { st.drift = nil }

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
