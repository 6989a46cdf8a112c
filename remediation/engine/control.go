package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// Repairs lists repairs, newest first.
func (e *Engine) Repairs(ctx context.Context, f Filter) ([]Repair, error) {
	out, err := e.repairs.list(ctx, f)
	if err != nil {
		return nil, err
	}
	for i := range out {
		out[i].Plan = nil // a list shows what each repair is; its plan is Repair's
	}
	return out, nil
}

// Repair returns one repair with its plan and steps.
func (e *Engine) Repair(ctx context.Context, id int64) (Repair, error) {
	r, err := e.repairs.get(ctx, id)
	if err != nil {
		return Repair{}, err
	}
	if r.Steps, err = e.repairs.steps(ctx, id); err != nil {
		return Repair{}, err
	}
	return r, nil
}

// Trigger queues a manual repair and returns its id. The index is resolved now, so a name
// that is not a vector index of the target is refused at once.
func (e *Engine) Trigger(ctx context.Context, req TriggerRequest, by string) (int64, error) {
	if req.Target == "" || req.Index == "" || req.Strategy == "" {
		return 0, fmt.Errorf("%w: target, index and strategy are required", ErrInvalid)
	}
	if req.Schema == "" {
		req.Schema = "public"
	}
	def, ok := e.o.Strategies.Get(req.Strategy)
	if !ok {
		return 0, fmt.Errorf("%w: strategy %q is unknown (known: %s)", ErrInvalid, req.Strategy, strings.Join(e.o.Strategies.Names(), ", "))
	}
	if def.Spec().Has(strategy.RunsUserSQL) {
		// Its parameters are SQL: they may come from the runbook file, never from a request.
		return 0, fmt.Errorf("%w: strategy %s runs only statements written in the runbook; add a runbook entry instead", ErrInvalid, req.Strategy)
	}
	if _, err := def.Bind(req.Params); err != nil {
		return 0, fmt.Errorf("%w: params: %v", ErrInvalid, err)
	}
	if req.Validate != nil {
		if err := req.Validate.Check(); err != nil {
			return 0, fmt.Errorf("%w: validate.%v", ErrInvalid, err)
		}
		if !slices.Contains(e.o.Measurer.Figures(), req.Validate.Figure) {
			return 0, fmt.Errorf("%w: validate.figure: unknown figure %q (known: %s)", ErrInvalid, req.Validate.Figure,
				strings.Join(e.o.Measurer.Figures(), ", "))
		}
		if f := req.Validate.Fallback; f != "" && !slices.Contains(e.o.Measurer.Figures(), f) {
			return 0, fmt.Errorf("%w: validate.fallback: unknown figure %q (known: %s)", ErrInvalid, f,
				strings.Join(e.o.Measurer.Figures(), ", "))
		}
	}
	t, ok := e.o.Targets.Get(req.Target)
	if !ok {
		return 0, fmt.Errorf("target %q: %w", req.Target, ErrNotFound)
	}
	if !t.Watches(req.Schema, req.Index) {
		return 0, fmt.Errorf("%w: %s.%s is excluded by target %q", ErrInvalid, req.Schema, req.Index, req.Target)
	}
	ix, err := catalog.Resolve(ctx, t.Pool, req.Schema, req.Index)
	if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrNotVector) {
		return 0, fmt.Errorf("target %q: %w: %v", req.Target, ErrNotFound, err)
	}
	if err != nil {
		return 0, err
	}
	if ix.Partitioned {
		detail, err := partitionedRefusal(ctx, t.Pool, ix)
		if err != nil {
			return 0, err
		}
		return 0, fmt.Errorf("%w: %s", ErrInvalid, detail)
	}
	plan := Plan{
		Entry: "manual:" + req.Strategy, Priority: 80, Manual: true, DryRun: req.DryRun, Timeout: req.Timeout,
		Steps: []PlanStep{{Strategy: req.Strategy, Params: req.Params, Validate: req.Validate, OnFailure: runbook.OnFailureRollback}},
	}
	labels := map[string]string{"target": req.Target, "datname": ix.Datname, "schemaname": ix.Schema,
		"relname": ix.Table, "indexrelname": ix.Name}
	var ids []int64
	err = pgx.BeginFunc(ctx, e.o.State, func(tx pgx.Tx) error {
		ids, err = e.enqueue(ctx, tx, []newRepair{{labels: labels, plan: plan, by: by}})
		return err
	})
	if err != nil {
		return 0, err
	}
	return ids[0], nil
}

// Approve lets a repair awaiting approval run.
func (e *Engine) Approve(ctx context.Context, id int64, by string) error {
	return pgx.BeginFunc(ctx, e.o.State, func(tx pgx.Tx) error {
		state, prio, err := e.repairs.lockForApproval(ctx, tx, id)
		if err != nil {
			return err
		}
		if state != "awaiting_approval" {
			return fmt.Errorf("%w: repair %d is %s, not awaiting_approval", ErrConflict, id, state)
		}
		if err := e.repairs.approve(ctx, tx, id, by); err != nil {
			return err
		}
		return e.insertJob(ctx, tx, id, prio)
	})
}

