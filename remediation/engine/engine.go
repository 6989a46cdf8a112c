package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// queueName is the River queue repairs run on.
const queueName = "repair"

// AlertChecker asks Alertmanager about one alert; *amclient.Client implements it.
type AlertChecker interface {
	Alert(ctx context.Context, labels map[string]string, fingerprint string) (amclient.AlertState, error)
}

// Options configure an Engine.
type Options struct {
	// State is the state store pool, search_path set to Schema (store.Open). Required.
	State *pgxpool.Pool
	// Schema of the state store, where River's tables live too. Required.
	Schema string
	// Targets are the databases repairs run on. Required.
	Targets *targets.Set
	// Strategies by name. Required.
	Strategies *strategy.Registry
	// Measurer re-measures figures for validation. Required.
	Measurer strategy.Measurer
	// Runbook returns the current runbook (runbook.Holder.Get); nil or a nil result matches
	// nothing, so alerts are recorded and no repair is queued.
	Runbook func() *runbook.Runbook
	// Alertmanager, when set, is asked right before a repair whether its alert still fires
	// and is not silenced or inhibited. Nil skips that check.
	Alertmanager AlertChecker
	// Config holds the limits (max concurrent repairs, flap guard, circuit breaker, default
	// timeout, history retention) with their defaults set: as config.Load returns it, or
	// config.DefaultRemediation(). New refuses a Config that is not valid; it sets no
	// defaults of its own.
	Config config.Remediation
	// Workers runs repairs in this process. False makes an engine that only queues (intake
	// replicas) and answers the API.
	Workers bool
	// ID names this process in River and in repairs.runner. Default hostname-pid.
	ID string
	// LockRetry is how long a repair waits before trying again when its index is locked by
	// another repair or Alertmanager cannot be reached. Default 30s.
	LockRetry time.Duration
	// RescueAfter is how long a job may run before River hands it to another worker, which
	// then finishes or rolls back the repair. Default: the longest repair timeout plus 10m.
	RescueAfter time.Duration
	// PollInterval is how often idle workers look for jobs besides River's notifications.
	// Default 1s.
	PollInterval time.Duration
	// RollbackTimeout bounds a rollback after a step failed or timed out. Default 10m.
	RollbackTimeout time.Duration
	// RecoverInterval is how often workers look for repairs left running by a process that
	// died (their index lock is free) and roll them back. Default 1m.
	RecoverInterval time.Duration
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for the metrics of Metrics(); nil registers nothing.
	Registerer prometheus.Registerer
}

// Engine queues and runs repairs.
type Engine struct {
	o       Options
	repairs repairStore // all SQL on the repairs table
	river   *river.Client[pgx.Tx]
	log     *slog.Logger
	metrics *metrics
	http    *http.Client // asks Prometheus for the free space of builds (builds.free_space_query)

	mu      sync.Mutex
	stop    context.CancelFunc
	wg      sync.WaitGroup
	started bool
}

