package strategy

import (
	"context"
	"encoding/json"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Analyze runs ANALYZE on the index's table. Stale statistics (a table that grew or changed
// shape since the last ANALYZE) make the planner misjudge an index scan and fall back to a
// sequential scan for vector queries; fresh ones bring the index back.
type Analyze struct{ opts Options }

// AnalyzeConfig are the parameters of an analyze step.
type AnalyzeConfig struct {
	Figures []string
}

// Spec implements Strategy.
func (*Analyze) Spec() Spec {
	return Spec{
		Name:        "analyze",
		Description: "ANALYZE the index's table so the planner sees today's row counts and uses the index again.",
		Params:      []Param{figuresParam},
		// ANALYZE refreshes the live-row estimate; the probe says whether the planner uses
		// the index again.
		Figures: map[string][]string{"": {"pgvector_probe_index_used", "pgvector_table_live_tuples"}},
	}
}

// Decode implements Strategy.
func (*Analyze) Decode(v Values) (AnalyzeConfig, error) {
	return AnalyzeConfig{Figures: v.Figures()}, nil
}

// Plan implements Strategy.
func (*Analyze) Plan(_ context.Context, _ Env, ix catalog.Index, _ AnalyzeConfig) (Impact, error) {
	return Impact{
		LockLevel:  "SHARE UPDATE EXCLUSIVE",
		IndexBytes: ix.SizeBytes,
		Statements: []string{"ANALYZE " + ix.QuotedTable()},
		Notes:      "reads a sample of the table; reads and writes continue",
	}, nil
}

// Run implements Strategy.
func (a *Analyze) Run(ctx context.Context, env Env, ix catalog.Index, c AnalyzeConfig) (Outcome, error) {
	stmt := "ANALYZE " + ix.QuotedTable()
	figures := chooseFigures(env, c.Figures, a.Spec().DefaultFigures(ix.Method))
	out := Outcome{Before: figuresBefore(ctx, env, ix, figures)}
	if err := runMaintenance(ctx, env, a.opts, ix, stmt, ""); err != nil {
		return out, err
	}
	out.Statements = []string{stmt}
	// Plans cached by existing sessions may still hold the old choice; the figure is measured
	// on a fresh session like a new client would get.
	fresh, err := freshPool(ctx, env.Pool, nil)
	if err != nil {
		return out, err
	}
	defer fresh.Close()
	out.After = measureFigures(ctx, env, fresh, ix, figures)
	return out, nil
}

// Rollback implements Strategy: statistics cannot be put back and need not be.
func (*Analyze) Rollback(context.Context, Env, catalog.Index, AnalyzeConfig, json.RawMessage) error {
	return nil
}
