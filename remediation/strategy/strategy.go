// Package strategy defines what a repair strategy is (plan with an impact estimate, run,
// rollback) and holds the strategies vectorheal ships: reindex, vacuum, ivfflat_retrain,
// tune_search, analyze, sql, hnsw_rebuild and reclaim (VACUUM or a rebuild, chosen by cost).
// The engine runs them; the runbook names them.
package strategy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// Params are a step's parameters as written in the runbook (decoded YAML scalars, lists, maps).
type Params map[string]any

// Measurer re-measures figures of one index directly in the database, without waiting for a
// scrape. It is the one interface through which the engine, validation and the strategies
// read an index; the exporter's reader (exporter.Measurer) is the implementation vectorheal
// runs with, and Single adapts a reader of one figure at a time (tests, pure logic). Figures
// are named like the exporter's metrics; where a metric has a state or layer label the figure
// names it after a colon, e.g. "pgvector_hnsw_heap_tids:dead".
type Measurer interface {
	// Measure returns the current value of figure for ix in the database behind pool.
	Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error)
	// Read returns a reading of figures: each one's value or its error, as Measure would,
	// with its source and time, from one read of each source they come from (the pages
	// once for every structure figure): a structural read of a large index takes seconds.
	// The reading may hold other figures of the sources read, so that it can stand for a
	// later one (WithReading).
	Read(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figures ...string) measure.Reading
	// Figures lists the names Measure understands, for runbook validation.
	Figures() []string
	// Settled says whether figure is read from the index itself (its pages, its catalog
	// row), so that its value is settled the moment a step's work is done, unlike figures
	// from statistics or through the planner, which a validation waits for (its wait).
	Settled(figure string) bool
	// AsBuilt returns the value figure had when the index was built (or first seen as
	// built), so a validation can be relative to the index's own build rather than to an
	// absolute number. ok is false when no as-built value is recorded for the index.
	AsBuilt(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (value float64, ok bool, err error)
}

// WithReading is m answering from reading where it holds a figure and measuring the rest: a
// reading taken a moment ago, of the same state of the index, stands for a new one.
// Only the figures the reading holds a value for are taken from it; the others, and those it
// holds an error for, are measured.
func WithReading(m Measurer, reading measure.Reading) Measurer {
	if len(reading) == 0 {
		return m
	}
	return withReading{m, reading}
}

type withReading struct {
	Measurer
	reading measure.Reading
}

func (w withReading) Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	if w.reading.Has(figure) {
		return w.reading.Get(figure)
	}
	return w.Measurer.Measure(ctx, pool, ix, figure)
}

func (w withReading) Read(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figures ...string) measure.Reading {
	held := measure.Reading{}
	var missing []string
	for _, f := range figures {
		if w.reading.Has(f) {
			held[f] = w.reading[f]
		} else {
			missing = append(missing, f)
		}
	}
	if len(missing) == 0 {
		return held
	}
	return held.With(w.Measurer.Read(ctx, pool, ix, missing...))
}

// ReadFunc reads one figure of one index.
type ReadFunc func(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error)

// Single is a Measurer made of a reader of one figure at a time that knows figures: Read
// reads them one by one (values without source or time), no figure is settled and none has an as-built value. It is for
// readers that are pure logic (tests say so where they use it); vectorheal itself measures
// with the exporter's reader.
func Single(figures []string, read ReadFunc) Measurer { return single{figures, read} }

type single struct {
	figures []string
	read    ReadFunc
}

func (s single) Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	return s.read(ctx, pool, ix, figure)
}

func (s single) Read(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figures ...string) measure.Reading {
	r := measure.Reading{}
	for _, f := range figures {
		v, err := s.read(ctx, pool, ix, f)
		r[f] = measure.Value{V: v, Err: err}
	}
	return r
}

func (s single) Figures() []string { return s.figures }
func (single) Settled(string) bool { return false }
func (single) AsBuilt(context.Context, *pgxpool.Pool, catalog.Index, string) (float64, bool, error) {
	return 0, false, nil
}

// Env is what a strategy may use while it works on one index.
type Env struct {
	Target  string        // configured target name
	Pool    *pgxpool.Pool // the target database
	Logger  *slog.Logger
	Measure Measurer
	// Labels of the alert that caused the repair; only the sql strategy uses them, as bound
	// parameters, never spliced into SQL.
	Labels map[string]string
	// Resources are the target's configured room for builds (free disk, parallel workers);
	// nil: nothing configured.
	Resources *Resources
	// History reads earlier steps on this index; nil: no history (a cost estimate then uses
	// the default rates).
	History History
	// Before is a reading of the index taken a moment ago, before this step acts: the
	// engine's own (its health check before a repair's first step) for Plan, and with the
	// plan's Impact.Reading added for Run. On a large index reading the pages again seconds
	// later would cost seconds; a strategy reads the figures it needs before it acts through
	// WithReading(Measure, Before), which measures only what the reading lacks. nil: no
	// reading; never a reading of the index after an earlier step changed it.
	Before measure.Reading
}

