package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// repairStore owns the SQL of the repairs table and of repair_steps, the steps of each: every
// statement of the engine that reads or writes them, or joins them, is a method here, so what
// the engine does with its repairs has one answer and a change of the tables is made in one
// file. Statements on the state store's other tables alone (circuits, futile_repairs,
// check_requests) stay with their callers.
//
// Methods run on the state pool, or in the caller's transaction (tx) where a statement must
// commit with others: a repair and its River job, a row locked FOR UPDATE and its change, the
// end of a repair and its circuit. Each returns the error its caller returned before, wrapped
// the same way; metrics and logs stay with the callers.
type repairStore struct {
	pool *pgxpool.Pool
}

// errNoRepair is load's answer for a repair that is gone: pruned, so its job has nothing to do.
var errNoRepair = errors.New("no such repair")

// load reads the row of repair id; errNoRepair when there is none (pruned).
func (s repairStore) load(ctx context.Context, id int64) (repairRow, error) {
	var (
		r            repairRow
		labels, plan []byte
	)
	err := s.pool.QueryRow(ctx, `
SELECT id, job_id, fingerprint, alert_starts_at, labels, entry, plan, priority, target, datname,
       schemaname, relname, indexrelname, state, reason, cancel_requested_by, approved_by, deferrals, created_at
  FROM repairs WHERE id = $1`, id).Scan(&r.ID, &r.JobID, &r.Fingerprint, &r.StartsAt, &labels, &r.Entry, &plan,
		&r.Priority, &r.Target, &r.Datname, &r.Schema, &r.Table, &r.Index, &r.State, &r.Reason, &r.CancelRequestedBy, &r.ApprovedBy,
		&r.Deferrals, &r.CreatedAt)
	if errors.Is(err, pgx.ErrNoRows) {
		return r, errNoRepair
	}
	if err != nil {
		return r, fmt.Errorf("load repair %d: %w", id, err)
	}
	if err := json.Unmarshal(labels, &r.Labels); err != nil {
		return r, fmt.Errorf("repair %d: labels: %w", id, err)
	}
	if err := json.Unmarshal(plan, &r.Plan); err != nil {
		return r, fmt.Errorf("repair %d: plan: %w", id, err)
	}
	return r, nil
}

// cancelRequestedBy is who asked to cancel repair id, "" when nobody did.
func (s repairStore) cancelRequestedBy(ctx context.Context, id int64) (string, error) {
	var by string
	err := s.pool.QueryRow(ctx, `SELECT cancel_requested_by FROM repairs WHERE id = $1`, id).Scan(&by)
	return by, err
}

// The life of a repair, as the recorder writes it.