// Cancel stops a repair: one not started yet is cancelled at once; a running one has its
// context cancelled (its SQL stops) and is rolled back by its worker.
func (e *Engine) Cancel(ctx context.Context, id int64, by string) error {
	var job *int64
	err := pgx.BeginFunc(ctx, e.o.State, func(tx pgx.Tx) error {
		state, j, err := e.repairs.lockForCancel(ctx, tx, id)
		if err != nil {
			return err
		}
		job = j
		switch state {
		case "queued", "awaiting_approval":
			return e.repairs.cancelWaiting(ctx, tx, id, by)
		case "running":
			return e.repairs.requestCancel(ctx, tx, id, by)
		default:
			return fmt.Errorf("%w: repair %d has ended (%s)", ErrConflict, id, state)
		}
	})
	if err != nil || job == nil {
		return err
	}
	// River tells the worker holding the job, in whichever process, to cancel its context.
	if _, err := e.river.JobCancel(ctx, *job); err != nil && !errors.Is(err, river.ErrNotFound) {
		return fmt.Errorf("cancel job of repair %d: %w", id, err)
	}
	return nil
}

// Circuits lists the circuits of every index that has failed at least once.
func (e *Engine) Circuits(ctx context.Context) ([]Circuit, error) {
	rows, err := e.o.State.Query(ctx, `SELECT target, datname, schemaname, relname, indexrelname, failures, open,
		opened_at, reset_by, reset_at FROM circuits ORDER BY target, datname, schemaname, indexrelname`)
	if err != nil {
		return nil, fmt.Errorf("read circuits: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Circuit, error) {
		var c Circuit
		err := row.Scan(&c.Target, &c.Datname, &c.Schema, &c.Table, &c.Index, &c.Failures, &c.Open, &c.OpenedAt, &c.ResetBy, &c.ResetAt)
		return c, err
	})
	if err != nil {
		return nil, fmt.Errorf("read circuits: %w", err)
	}
	return out, nil
}

// ResetCircuit closes the circuit of target/schema.index (datname empty: any database of the
// target) and clears its failure count. It returns how many circuits it reset.
func (e *Engine) ResetCircuit(ctx context.Context, target, datname, schema, index, by string) (int64, error) {
	if target == "" || index == "" {
		return 0, fmt.Errorf("%w: target and index are required", ErrInvalid)
	}
	if schema == "" {
		schema = "public"
	}
	tag, err := e.o.State.Exec(ctx, `UPDATE circuits SET open = false, failures = 0, reset_by = $5, reset_at = now()
		WHERE target = $1 AND ($2 = '' OR datname = $2) AND schemaname = $3 AND indexrelname = $4`,
		target, datname, schema, index, by)
	if err != nil {
		return 0, fmt.Errorf("reset circuit: %w", err)
	}
	if tag.RowsAffected() == 0 {
		return 0, fmt.Errorf("no circuit for %s %s.%s: %w", target, schema, index, ErrNotFound)
	}
	return tag.RowsAffected(), nil
}

// RequestCheck records a request to run the background health checks of an index (or of
// every index of the target when index is empty) ahead of schedule; the exporter picks
// pending requests up from check_requests and marks them done.
func (e *Engine) RequestCheck(ctx context.Context, target, schema, index, by string) (int64, error) {
	if _, ok := e.o.Targets.Get(target); !ok {
		return 0, fmt.Errorf("target %q: %w", target, ErrNotFound)
	}
	if index != "" && schema == "" {
		schema = "public"
	}
	var id int64
	err := e.o.State.QueryRow(ctx, `INSERT INTO check_requests (target, schemaname, indexrelname, requested_by)
		VALUES ($1, $2, $3, $4) RETURNING id`, target, schema, index, by).Scan(&id)
	if err != nil {
		return 0, fmt.Errorf("request check: %w", err)
	}
	return id, nil
}

// Status reports what the engine is doing.
func (e *Engine) Status(ctx context.Context) (Status, error) {
	s := Status{Workers: e.o.Workers, Runner: e.o.ID, Last24h: map[string]int{}, OpenCircuits: []Circuit{}, Futile: []FutileMark{}}
	counts, err := e.repairs.countByState(ctx)
	if err != nil {
		return s, err
	}
	for st, n := range counts {
		switch st {
		case "queued":
			s.Queued = n
		case "awaiting_approval":
			s.AwaitingApproval = n
		case "running":
			s.Active = n
		default:
			s.Last24h[st] = n
		}
	}
	cs, err := e.Circuits(ctx)
	if err != nil {
		return s, err
	}
	for _, c := range cs {
		if c.Open {
			s.OpenCircuits = append(s.OpenCircuits, c)
		}
	}
	if s.Futile, err = e.FutileMarks(ctx); err != nil {
		return s, err
	}
	if rb := e.currentRunbook(); rb != nil {
		s.RunbookEntries = len(rb.Entries)
	}
	return s, nil
}

// Issues lists the latest state of each alert received (one row per fingerprint and start),
// newest first; firing only when firingOnly.
func (e *Engine) Issues(ctx context.Context, firingOnly bool, limit int) ([]Issue, error) {
	if limit <= 0 {
		limit = 100
	}
	limit = min(limit, 1000)
	return e.repairs.issues(ctx, firingOnly, limit)
}
