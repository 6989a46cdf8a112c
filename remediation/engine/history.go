package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// steps reads the recorded steps of repair id in order.
func (e *Engine) steps(ctx context.Context, id int64) ([]Step, error) {
	rows, err := e.o.State.Query(ctx, `
SELECT position, strategy, params, state, impact, statements, before, after, validation, undo, error, futile, started_at, finished_at
  FROM repair_steps WHERE repair_id = $1 ORDER BY position`, id)
	if err != nil {
		return nil, fmt.Errorf("read steps of repair %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Step, error) {
		var (
			s                             Step
			params, impact, stmts, before []byte
			after, validation, undo       []byte
		)
		if err := row.Scan(&s.Position, &s.Strategy, &params, &s.State, &impact, &stmts, &before, &after,
			&validation, &undo, &s.Error, &s.Futile, &s.StartedAt, &s.FinishedAt); err != nil {
			return s, err
		}
		for _, f := range []struct {
			b []byte
			v any
		}{{params, &s.Params}, {stmts, &s.Statements}, {before, &s.Before}, {after, &s.After}} {
			if len(f.b) > 0 {
				if err := json.Unmarshal(f.b, f.v); err != nil {
					return s, err
				}
			}
		}
		if len(impact) > 0 {
			s.Impact = &strategy.Impact{}
			if err := json.Unmarshal(impact, s.Impact); err != nil {
				return s, err
			}
		}
		s.Validation, s.Undo = validation, undo
		return s, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read steps of repair %d: %w", id, err)
	}
	return out, nil
}

// historyEstimate is the mean duration of the last successful runs of a strategy on this
// index, or on any index when this one has none; 0 when there is no history.
func (e *Engine) historyEstimate(ctx context.Context, r repairRow, strat string) time.Duration {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	secs, err := e.repairs.meanStepSeconds(ctx, strat, r.Target, r.Schema, r.Index)
	if err != nil || secs == nil {
		return 0
	}
	return time.Duration(*secs * float64(time.Second))
}

// FutileMarks lists the entries held back as futile, newest first.
func (e *Engine) FutileMarks(ctx context.Context) ([]FutileMark, error) {
	rows, err := e.o.State.Query(ctx, `SELECT target, datname, schemaname, indexrelname, entry, figure, value, repair_id, recorded_at
		FROM futile_repairs ORDER BY recorded_at DESC`)
	if err != nil {
		return nil, fmt.Errorf("read futile marks: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (FutileMark, error) {
		var m FutileMark
		err := row.Scan(&m.Target, &m.Datname, &m.Schema, &m.Index, &m.Entry, &m.Figure, &m.Value, &m.RepairID, &m.RecordedAt)
		return m, err
	})
	if err != nil {
		return nil, fmt.Errorf("read futile marks: %w", err)
	}
	return out, nil
}
