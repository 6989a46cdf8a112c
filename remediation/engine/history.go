package engine

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

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