// setReason notes why repair id, which may run later, has not run yet.
func (s repairStore) setReason(ctx context.Context, id int64, reason string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE repairs SET reason = $2 WHERE id = $1`, id, reason); err != nil {
		return fmt.Errorf("record wait reason: %w", err)
	}
	return nil
}

// skip finishes queued repair id as skipped.
func (s repairStore) skip(ctx context.Context, id int64, reason, detail string) error {
	_, err := s.pool.Exec(ctx, `UPDATE repairs SET state = 'skipped', reason = $2, error = $3, finished_at = now()
		WHERE id = $1 AND state = 'queued'`, id, reason, detail)
	if err != nil {
		return fmt.Errorf("record skip of repair %d: %w", id, err)
	}
	return nil
}

// hold notes the rule that holds queued repair id back; it stays queued.
func (s repairStore) hold(ctx context.Context, id int64, reason, detail string) error {
	if _, err := s.pool.Exec(ctx, `UPDATE repairs SET reason = $2, error = $3 WHERE id = $1 AND state = 'queued'`,
		id, reason, detail); err != nil {
		return fmt.Errorf("record hold of repair %d: %w", id, err)
	}
	return nil
}

// start marks queued repair id running on runner, on the database and table resolved; false
// when it is no longer queued (cancelled meanwhile).
func (s repairStore) start(ctx context.Context, id int64, runner, datname, table string) (bool, error) {
	tag, err := s.pool.Exec(ctx, `
UPDATE repairs SET state = 'running', started_at = now(), runner = $2, reason = '', datname = $3, relname = $4
 WHERE id = $1 AND state = 'queued'`, id, runner, datname, table)
	if err != nil {
		return false, fmt.Errorf("start repair %d: %w", id, err)
	}
	return tag.RowsAffected() > 0, nil
}

// requeue puts running repair id back in the queue after a step said "retry later".
func (s repairStore) requeue(ctx context.Context, id int64, why string) error {
	_, err := s.pool.Exec(ctx, `UPDATE repairs SET state = 'queued', reason = 'retry_later', error = $2,
		started_at = NULL, runner = '', deferrals = deferrals + 1 WHERE id = $1 AND state = 'running'`, id, why)
	if err != nil {
		return fmt.Errorf("record deferral of repair %d: %w", id, err)
	}
	return nil
}

// awaitStepApproval stops running repair id until a person approves its next step.
func (s repairStore) awaitStepApproval(ctx context.Context, id int64) error {
	_, err := s.pool.Exec(ctx, `UPDATE repairs SET state = 'awaiting_approval', reason = 'step_approval_pending',
		error = '', runner = '' WHERE id = $1 AND state = 'running'`, id)
	if err != nil {
		return fmt.Errorf("record approval wait of repair %d: %w", id, err)
	}
	return nil
}

// finish records how repair id ended, in the caller's transaction tx, which updates the
// circuit of its index too.
func (s repairStore) finish(ctx context.Context, tx pgx.Tx, id int64, res result) error {
	if _, err := tx.Exec(ctx, `UPDATE repairs SET state = $2, reason = $3, error = $4, finished_at = now() WHERE id = $1`,
		id, res.outcome, res.reason, res.err); err != nil {
		return fmt.Errorf("record end of repair %d: %w", id, err)
	}
	return nil
}

// The steps of a repair (repair_steps), as the recorder writes them. Step writes return their
// errors bare: the recorder logs them under its own message and the repair goes on.

// beginStep inserts or replaces the row of step pos of repair id with its plan, impact and
// state; a step run again starts afresh.
func (s repairStore) beginStep(ctx context.Context, id int64, pos int, step PlanStep, state string,
	impact *strategy.Impact, errMsg string) error {
	params, _ := json.Marshal(step.Params)
	var imp []byte
	if impact != nil {
		imp, _ = json.Marshal(impact)
	}
	_, err := s.pool.Exec(ctx, `
INSERT INTO repair_steps (repair_id, position, strategy, params, state, impact, error, started_at, finished_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, now(), CASE WHEN $5 <> 'running' THEN now() END)
ON CONFLICT (repair_id, position) DO UPDATE
   SET state = EXCLUDED.state, impact = EXCLUDED.impact, error = EXCLUDED.error, futile = false,
       statements = '[]', before = NULL, after = NULL, validation = NULL, undo = NULL,
       started_at = EXCLUDED.started_at, finished_at = EXCLUDED.finished_at`,
		id, pos, step.Strategy, params, state, imp, errMsg)
	return err
}

// saveOutcome stores what Run of step pos did: its statements, figures and undo data (kept
// only when it is valid JSON).
func (s repairStore) saveOutcome(ctx context.Context, id int64, pos int, out strategy.Outcome) error {
	stmts := out.Statements
	if stmts == nil {
		stmts = []string{}
	}
	sj, _ := json.Marshal(stmts)
	before, _ := json.Marshal(out.Before)
	after, _ := json.Marshal(out.After)
	var undo []byte
	if len(out.Undo) > 0 && json.Valid(out.Undo) {
		undo = out.Undo
	}
	_, err := s.pool.Exec(ctx, `UPDATE repair_steps SET statements = $3, before = $4, after = $5, undo = $6
		WHERE repair_id = $1 AND position = $2`, id, pos, sj, before, after, undo)
	return err
}

// endStep records the final state of step pos; after and v, when not nil, replace the
// figures after and the validation, and errMsg goes before the error already recorded.
func (s repairStore) endStep(ctx context.Context, id int64, pos int, state string, after map[string]float64,
	v *validation.Record, futile bool, errMsg string) error {
	var afterJSON, vJSON []byte
	if after != nil {
		afterJSON, _ = json.Marshal(after)
	}
	if v != nil {
		vJSON, _ = json.Marshal(v)
	}
	_, err := s.pool.Exec(ctx, `UPDATE repair_steps
		SET state = $3, after = coalesce($4, after), validation = coalesce($5, validation), futile = $7,
		    error = CASE WHEN error = '' THEN $6 WHEN $6 = '' THEN error ELSE $6 || '; ' || error END,
		    finished_at = now()
		WHERE repair_id = $1 AND position = $2`, id, pos, state, afterJSON, vJSON, errMsg, futile)
	return err
}

// appendStepError appends msg to the error of step pos.
func (s repairStore) appendStepError(ctx context.Context, id int64, pos int, msg string) error {
	_, err := s.pool.Exec(ctx, `UPDATE repair_steps SET error = CASE WHEN error = '' THEN $3 ELSE error || '; ' || $3 END
		WHERE repair_id = $1 AND position = $2`, id, pos, msg)
	return err
}

// firstPlannedStep is the position of the first step of repair id still planned (left when
// it stopped for the approval of a step); nil when there is none.
func (s repairStore) firstPlannedStep(ctx context.Context, id int64) (*int, error) {
	var p *int
	err := s.pool.QueryRow(ctx, `SELECT min(position) FROM repair_steps
		WHERE repair_id = $1 AND state = 'planned'`, id).Scan(&p)
	if err != nil {
		return nil, fmt.Errorf("read approved step of repair %d: %w", id, err)
	}
	return p, nil
}

// steps reads the recorded steps of repair id in order.
func (s repairStore) steps(ctx context.Context, id int64) ([]Step, error) {
	rows, err := s.pool.Query(ctx, `
SELECT position, strategy, params, state, impact, statements, before, after, validation, undo, error, futile, started_at, finished_at
  FROM repair_steps WHERE repair_id = $1 ORDER BY position`, id)
	if err != nil {
		return nil, fmt.Errorf("read steps of repair %d: %w", id, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Step, error) {
		var (
			st                            Step
			params, impact, stmts, before []byte
			after, validation, undo       []byte
		)
		if err := row.Scan(&st.Position, &st.Strategy, &params, &st.State, &impact, &stmts, &before, &after,
			&validation, &undo, &st.Error, &st.Futile, &st.StartedAt, &st.FinishedAt); err != nil {
			return st, err
		}
		for _, f := range []struct {
			b []byte
			v any
		}{{params, &st.Params}, {stmts, &st.Statements}, {before, &st.Before}, {after, &st.After}} {
			if len(f.b) > 0 {
				if err := json.Unmarshal(f.b, f.v); err != nil {
					return st, err
				}
			}
		}
		if len(impact) > 0 {
			st.Impact = &strategy.Impact{}
			if err := json.Unmarshal(impact, st.Impact); err != nil {
				return st, err
			}
		}
		st.Validation, st.Undo = validation, undo
		return st, nil
	})
	if err != nil {
		return nil, fmt.Errorf("read steps of repair %d: %w", id, err)
	}
	return out, nil
}

// Intake: the webhook's and Trigger's repairs, and the River jobs linked to them.

// insertRepairs records repairs from parallel arrays; a repair its alert had already queued
// for the same entry is left out, and the ord of each row inserted is returned with its id.
const insertRepairs = `
INSERT INTO repairs (alert_id, fingerprint, alert_starts_at, alertname, labels, entry, plan, priority,
                     target, datname, schemaname, relname, indexrelname, state, requested_by, reason)
SELECT a, f, s, an, l::jsonb, en, p::jsonb, pr, tg, d, sc, rl, ix, st, rb, re
  FROM unnest($1::bigint[], $2::text[], $3::timestamptz[], $4::text[], $5::text[], $6::text[], $7::text[],
              $8::int[], $9::text[], $10::text[], $11::text[], $12::text[], $13::text[], $14::text[],
              $15::text[], $16::text[]) WITH ORDINALITY
       AS u(a, f, s, an, l, en, p, pr, tg, d, sc, rl, ix, st, rb, re, ord)
 ORDER BY ord
ON CONFLICT (fingerprint, alert_starts_at, entry) WHERE fingerprint <> '' DO NOTHING
RETURNING id, fingerprint, alert_starts_at, entry`

// repairRows are the columns of new repairs rows, one slice per parameter of insertRepairs.
type repairRows struct {
	alertID                                              []*int64
	fp, alertname, labels, entry, plan                   []string
	startsAt                                             []*time.Time
	prio                                                 []int32
	target, datname, schema, table, index, state, by, re []string
}

// add appends the row of r and returns its key (repairKey; i is r's position).
func (c *repairRows) add(r newRepair, i int) (string, error) {
	plan, err := json.Marshal(r.plan)
	if err != nil {
		return "", fmt.Errorf("encode plan: %w", err)
	}
	labels, err := json.Marshal(r.labels)
	if err != nil {
		return "", fmt.Errorf("encode labels: %w", err)
	}
	state, reason := "queued", ""
	if r.plan.Approval {
		state, reason = "awaiting_approval", "approval_pending"
	}
	var (
		alertID  *int64
		fp       string
		startsAt *time.Time
	)
	if r.alert != nil {
		alertID, fp, startsAt = &r.alert.ID, r.alert.Fingerprint, &r.alert.StartsAt
	}
	c.alertID = append(c.alertID, alertID)
	c.fp = append(c.fp, fp)
	c.startsAt = append(c.startsAt, startsAt)
	c.alertname = append(c.alertname, r.labels["alertname"])
	c.labels = append(c.labels, string(labels))
	c.entry = append(c.entry, r.plan.Entry)
	c.plan = append(c.plan, string(plan))
	c.prio = append(c.prio, int32(r.plan.Priority))
	c.target = append(c.target, r.labels["target"])
	c.datname = append(c.datname, r.labels["datname"])
	c.schema = append(c.schema, r.labels["schemaname"])
	c.table = append(c.table, r.labels["relname"])
	c.index = append(c.index, r.labels["indexrelname"])
	c.state = append(c.state, state)
	c.by = append(c.by, r.by)
	c.re = append(c.re, reason)
	return repairKey(fp, startsAt, r.plan.Entry, i), nil
}

// insert records the rows of rs in tx and returns their ids in the order given, 0 for one
// that already existed. The rows go in one statement whatever their number.
func (s repairStore) insert(ctx context.Context, tx pgx.Tx, rs []newRepair) ([]int64, error) {
	var cols repairRows
	keys := make(map[string]int, len(rs))
	for i, r := range rs {
		k, err := cols.add(r, i)
		if err != nil {
			return nil, err
		}
		keys[k] = i
	}
	rows, err := tx.Query(ctx, insertRepairs, cols.alertID, cols.fp, cols.startsAt, cols.alertname, cols.labels,
		cols.entry, cols.plan, cols.prio, cols.target, cols.datname, cols.schema, cols.table, cols.index,
		cols.state, cols.by, cols.re)
	if err != nil {
		return nil, fmt.Errorf("record repairs: %w", err)
	}
	defer rows.Close()
	ids := make([]int64, len(rs))
	manual := 0
	for rows.Next() {
		var (
			id       int64
			fp, ent  string
			startsAt *time.Time
		)
		if err := rows.Scan(&id, &fp, &startsAt, &ent); err != nil {
			return nil, fmt.Errorf("record repairs: %w", err)
		}
		k := repairKey(fp, startsAt, ent, manual)
		if fp == "" {
			manual++ // manual repairs have no key of their own: they come back in order
		}
		i, ok := keys[k]
		if !ok {
			return nil, fmt.Errorf("record repairs: row %d matches no repair asked for", id)
		}
		ids[i] = id
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("record repairs: %w", err)
	}
	return ids, nil
}

// repairKey tells the repairs of one batch apart: alert, start and entry for alert repairs;
// the position among manual ones for those.
func repairKey(fp string, startsAt *time.Time, entry string, manual int) string {
	if fp == "" {
		return fmt.Sprintf("manual/%d", manual)
	}
	return fmt.Sprintf("%s/%d/%s", fp, startsAt.UnixMicro(), entry)
}

// linkJobs links each repair of ids to the River job of the same position in jobs, in tx.
func (s repairStore) linkJobs(ctx context.Context, tx pgx.Tx, ids, jobs []int64) error {
	if _, err := tx.Exec(ctx, `UPDATE repairs r SET job_id = u.job FROM unnest($1::bigint[], $2::bigint[]) AS u(id, job)
		WHERE r.id = u.id`, ids, jobs); err != nil {
		return fmt.Errorf("link repairs to their jobs: %w", err)
	}
	return nil
}

// linkJob links repair id to River job job, in tx.
func (s repairStore) linkJob(ctx context.Context, tx pgx.Tx, id, job int64) error {
	if _, err := tx.Exec(ctx, `UPDATE repairs SET job_id = $2 WHERE id = $1`, id, job); err != nil {
		return fmt.Errorf("link repair %d to its job: %w", id, err)
	}
	return nil
}

// cancelledRepair is a repair cancelForResolved cancelled: its River job, if it has one, is
// the caller's to cancel.
type cancelledRepair struct {
	id       int64
	job      *int64
	strategy *string // of the first step
}

// cancelForResolved cancels, in tx, the repairs of the alert fingerprint that started at or
// before startsAt and have not started, but for a queued one a person approved.
func (s repairStore) cancelForResolved(ctx context.Context, tx pgx.Tx, fingerprint string, startsAt time.Time) ([]cancelledRepair, error) {
	rows, err := tx.Query(ctx, `
UPDATE repairs SET state = 'cancelled', reason = 'resolved', finished_at = now()
 WHERE fingerprint = $1 AND alert_starts_at <= $2
   AND (state = 'awaiting_approval' OR state = 'queued' AND approved_by = '')
RETURNING id, job_id, plan->'steps'->0->>'strategy'`, fingerprint, startsAt)
	if err != nil {
		return nil, fmt.Errorf("cancel repairs of resolved alert: %w", err)
	}
	var cs []cancelledRepair
	for rows.Next() {
		var c cancelledRepair
		if err := rows.Scan(&c.id, &c.job, &c.strategy); err != nil {
			rows.Close()
			return nil, fmt.Errorf("cancel repairs of resolved alert: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("cancel repairs of resolved alert: %w", err)
	}
	return cs, nil
}

// A person's decisions (Approve, Cancel), each in the caller's transaction: the row is
// locked FOR UPDATE, then changed.

// lockForApproval locks repair id in tx and returns its state and priority.
func (s repairStore) lockForApproval(ctx context.Context, tx pgx.Tx, id int64) (state string, prio int, err error) {
	err = tx.QueryRow(ctx, `SELECT state, priority FROM repairs WHERE id = $1 FOR UPDATE`, id).Scan(&state, &prio)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", 0, fmt.Errorf("repair %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", 0, fmt.Errorf("approve: %w", err)
	}
	return state, prio, nil
}

// approve queues repair id again, approved by by, in tx; its job is the caller's to insert.
func (s repairStore) approve(ctx context.Context, tx pgx.Tx, id int64, by string) error {
	if _, err := tx.Exec(ctx, `UPDATE repairs SET state = 'queued', reason = '', approved_by = $2, approved_at = now() WHERE id = $1`, id, by); err != nil {
		return fmt.Errorf("approve: %w", err)
	}
	return nil
}

// lockForCancel locks repair id in tx and returns its state and River job.
func (s repairStore) lockForCancel(ctx context.Context, tx pgx.Tx, id int64) (state string, job *int64, err error) {
	err = tx.QueryRow(ctx, `SELECT state, job_id FROM repairs WHERE id = $1 FOR UPDATE`, id).Scan(&state, &job)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", nil, fmt.Errorf("repair %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return "", nil, fmt.Errorf("cancel: %w", err)
	}
	return state, job, nil
}

// cancelWaiting cancels repair id, which has not started, at the request of by, in tx.
func (s repairStore) cancelWaiting(ctx context.Context, tx pgx.Tx, id int64, by string) error {
	_, err := tx.Exec(ctx, `UPDATE repairs SET state = 'cancelled', reason = 'cancelled', cancel_requested_by = $2,
				finished_at = now() WHERE id = $1`, id, by)
	if err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	return nil
}

// requestCancel notes that by asked to cancel running repair id, in tx; its worker reads it
// when its context ends (stopCause).
func (s repairStore) requestCancel(ctx context.Context, tx pgx.Tx, id int64, by string) error {
	if _, err := tx.Exec(ctx, `UPDATE repairs SET cancel_requested_by = $2 WHERE id = $1`, id, by); err != nil {
		return fmt.Errorf("cancel: %w", err)
	}
	return nil
}

// What the API, the CLI and the metrics read.

const repairColumns = `id, state, reason, error, entry, alertname, fingerprint, labels, priority, target, datname,
	schemaname, relname, indexrelname, (plan->>'dry_run')::bool, requested_by, approved_by, approved_at,
	cancel_requested_by, runner, created_at, started_at, finished_at, plan`

func scanRepair(row pgx.CollectableRow) (Repair, error) {
	var (
		r            Repair
		labels, plan []byte
		dry          *bool
	)
	err := row.Scan(&r.ID, &r.State, &r.Reason, &r.Error, &r.Entry, &r.Alertname, &r.Fingerprint, &labels, &r.Priority,
		&r.Target, &r.Datname, &r.Schema, &r.Table, &r.Index, &dry, &r.RequestedBy, &r.ApprovedBy, &r.ApprovedAt,
		&r.CancelRequestedBy, &r.Runner, &r.CreatedAt, &r.StartedAt, &r.FinishedAt, &plan)
	if err != nil {
		return r, err
	}
	r.DryRun = dry != nil && *dry
	if err := json.Unmarshal(labels, &r.Labels); err != nil {
		return r, err
	}
	r.Plan = &Plan{}
	return r, json.Unmarshal(plan, r.Plan)
}

// list returns the repairs f selects, newest first, with their plans.
func (s repairStore) list(ctx context.Context, f Filter) ([]Repair, error) {
	var (
		where []string
		args  []any
	)
	add := func(cond string, v any) {
		args = append(args, v)
		where = append(where, fmt.Sprintf(cond, len(args)))
	}
	if f.Target != "" {
		add("target = $%d", f.Target)
	}
	if f.Schema != "" {
		add("schemaname = $%d", f.Schema)
	}
	if f.Index != "" {
		add("indexrelname = $%d", f.Index)
	}
	switch f.State {
	case "":
	case "active":
		where = append(where, "state IN ('queued', 'awaiting_approval', 'running')")
	case "queued", "awaiting_approval", "running", "succeeded", "failed", "rolled_back", "skipped", "dry_run", "cancelled":
		add("state = $%d", f.State)
	default:
		return nil, fmt.Errorf("%w: outcome %q is not a repair state", ErrInvalid, f.State)
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 50
	}
	limit = min(limit, 1000)
	q := `SELECT ` + repairColumns + ` FROM repairs`
	if len(where) > 0 {
		q += " WHERE " + strings.Join(where, " AND ")
	}
	q += fmt.Sprintf(" ORDER BY id DESC LIMIT %d", limit)
	rows, err := s.pool.Query(ctx, q, args...)
	if err != nil {
		return nil, fmt.Errorf("list repairs: %w", err)
	}
	out, err := pgx.CollectRows(rows, scanRepair)
	if err != nil {
		return nil, fmt.Errorf("list repairs: %w", err)
	}
	return out, nil
}

// get returns repair id with its plan, without its steps.
func (s repairStore) get(ctx context.Context, id int64) (Repair, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+repairColumns+` FROM repairs WHERE id = $1`, id)
	if err != nil {
		return Repair{}, fmt.Errorf("read repair: %w", err)
	}
	r, err := pgx.CollectExactlyOneRow(rows, scanRepair)
	if errors.Is(err, pgx.ErrNoRows) {
		return Repair{}, fmt.Errorf("repair %d: %w", id, ErrNotFound)
	}
	if err != nil {
		return Repair{}, fmt.Errorf("read repair: %w", err)
	}
	return r, nil
}

// countByState counts the repairs waiting or running and those finished in the last 24
// hours, by state.
func (s repairStore) countByState(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT state, count(*) FROM repairs
		WHERE state IN ('queued', 'awaiting_approval', 'running') OR finished_at > now() - interval '24 hours'
		GROUP BY state`)
	if err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	counts := map[string]int{}
	for rows.Next() {
		var st string
		var n int
		if err := rows.Scan(&st, &n); err != nil {
			rows.Close()
			return nil, fmt.Errorf("status: %w", err)
		}
		counts[st] = n
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("status: %w", err)
	}
	return counts, nil
}