// History is what earlier repairs of one index recorded.
type History interface {
	// Steps returns up to limit succeeded steps of strategy on the index, most recent first.
	Steps(ctx context.Context, strategy string, limit int) ([]PastStep, error)
}

// PastStep is one earlier step as history holds it.
type PastStep struct {
	Duration time.Duration
	Impact   Impact // the estimate recorded before it ran
}

// Impact is the estimate recorded before a step runs.
type Impact struct {
	LockLevel         string        `json:"lock_level"`         // strongest lock taken, e.g. "SHARE UPDATE EXCLUSIVE"
	IndexBytes        int64         `json:"index_bytes"`        // size of the index now
	DiskBytesNeeded   int64         `json:"disk_bytes_needed"`  // extra disk space while it runs
	EstimatedDuration time.Duration `json:"estimated_duration"` // 0 when unknown; the engine then estimates it from history
	Statements        []string      `json:"statements"`         // SQL the step will run, for dry-run and history
	Notes             string        `json:"notes,omitempty"`
	// Cost is the estimate a step that chooses its path by cost chose by; nil for the others.
	Cost *CostRecord `json:"cost,omitempty"`
	// Reading holds the figures of the index the plan measured (those it could), so that
	// the run right after it need not read them again: the engine adds them to Run's
	// Env.Before. Not stored: a plan's figures are recorded as the run's Outcome.Before.
	Reading measure.Reading `json:"-"`
}

// Outcome is what a step did.
type Outcome struct {
	Statements []string           `json:"statements"`       // SQL actually run
	Before     map[string]float64 `json:"before,omitempty"` // figures measured before
	After      map[string]float64 `json:"after,omitempty"`  // figures measured after
	// Undo is what Rollback needs (e.g. the previous setting). The engine stores it durably
	// before and after Run, so a rollback works after a crash too.
	Undo json.RawMessage `json:"undo,omitempty"`
}

// Strategy is one kind of repair whose parameters decode into C. It is written as
// alertmanager writes an integration: a Spec (the parameters as data), a Decode that turns
// checked values into the typed C once, when the runbook is loaded, and the work itself on C.
// Define turns it into a Definition for the Registry.
type Strategy[C any] interface {
	// Spec describes the strategy; its Name is fixed forever, it keys runbooks and history.
	Spec() Spec
	// Decode builds the typed parameters from values the Spec has checked (names, types,
	// bounds, defaults); it adds the checks across parameters. Errors name the parameter.
	Decode(v Values) (C, error)
	// Plan estimates the impact without changing anything.
	Plan(ctx context.Context, env Env, ix catalog.Index, c C) (Impact, error)
	// Run performs the repair. It must honour ctx (a timeout cancels the running statement)
	// and be safe to run twice. On error the returned Outcome still carries Undo if anything
	// needs undoing. An error for which RetryLater is true means the step could not start
	// (a busy table, a lock not had in time) and left nothing behind: the engine runs the
	// repair again later without rolling back.
	Run(ctx context.Context, env Env, ix catalog.Index, c C) (Outcome, error)
	// Rollback undoes what Run did, using Undo; it is a no-op when there is nothing to undo.
	Rollback(ctx context.Context, env Env, ix catalog.Index, c C, undo json.RawMessage) error
}

// Definition is a strategy with its parameter type hidden, as the Registry holds it.
type Definition interface {
	Spec() Spec
	// Bind checks and decodes a step's parameters into a Step ready to run.
	Bind(p Params) (Step, error)
}

// Step is a strategy bound to its decoded parameters: what the engine plans, runs and rolls
// back.
type Step interface {
	Spec() Spec
	// Params are the parameters as written, for history.
	Params() Params
	// Figures are the figures the step records on an index of method: its figures parameter,
	// else the strategy's defaults.
	Figures(method string) []string
	Plan(ctx context.Context, env Env, ix catalog.Index) (Impact, error)
	Run(ctx context.Context, env Env, ix catalog.Index) (Outcome, error)
	Rollback(ctx context.Context, env Env, ix catalog.Index, undo json.RawMessage) error
}

// Define makes a Definition of s; this is the one line that registers a strategy.
func Define[C any](s Strategy[C]) Definition { return definition[C]{s} }

type definition[C any] struct{ s Strategy[C] }

func (d definition[C]) Spec() Spec { return d.s.Spec() }

