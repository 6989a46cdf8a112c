package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// Writes of step history use a context of their own: a step's record must land even when
// the repair's context has just been cancelled. A failed write is logged; the repair goes on,
// its final state is written by finish, which does return errors.
func (e *Engine) historyCtx(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
}

// recordStep inserts or replaces a step's row with its plan and state.
func (e *Engine) recordStep(ctx context.Context, id int64, pos int, step PlanStep, state string, impact *strategy.Impact, errMsg string) {
	ctx, cancel := e.historyCtx(ctx)
	defer cancel()
	params, _ := json.Marshal(step.Params)
	var imp []byte
	if impact != nil {
		imp, _ = json.Marshal(impact)
	}
	_, err := e.o.State.Exec(ctx, `
INSERT INTO repair_steps (repair_id, position, strategy, params, state, impact, error, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now(), CASE WHEN $5 <> 'running' THEN now() END)
ON CONFLICT (repair_id, position) DO UPDATE
   SET state = EXCLUDED.state, impact = EXCLUDED.impact, error = EXCLUDED.error,
       started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at`,
		id, pos, step.Strategy, params, state, imp, errMsg)
	if err != nil {
		e.log.Error("record step", "repair", id, "step", pos, "err", err)
	}
}

// saveOutcome stores what Run did, above all its undo data, before anything else happens,
// so a rollback after a crash finds it.
func (e *Engine) saveOutcome(ctx context.Context, id int64, pos int, out strategy.Outcome) {
	ctx, cancel := e.historyCtx(ctx)
	defer cancel()
	stmts, _ := json.Marshal(nonNil(out.Statements))
	before, _ := json.Marshal(out.Before)
	after, _ := json.Marshal(out.After)
	var undo []byte
	if len(out.Undo) > 0 && json.Valid(out.Undo) {
		undo = out.Undo
	}
	_, err := e.o.State.Exec(ctx, `UPDATE repair_steps SET statements = $3, before = $4, after = $5, undo = $6
		WHERE repair_id = $1 AND position = $2`, id, pos, stmts, before, after, undo)
	if err != nil {
		e.log.Error("record step outcome", "repair", id, "step", pos, "err", err)
	}
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}

// endStep records a step's final state.
func (e *Engine) endStep(ctx context.Context, id int64, pos int, state string, after map[string]float64, v *validationRecord, errMsg string) {
	ctx, cancel := e.historyCtx(ctx)
	defer cancel()
	var afterJSON, vJSON []byte
	if after != nil {
		afterJSON, _ = json.Marshal(after)
	}
	if v != nil {
		vJSON, _ = json.Marshal(v)
	}
	_, err := e.o.State.Exec(ctx, `UPDATE repair_steps
		SET state = $3, after = coalesce($4, after), validation = coalesce($5, validation),
		    error = CASE WHEN error = '' THEN $6 WHEN $6 = '' THEN error ELSE $6 || '; ' || error END,
		    finished_at = now()
		WHERE repair_id = $1 AND position = $2`, id, pos, state, afterJSON, vJSON, errMsg)
	if err != nil {
		e.log.Error("record end of step", "repair", id, "step", pos, "err", err)
	}
}

func (e *Engine) appendStepError(ctx context.Context, id int64, pos int, msg string) {
	ctx, cancel := e.historyCtx(ctx)
	defer cancel()
	_, err := e.o.State.Exec(ctx, `UPDATE repair_steps SET error = CASE WHEN error = '' THEN $3 ELSE error || '; ' || $3 END
		WHERE repair_id = $1 AND position = $2`, id, pos, msg)
	if err != nil {
		e.log.Error("record step error", "repair", id, "step", pos, "err", err)
	}
}

// Step is one recorded step of a repair.
type Step struct {
	Position   int                `json:"position"`
	Strategy   string             `json:"strategy"`
	Params     strategy.Params    `json:"params,omitempty"`
	State      string             `json:"state"`
	Impact     *strategy.Impact   `json:"impact,omitempty"`
	Statements []string           `json:"statements"`
	Before     map[string]float64 `json:"before,omitempty"`
	After      map[string]float64 `json:"after,omitempty"`
	Validation json.RawMessage    `json:"validation,omitempty"`
	Undo       json.RawMessage    `json:"undo,omitempty"`
	Error      string             `json:"error,omitempty"`
	StartedAt  *time.Time         `json:"started_at,omitempty"`
	FinishedAt *time.Time         `json:"finished_at,omitempty"`
}

// steps reads the recorded steps of repair id in order.
func (e *Engine) steps(ctx context.Context, id int64) ([]Step, error) {
	rows, err := e.o.State.Query(ctx, `
SELECT position, strategy, params, state, impact, statements, before, after, validation, undo, error, started_at, finished_at
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
			&validation, &undo, &s.Error, &s.StartedAt, &s.FinishedAt); err != nil {
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
	ctx, cancel := e.historyCtx(ctx)
	defer cancel()
	var secs *float64
	err := e.o.State.QueryRow(ctx, `
SELECT coalesce(
  (SELECT avg(d) FROM (SELECT extract(epoch FROM s.finished_at - s.started_at) AS d
     FROM repair_steps s JOIN repairs r ON r.id = s.repair_id
    WHERE s.strategy = $1 AND s.state = 'succeeded' AND r.target = $2 AND r.schemaname = $3 AND r.indexrelname = $4
    ORDER BY s.finished_at DESC LIMIT 10) x),
  (SELECT avg(d) FROM (SELECT extract(epoch FROM s.finished_at - s.started_at) AS d
     FROM repair_steps s WHERE s.strategy = $1 AND s.state = 'succeeded'
    ORDER BY s.finished_at DESC LIMIT 10) y))::float8`, strat, r.Target, r.Schema, r.Index).Scan(&secs)
	if err != nil || secs == nil {
		return 0
	}
	return time.Duration(*secs * float64(time.Second))
}