// queueDepth counts the repairs waiting: queued or awaiting approval.
func (s repairStore) queueDepth(ctx context.Context) (float64, error) {
	var depth float64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM repairs WHERE state IN ('queued', 'awaiting_approval')`).Scan(&depth)
	return depth, err
}

// issues returns the latest state of each alert received (one row per fingerprint and
// start) with its repairs, newest first; firing only when firingOnly.
func (s repairStore) issues(ctx context.Context, firingOnly bool, limit int) ([]Issue, error) {
	rows, err := s.pool.Query(ctx, `
SELECT a.id, a.fingerprint, a.alertname, a.status, a.labels, a.starts_at, a.ends_at, a.received_at, a.last_seen_at,
       a.times_received, a.notification_reason, a.route_labels,
       coalesce((SELECT jsonb_agg(jsonb_build_object('id', r.id, 'entry', r.entry, 'state', r.state, 'reason', r.reason) ORDER BY r.id)
                   FROM repairs r WHERE r.fingerprint = a.fingerprint AND r.alert_starts_at = a.starts_at), '[]')
  FROM (SELECT DISTINCT ON (fingerprint, starts_at) * FROM alerts
         ORDER BY fingerprint, starts_at, (status = 'resolved') DESC, last_seen_at DESC) a
 WHERE NOT $1 OR a.status = 'firing'
 ORDER BY a.last_seen_at DESC LIMIT $2`, firingOnly, limit)
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Issue, error) {
		var (
			is                           Issue
			labels, routeLabels, repairs []byte
		)
		if err := row.Scan(&is.AlertID, &is.Fingerprint, &is.Alertname, &is.Status, &labels, &is.StartsAt, &is.EndsAt,
			&is.ReceivedAt, &is.LastSeenAt, &is.TimesReceived, &is.NotificationReason, &routeLabels, &repairs); err != nil {
			return is, err
		}
		if err := json.Unmarshal(labels, &is.Labels); err != nil {
			return is, err
		}
		if err := json.Unmarshal(routeLabels, &is.RouteLabels); err != nil {
			return is, err
		}
		return is, json.Unmarshal(repairs, &is.Repairs)
	})
	if err != nil {
		return nil, fmt.Errorf("list issues: %w", err)
	}
	return out, nil
}

// The budget's history (budgetstate.go).

// budgetRunRow is one repair that ran, as the budget reads it, with the index it ran on.
type budgetRunRow struct {
	key              budgetKey
	datname, relname string
	run              budgetRun
}

// budgetRuns reads the repairs that ran on index k (on every index when k.Target is empty)
// and were running or finished within lookback, newest first.
func (s repairStore) budgetRuns(ctx context.Context, k budgetKey, lookback time.Duration) ([]budgetRunRow, error) {
	rows, err := s.pool.Query(ctx, `
SELECT target, datname, schemaname, relname, indexrelname, entry, state, started_at, finished_at,
       coalesce((plan->>'cooldown')::bigint, 0)
  FROM repairs
 WHERE state IN ('running', 'succeeded', 'failed', 'rolled_back') AND started_at IS NOT NULL
   AND coalesce(finished_at, now()) > now() - $1 * interval '1 second'
   AND ($2 = '' OR (target = $2 AND schemaname = $3 AND indexrelname = $4))
 ORDER BY started_at DESC`, lookback.Seconds(), k.Target, k.Schema, k.Index)
	if err != nil {
		return nil, fmt.Errorf("read repair budget: %w", err)
	}
	var out []budgetRunRow
	for rows.Next() {
		var (
			b               budgetRunRow
			finished        *time.Time
			cooldownNanosec int64
		)
		if err := rows.Scan(&b.key.Target, &b.datname, &b.key.Schema, &b.relname, &b.key.Index, &b.run.Entry, &b.run.State,
			&b.run.Started, &finished, &cooldownNanosec); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read repair budget: %w", err)
		}
		if finished != nil {
			b.run.Finished = *finished
		}
		b.run.Cooldown = time.Duration(cooldownNanosec)
		out = append(out, b)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read repair budget: %w", err)
	}
	return out, nil
}

// runningByTarget counts the repairs running, by target.
func (s repairStore) runningByTarget(ctx context.Context) (map[string]int, error) {
	rows, err := s.pool.Query(ctx, `SELECT target, count(*) FROM repairs WHERE state = 'running' GROUP BY target`)
	if err != nil {
		return nil, fmt.Errorf("read running repairs: %w", err)
	}
	running := map[string]int{}
	var target string
	var n int
	if _, err := pgx.ForEachRow(rows, []any{&target, &n}, func() error { running[target] = n; return nil }); err != nil {
		return nil, fmt.Errorf("read running repairs: %w", err)
	}
	return running, nil
}

// runningIDs lists the repairs marked running, in any process, oldest first.
func (s repairStore) runningIDs(ctx context.Context) ([]int64, error) {
	rows, err := s.pool.Query(ctx, `SELECT id FROM repairs WHERE state = 'running' ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("find interrupted repairs: %w", err)
	}
	var ids []int64
	for rows.Next() {
		var id int64
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, fmt.Errorf("find interrupted repairs: %w", err)
		}
		ids = append(ids, id)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find interrupted repairs: %w", err)
	}
	return ids, nil
}

