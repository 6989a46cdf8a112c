package strategy

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Vacuum runs VACUUM on the index's table. For HNSW this is pgvector's own graph repair: it
// removes the heap TIDs of deleted rows from the elements, marks elements without TIDs deleted
// and reconnects their neighbours. INDEX_CLEANUP ON is explicit because PostgreSQL's default
// (auto) skips index vacuuming when few pages have dead rows, which would skip the repair.
type Vacuum struct{ opts Options }

// VacuumConfig are the parameters of a vacuum step.
type VacuumConfig struct {
	Analyze bool
	Figures []string
}

// Spec implements Strategy.
func (*Vacuum) Spec() Spec {
	return Spec{
		Name:        "vacuum",
		Description: "VACUUM the index's table so pgvector removes deleted rows from the index and repairs the graph around them.",
		Params: []Param{
			{Name: "analyze", Type: TypeBool, Default: "true", Doc: "Also ANALYZE."},
			figuresParam,
		},
		Figures:      withIndexFigures("pgvector_table_dead_tuples"),
		Capabilities: []Capability{RemovesDeadRows},
	}
}

// Decode implements Strategy.
func (*Vacuum) Decode(v Values) (VacuumConfig, error) {
	return VacuumConfig{Analyze: v.Bool("analyze"), Figures: v.Figures()}, nil
}

func vacuumStatement(ix catalog.Index, c VacuumConfig) string {
	opts := "INDEX_CLEANUP ON"
	if c.Analyze {
		opts += ", ANALYZE"
	}
	return "VACUUM (" + opts + ") " + ix.QuotedTable()
}

// Plan implements Strategy. On an HNSW index and a pgvector whose HNSW vacuuming has a known
// issue the note says so: this strategy runs what the runbook asks for, while reclaim is the
// one that avoids VACUUM there.
func (*Vacuum) Plan(ctx context.Context, env Env, ix catalog.Index, c VacuumConfig) (Impact, error) {
	stmt := vacuumStatement(ix, c)
	notes := "reads and writes continue; pgvector repairs HNSW neighbour lists single-threaded, which can take long on big graphs"
	if ix.Method == "hnsw" {
		version, note := installedVersion(ctx, env.Pool)
		if gate := hnswVacuumGate(version); gate != "" {
			notes += "; " + gate + " (the reclaim strategy rebuilds instead)"
		} else if note != "" {
			notes += "; " + note
		}
	}
	return Impact{
		LockLevel:  "SHARE UPDATE EXCLUSIVE",
		IndexBytes: ix.SizeBytes,
		Statements: []string{stmt},
		Notes:      notes,
	}, nil
}

// Run implements Strategy.
func (v *Vacuum) Run(ctx context.Context, env Env, ix catalog.Index, c VacuumConfig) (Outcome, error) {
	stmt := vacuumStatement(ix, c)
	figures := chooseFigures(env, c.Figures, v.Spec().DefaultFigures(ix.Method))
	out := Outcome{Before: figuresBefore(ctx, env, ix, figures)}
	if err := runMaintenance(ctx, env, v.opts, ix, stmt, vacuumProgressSQL); err != nil {
		return out, err
	}
	out.Statements = []string{stmt}
	out.After = measureFigures(ctx, env, env.Pool, ix, figures)
	return out, nil
}

// Rollback implements Strategy: a vacuum has nothing to undo.
func (*Vacuum) Rollback(context.Context, Env, catalog.Index, VacuumConfig, json.RawMessage) error {
	return nil
}

// runMaintenance runs one statement that may not run in a transaction block (VACUUM,
// ANALYZE) on a session of its own, logging progress from progressSQL when it is not empty.
func runMaintenance(ctx context.Context, env Env, opts Options, ix catalog.Index, stmt, progressSQL string) error {
	conn, err := openSession(ctx, env.Pool)
	if err != nil {
		return err
	}
	defer closeSession(conn)
	logger(env).Info("maintenance", slog.String("index", ix.String()), slog.String("statement", stmt))
	stop := func() {}
	if progressSQL != "" {
		stop = watchProgress(ctx, env, opts, ix, progressSQL, conn.PgConn().PID())
	}
	_, err = conn.Exec(ctx, stmt)
	stop()
	if err != nil {
		return fmt.Errorf("%s: %w", stmt, err)
	}
	return nil
}
