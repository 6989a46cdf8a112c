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
//
// Parameters: analyze (bool, default true) adds ANALYZE; figures (list).
type Vacuum struct{ opts Options }

var vacuumParams = paramSpec{"analyze": "bool", figuresParam: "list"}

// Name implements Strategy.
func (*Vacuum) Name() string { return "vacuum" }

// Description implements Strategy.
func (*Vacuum) Description() string {
	return "VACUUM the index's table so pgvector removes deleted rows from the index and repairs the graph around them."
}

// CheckParams implements Strategy.
func (*Vacuum) CheckParams(p Params) error {
	if err := vacuumParams.unknown(p); err != nil {
		return err
	}
	if _, err := boolParam(p, "analyze", true); err != nil {
		return err
	}
	_, err := stringsParam(p, figuresParam)
	return err
}

func vacuumStatement(ix catalog.Index, p Params) (string, error) {
	analyze, err := boolParam(p, "analyze", true)
	if err != nil {
		return "", err
	}
	opts := "INDEX_CLEANUP ON"
	if analyze {
		opts += ", ANALYZE"
	}
	return "VACUUM (" + opts + ") " + ix.QuotedTable(), nil
}

// Plan implements Strategy.
func (*Vacuum) Plan(_ context.Context, _ Env, ix catalog.Index, p Params) (Impact, error) {
	stmt, err := vacuumStatement(ix, p)
	if err != nil {
		return Impact{}, err
	}
	return Impact{
		LockLevel:  "SHARE UPDATE EXCLUSIVE",
		IndexBytes: ix.SizeBytes,
		Statements: []string{stmt},
		Notes:      "reads and writes continue; pgvector repairs HNSW neighbour lists single-threaded, which can take long on big graphs",
	}, nil
}

// Run implements Strategy.
func (v *Vacuum) Run(ctx context.Context, env Env, ix catalog.Index, p Params) (Outcome, error) {
	stmt, err := vacuumStatement(ix, p)
	if err != nil {
		return Outcome{}, err
	}
	figures := chooseFigures(env, p, append([]string{"pgvector_table_dead_tuples"}, defaultIndexFigures(ix)...))
	out := Outcome{Before: measureFigures(ctx, env, env.Pool, ix, figures)}
	if err := runMaintenance(ctx, env, v.opts, ix, stmt, vacuumProgressSQL); err != nil {
		return out, err
	}
	out.Statements = []string{stmt}
	out.After = measureFigures(ctx, env, env.Pool, ix, figures)
	return out, nil
}

// Rollback implements Strategy: a vacuum has nothing to undo.
func (*Vacuum) Rollback(context.Context, Env, catalog.Index, Params, json.RawMessage) error {
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
