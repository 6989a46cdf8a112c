// Package strategy defines what a repair strategy is (plan with an impact estimate, run,
// rollback) and holds the strategies vectorheal ships: reindex, vacuum, ivfflat_retrain,
// tune_search, analyze and sql. The engine runs them; the runbook names them.
package strategy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"sort"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Params are a step's parameters as written in the runbook (decoded YAML scalars, lists, maps).
type Params map[string]any

// Measurer re-measures a figure of one index directly in the database, without waiting for a
// scrape. Figures are named like the exporter's metrics; where a metric has a state or layer
// label the figure names it after a colon, e.g. "pgvector_hnsw_heap_tids:dead".
type Measurer interface {
	// Measure returns the current value of figure for ix in the database behind pool.
	Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error)
	// Figures lists the names Measure understands, for runbook validation.
	Figures() []string
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
}

// Impact is the estimate recorded before a step runs.
type Impact struct {
	LockLevel         string        `json:"lock_level"`         // strongest lock taken, e.g. "SHARE UPDATE EXCLUSIVE"
	IndexBytes        int64         `json:"index_bytes"`        // size of the index now
	DiskBytesNeeded   int64         `json:"disk_bytes_needed"`  // extra disk space while it runs
	EstimatedDuration time.Duration `json:"estimated_duration"` // 0 when unknown; the engine may refine it from history
	Statements        []string      `json:"statements"`         // SQL the step will run, for dry-run and history
	Notes             string        `json:"notes,omitempty"`
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

// Strategy is one kind of repair.
type Strategy interface {
	// Name is the fixed name used in runbooks.
	Name() string
	// Description says in one sentence what it does, for --help and docs.
	Description() string
	// CheckParams validates a step's parameters; its error names the parameter.
	CheckParams(p Params) error
	// Plan estimates the impact without changing anything.
	Plan(ctx context.Context, env Env, ix catalog.Index, p Params) (Impact, error)
	// Run performs the repair. It must honour ctx (a timeout cancels the running statement)
	// and be safe to run twice. On error the returned Outcome still carries Undo if anything
	// needs undoing.
	Run(ctx context.Context, env Env, ix catalog.Index, p Params) (Outcome, error)
	// Rollback undoes what Run did, using Undo; it is a no-op when there is nothing to undo.
	Rollback(ctx context.Context, env Env, ix catalog.Index, p Params, undo json.RawMessage) error
}

// Registry maps names to strategies.
type Registry struct{ byName map[string]Strategy }

// NewRegistry returns a registry of the given strategies; names must be unique.
func NewRegistry(ss ...Strategy) (*Registry, error) {
	r := &Registry{byName: map[string]Strategy{}}
	for _, s := range ss {
		if _, dup := r.byName[s.Name()]; dup {
			return nil, fmt.Errorf("strategy %q registered twice", s.Name())
		}
		r.byName[s.Name()] = s
	}
	return r, nil
}

// Get returns the strategy called name.
func (r *Registry) Get(name string) (Strategy, bool) {
	s, ok := r.byName[name]
	return s, ok
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
