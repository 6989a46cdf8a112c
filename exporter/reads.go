package exporter

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/standby"
)

// Where a check that reads the index itself (page scans, probes) reads.
const (
	onPrimary = "primary"
	onStandby = "standby"
)

// lagRecheck is how long a reading of a standby's replay lag is trusted: checks starting within
// it share one reading.
const lagRecheck = 5 * time.Second

// replica is what the exporter knows of a target's standby.
type replica struct {
	mu        sync.Mutex
	read      time.Time   // when lag was read; zero before the first reading
	lag       standby.Lag // the last reading
	err       error       // the last reading's error
	on        string      // where the last check chose to read: onStandby or onPrimary
	why       string      // why it read on the primary, "" when on the standby
	conflicts float64     // reads the standby cancelled for a replay conflict, retried
}

// readsOn returns the pool a check that reads the index itself uses on t, and which server it
// is: the standby when t has one whose replay is within standby.max_lag, the primary
// otherwise. A standby that cannot be asked, or lags, is logged when that changes, and the check
// reads on the primary: a figure a little costlier is worth more than no figure.
func (e *Exporter) readsOn(ctx context.Context, t *target) (*pgxpool.Pool, string) {
	if t.Standby == nil {
		return t.Pool, onPrimary
	}
	r := &t.replica
	r.mu.Lock()
	defer r.mu.Unlock()
	if time.Since(r.read) >= lagRecheck {
		r.lag, r.err = standby.ReadLag(ctx, t.Pool, t.Standby)
		r.read = time.Now()
	}
	why := ""
	switch {
	case r.err != nil:
		why = fmt.Sprintf("standby replay lag unknown: %v", r.err)
	case r.lag.Paused:
		why = "standby replay is paused"
	case time.Duration(r.lag.Seconds*float64(time.Second)) > t.Target.Target.Standby.MaxLag:
		why = fmt.Sprintf("standby replay %.0fs behind, over standby.max_lag %s", r.lag.Seconds, t.Target.Target.Standby.MaxLag)
	}
	if why != r.why || r.on == "" {
		if why == "" {
			t.logger.Info("checks that read the index read on the standby")
		} else {
			t.logger.Warn("checks that read the index read on the primary", "why", why)
		}
	}
	r.why = why
	if why != "" {
		r.on = onPrimary
		return t.Pool, onPrimary
	}
	r.on = onStandby
	return t.Standby, onStandby
}

// onReads runs read on the pool t's figures are read on (readsOn), with retryConflicts.
func (e *Exporter) onReads(ctx context.Context, t *target, read func(pool *pgxpool.Pool) error) error {
	pool, on := e.readsOn(ctx, t)
	return e.retryConflicts(ctx, t, on, func() error { return read(pool) })
}

// retryConflicts runs read on pool, and when it reads on a standby and the standby cancelled it
// for a replay conflict (standby.IsReplayConflict), again after a pause, up to 3 tries in all:
// a conflict says nothing about the index, only that replay needed what the read held.
func (e *Exporter) retryConflicts(ctx context.Context, t *target, on string, read func() error) error {
	pause := time.Second
	for try := 1; ; try++ {
		err := read()
		if err == nil || on != onStandby || try == 3 || !standby.IsReplayConflict(err) {
			return err
		}
		t.replica.mu.Lock()
		t.replica.conflicts++
		t.replica.mu.Unlock()
		t.logger.Info("standby read cancelled by a replay conflict, retrying", "try", try, "err", err)
		select {
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		case <-time.After(pause):
		}
		pause *= 4
	}
}

// emit sends the standby's figures of target: where checks read, the replay lag and the
// conflicts retried. r.mu is taken here.
func (r *replica) emit(m emitter, target string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.on == "" {
		return // no check has chosen yet
	}
	for _, on := range []string{onPrimary, onStandby} {
		m.gauge("vectorheal_index_reads_server", b2f(r.on == on), target, on)
	}
	m.counter("vectorheal_standby_replay_conflicts_total", r.conflicts, target)
	if r.err == nil {
		m.gauge("vectorheal_standby_replay_lag_seconds", r.lag.Seconds, target)
		m.gauge("vectorheal_standby_replay_lag_bytes", float64(r.lag.Bytes), target)
		m.gauge("vectorheal_standby_replay_paused", b2f(r.lag.Paused), target)
	}
}