// The steps of earlier repairs of an index, which need the repair's index (repair_steps
// JOIN repairs).

// meanStepSeconds is the mean duration of the last 10 successful runs of strategy strat on
// the index, or on any index when this one has none; nil when there is no history.
func (s repairStore) meanStepSeconds(ctx context.Context, strat, target, schema, index string) (*float64, error) {
	var secs *float64
	err := s.pool.QueryRow(ctx, `
SELECT coalesce(
  (SELECT avg(d) FROM (SELECT extract(epoch FROM s.finished_at - s.started_at) AS d
     FROM repair_steps s JOIN repairs r ON r.id = s.repair_id
    WHERE s.strategy = $1 AND s.state = 'succeeded' AND r.target = $2 AND r.schemaname = $3 AND r.indexrelname = $4
    ORDER BY s.finished_at DESC LIMIT 10) x),
  (SELECT avg(d) FROM (SELECT extract(epoch FROM s.finished_at - s.started_at) AS d
     FROM repair_steps s WHERE s.strategy = $1 AND s.state = 'succeeded'
    ORDER BY s.finished_at DESC LIMIT 10) y))::float8`, strat, target, schema, index).Scan(&secs)
	return secs, err
}

// pastSteps reads the duration and impact of the last limit successful steps of strategy
// strat on the index, newest first.
func (s repairStore) pastSteps(ctx context.Context, strat, target, schema, index string, limit int) ([]strategy.PastStep, error) {
	rows, err := s.pool.Query(ctx, `
SELECT extract(epoch FROM s.finished_at - s.started_at)::float8, s.impact
  FROM repair_steps s JOIN repairs r ON r.id = s.repair_id
 WHERE s.strategy = $1 AND s.state = 'succeeded' AND s.impact IS NOT NULL AND s.finished_at IS NOT NULL
   AND r.target = $2 AND r.schemaname = $3 AND r.indexrelname = $4
 ORDER BY s.finished_at DESC LIMIT $5`, strat, target, schema, index, limit)
	if err != nil {
		return nil, fmt.Errorf("read history of %s: %w", strat, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (strategy.PastStep, error) {
		var secs float64
		var impact []byte
		if err := row.Scan(&secs, &impact); err != nil {
			return strategy.PastStep{}, err
		}
		p := strategy.PastStep{Duration: time.Duration(secs * float64(time.Second))}
		if err := json.Unmarshal(impact, &p.Impact); err != nil {
			return p, fmt.Errorf("impact of a %s step: %w", strat, err)
		}
		return p, nil
	})
}

// prune deletes the repairs (their steps go with them) finished before cutoff, then the
// alerts last seen before cutoff that no unfinished repair follows. It returns the rows
// deleted, those of the first statement too when the second fails.
func (s repairStore) prune(ctx context.Context, cutoff time.Time) (int64, error) {
	var total int64
	for _, q := range []string{
		`DELETE FROM repairs WHERE finished_at < $1`,
		`DELETE FROM alerts a WHERE a.last_seen_at < $1
		    AND NOT EXISTS (SELECT 1 FROM repairs r WHERE r.alert_id = a.id AND r.finished_at IS NULL)`,
	} {
		tag, err := s.pool.Exec(ctx, q, cutoff)
		if err != nil {
			return total, fmt.Errorf("prune: %w", err)
		}
		total += tag.RowsAffected()
	}
	return total, nil
}