func (d definition[C]) Bind(p Params) (Step, error) {
	if p == nil {
		p = Params{}
	}
	spec := d.s.Spec()
	vals, err := decode(spec, p)
	if err != nil {
		return nil, err
	}
	c, err := d.s.Decode(vals)
	if err != nil {
		return nil, err
	}
	return &bound[C]{s: d.s, spec: spec, params: p, figures: vals.Figures(), c: c}, nil
}

type bound[C any] struct {
	s       Strategy[C]
	spec    Spec
	params  Params
	figures []string
	c       C
}

func (b *bound[C]) Spec() Spec     { return b.spec }
func (b *bound[C]) Params() Params { return b.params }
func (b *bound[C]) Figures(method string) []string {
	if b.figures != nil {
		return b.figures
	}
	return b.spec.DefaultFigures(method)
}
func (b *bound[C]) Plan(ctx context.Context, env Env, ix catalog.Index) (Impact, error) {
	return b.s.Plan(ctx, env, ix, b.c)
}
func (b *bound[C]) Run(ctx context.Context, env Env, ix catalog.Index) (Outcome, error) {
	return b.s.Run(ctx, env, ix, b.c)
}
func (b *bound[C]) Rollback(ctx context.Context, env Env, ix catalog.Index, undo json.RawMessage) error {
	return b.s.Rollback(ctx, env, ix, b.c, undo)
}

// estimator is what a strategy that chooses its path by cost also implements: the choice on
// an index described by in rather than measured, for `vectorheal runbook test`.
type estimator[C any] interface {
	estimate(c C, in CostInput) (Choice, error)
}

func (b *bound[C]) estimate(in CostInput) (Choice, bool, error) {
	e, ok := any(b.s).(estimator[C])
	if !ok {
		return Choice{}, false, nil
	}
	c, err := e.estimate(b.c, in)
	return c, true, err
}

// EstimateStep returns the path st would choose on an index described by in (its Need comes from
// the step's parameters), and false when st's strategy does not choose by cost.
func EstimateStep(st Step, in CostInput) (Choice, bool, error) {
	e, ok := st.(interface {
		estimate(CostInput) (Choice, bool, error)
	})
	if !ok {
		return Choice{}, false, nil
	}
	return e.estimate(in)
}

// Registry maps names to strategies.
type Registry struct{ byName map[string]Definition }

// NewRegistry returns a registry of the given strategies; names must be unique and specs
// well formed.
func NewRegistry(ds ...Definition) (*Registry, error) {
	r := &Registry{byName: map[string]Definition{}}
	for _, d := range ds {
		spec := d.Spec()
		if err := CheckSpec(spec); err != nil {
			return nil, err
		}
		if _, dup := r.byName[spec.Name]; dup {
			return nil, fmt.Errorf("strategy %q registered twice", spec.Name)
		}
		r.byName[spec.Name] = d
	}
	return r, nil
}

// Get returns the strategy called name.
func (r *Registry) Get(name string) (Definition, bool) {
	d, ok := r.byName[name]
	return d, ok
}

// Bind checks params for the strategy called name and returns the step.
func (r *Registry) Bind(name string, p Params) (Step, error) {
	d, ok := r.byName[name]
	if !ok {
		return nil, fmt.Errorf("unknown strategy %q (known: %s)", name, strings.Join(r.Names(), ", "))
	}
	return d.Bind(p)
}

// Names lists the registered strategies, sorted.
func (r *Registry) Names() []string {
	out := make([]string, 0, len(r.byName))
	for n := range r.byName {
		out = append(out, n)
	}
	sort.Strings(out)
	return out
}

// Specs lists the specs of the registered strategies, sorted by name.
func (r *Registry) Specs() []Spec {
	var out []Spec
	for _, n := range r.Names() {
		out = append(out, r.byName[n].Spec())
	}
	return out
}

// ErrRetryLater is wrapped by errors that mean "not now": the table is busy with another
// index build, or a lock could not be had within its timeout. The engine puts such a repair
// back in the queue with a growing delay, and it does not count as a failure.
var ErrRetryLater = errors.New("retry later")

// ErrBusy means another index build is running on the table, so a rebuild now would wait for
// its lock (CREATE INDEX CONCURRENTLY and REINDEX CONCURRENTLY conflict with each other).
var ErrBusy = fmt.Errorf("another index build is running on the table (%w)", ErrRetryLater)

// RetryLater says whether err means the step should run again later rather than fail: it
// wraps ErrRetryLater, or PostgreSQL refused a lock within lock_timeout (55P03).
func RetryLater(err error) bool {
	if errors.Is(err, ErrRetryLater) {
		return true
	}
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "55P03"
}