// New validates o and builds an engine; Start begins working.
func New(o Options) (*Engine, error) {
	switch {
	case o.State == nil:
		return nil, errors.New("engine: State pool is required")
	case o.Schema == "":
		return nil, errors.New("engine: Schema is required")
	case o.Targets == nil:
		return nil, errors.New("engine: Targets are required")
	case o.Strategies == nil:
		return nil, errors.New("engine: Strategies are required")
	case o.Measurer == nil:
		return nil, errors.New("engine: Measurer is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.ID == "" {
		host, _ := os.Hostname()
		o.ID = fmt.Sprintf("%s-%d", host, os.Getpid())
	}
	if o.LockRetry <= 0 {
		o.LockRetry = 30 * time.Second
	}
	if o.PollInterval <= 0 {
		o.PollInterval = time.Second
	}
	if o.RollbackTimeout <= 0 {
		o.RollbackTimeout = 10 * time.Minute
	}
	if o.RecoverInterval <= 0 {
		o.RecoverInterval = time.Minute
	}
	if err := o.Config.Check(); err != nil {
		return nil, fmt.Errorf("engine: %w", err)
	}
	if o.RescueAfter <= 0 {
		o.RescueAfter = o.Config.DefaultTimeout + 10*time.Minute
	}
	e := &Engine{o: o, repairs: repairStore{pool: o.State}, log: o.Logger.With("component", "engine"),
		http: &http.Client{Timeout: freeSpaceTimeout}}
	m, err := newMetrics(o.Registerer, e)
	if err != nil {
		return nil, err
	}
	e.metrics = m

	rc := &river.Config{
		ID:                   o.ID,
		Schema:               o.Schema,
		Logger:               o.Logger.With("component", "river"),
		FetchPollInterval:    o.PollInterval,
		FetchCooldown:        minDur(o.PollInterval, 100*time.Millisecond),
		RescueStuckJobsAfter: o.RescueAfter,
		// A repair records its own failures; River retries only when the state store failed.
		MaxAttempts: 10,
		// Finished jobs carry nothing the repairs table does not; keep them a day for debugging.
		CompletedJobRetentionPeriod: 24 * time.Hour,
		CancelledJobRetentionPeriod: 24 * time.Hour,
	}
	if o.Workers {
		workers := river.NewWorkers()
		if err := river.AddWorkerSafely(workers, &repairWorker{e: e}); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
		rc.Workers = workers
		rc.Queues = map[string]river.QueueConfig{queueName: {MaxWorkers: o.Config.MaxConcurrentRepairs}}
	}
	client, err := river.NewClient(riverpgxv5.New(o.State), rc)
	if err != nil {
		return nil, fmt.Errorf("engine: river client: %w", err)
	}
	e.river = client
	return e, nil
}

func minDur(a, b time.Duration) time.Duration {
	if a < b {
		return a
	}
	return b
}

// Start recovers repairs whose process died, then starts the workers and the history pruner.
// It returns once they run; Stop ends them.
func (e *Engine) Start(ctx context.Context) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.started {
		return errors.New("engine: already started")
	}
	if !e.o.Workers {
		e.started = true
		return nil
	}
	if err := e.recoverOrphans(ctx); err != nil {
		return fmt.Errorf("engine: %w", err)
	}
	// River cancels running jobs when its start context ends; only Stop and StopAndCancel
	// should do that, so a graceful shutdown lets repairs finish.
	if err := e.river.Start(context.WithoutCancel(ctx)); err != nil {
		return fmt.Errorf("engine: start workers: %w", err)
	}
	runCtx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	e.stop = cancel
	e.wg.Go(func() { e.pruneLoop(runCtx) })
	e.wg.Go(func() { e.recoverLoop(runCtx) })
	e.started = true
	return nil
}

// Stop stops taking new repairs and waits for running ones until ctx ends; then their
// contexts are cancelled, their statements stop, and the repairs are left for the next
// engine to roll back.
func (e *Engine) Stop(ctx context.Context) error {
	return e.shutdown(ctx, false)
}

// StopAndCancel stops at once, cancelling running repairs (a hard stop).
func (e *Engine) StopAndCancel(ctx context.Context) error {
	return e.shutdown(ctx, true)
}

// shutdown stops the engine's loops and then its workers, gracefully unless hard (or until
// ctx ends, which turns a graceful stop into a hard one).
func (e *Engine) shutdown(ctx context.Context, hard bool) error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if !e.started {
		return nil
	}
	e.started = false
	if e.stop != nil {
		e.stop()
		e.wg.Wait()
	}
	if !e.o.Workers {
		return nil
	}
	if hard {
		return e.river.StopAndCancel(ctx)
	}
	err := e.river.Stop(ctx)
	if errors.Is(err, context.DeadlineExceeded) || errors.Is(err, context.Canceled) {
		return e.river.StopAndCancel(context.WithoutCancel(ctx))
	}
	return err
}

// ID is the name of this engine in repairs.runner.
func (e *Engine) ID() string { return e.o.ID }

func (e *Engine) currentRunbook() *runbook.Runbook {
	if e.o.Runbook == nil {
		return nil
	}
	return e.o.Runbook()
}

// recoverLoop finds repairs whose process died while another replica keeps running, without
// waiting for River to rescue their jobs.
func (e *Engine) recoverLoop(ctx context.Context) {
	t := time.NewTicker(e.o.RecoverInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := e.recoverOrphans(ctx); err != nil && ctx.Err() == nil {
			e.log.Warn("recover interrupted repairs", "err", err)
		}
	}
}

// pruneLoop deletes history older than the retention, hourly.
func (e *Engine) pruneLoop(ctx context.Context) {
	t := time.NewTicker(time.Hour)
	defer t.Stop()
	for {
		if n, err := e.Prune(ctx); err != nil {
			if ctx.Err() != nil {
				return
			}
			e.log.Warn("prune history", "err", err)
		} else if n > 0 {
			e.log.Info("pruned history", "rows", n)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// Prune deletes finished repairs (with their steps), received alerts and done check
// requests older than config.Remediation.HistoryRetention. It returns the rows deleted.
func (e *Engine) Prune(ctx context.Context) (int64, error) {
	cutoff := time.Now().Add(-e.o.Config.HistoryRetention)
	total, err := e.repairs.prune(ctx, cutoff)
	if err != nil {
		return total, err
	}
	tag, err := e.o.State.Exec(ctx, `DELETE FROM check_requests WHERE requested_at < $1`, cutoff)
	if err != nil {
		return total, fmt.Errorf("prune: %w", err)
	}
	return total + tag.RowsAffected(), nil
}
