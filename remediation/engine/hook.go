package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/riverqueue/river"

	"github.com/vectorheal/vectorheal/webhook"
)

// RepairArgs is the River job of one repair; everything else is in the repairs row.
type RepairArgs struct {
	RepairID int64 `json:"repair_id"`
}

// Kind is fixed forever, so queued jobs still run after an upgrade.
func (RepairArgs) Kind() string { return "repair" }

// Hook is the webhook.Hook: for each newly recorded firing alert it queues one repair per
// matching runbook entry, and for each resolved alert it cancels the repairs of that alert
// still waiting. It runs in the webhook's transaction, so the alert and its repairs are
// durable together. The repairs of one notification are written in three statements
// whatever their number, so intake stays fast for large alert groups.
func (e *Engine) Hook(ctx context.Context, tx pgx.Tx, alerts []webhook.Alert) error {
	rb := e.currentRunbook()
	var batch []newRepair
	for i := range alerts {
		a := &alerts[i]
		switch a.Status {
		case "resolved":
			if err := e.cancelForResolved(ctx, tx, *a); err != nil {
				return err
			}
		case "firing":
			if rb == nil {
				continue
			}
			for _, entry := range rb.Match(a.Labels) {
				plan := planFromEntry(entry)
				if plan.Priority <= 0 {
					plan.Priority = severityScore(a.Labels["severity"])
				}
				batch = append(batch, newRepair{alert: a, labels: a.Labels, plan: plan, by: "alertmanager"})
			}
		}
	}
	_, err := e.enqueue(ctx, tx, batch)
	return err
}

// newRepair is what enqueue records.
type newRepair struct {
	alert  *webhook.Alert // nil for manual repairs
	labels map[string]string
	plan   Plan
	by     string
}

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

// enqueue records repairs and the River jobs of those that need no approval, all in tx. It
// returns the ids of the repairs it created, in the order given, 0 for one that already
// existed.
func (e *Engine) enqueue(ctx context.Context, tx pgx.Tx, rs []newRepair) ([]int64, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	ids, err := recordRepairs(ctx, tx, rs)
	if err != nil {
		return nil, err
	}
	if err := e.queueJobs(ctx, tx, rs, ids); err != nil {
		return nil, err
	}
	return ids, nil
}

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

// recordRepairs inserts the rows of rs and returns their ids in the order given, 0 for one
// that already existed.
func recordRepairs(ctx context.Context, tx pgx.Tx, rs []newRepair) ([]int64, error) {
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

// queueJobs inserts the River jobs of the repairs of rs recorded now (ids[i] not 0) that need
// no approval, and links each repair to its job.
func (e *Engine) queueJobs(ctx context.Context, tx pgx.Tx, rs []newRepair, ids []int64) error {
	var (
		jobs    []river.InsertManyParams
		jobRepo []int64
	)
	for i, r := range rs {
		if ids[i] == 0 || r.plan.Approval {
			continue
		}
		jobs = append(jobs, river.InsertManyParams{Args: RepairArgs{RepairID: ids[i]},
			InsertOpts: &river.InsertOpts{Queue: queueName, Priority: riverPriority(r.plan.Priority)}})
		jobRepo = append(jobRepo, ids[i])
		e.log.Info("repair queued", "repair", ids[i], "entry", r.plan.Entry,
			"target", r.labels["target"], "index", r.labels["schemaname"]+"."+r.labels["indexrelname"])
	}
	if len(jobs) == 0 {
		return nil
	}
	res, err := e.river.InsertManyTx(ctx, tx, jobs)
	if err != nil {
		return fmt.Errorf("queue repairs: %w", err)
	}
	jobIDs := make([]int64, len(res))
	for i, r := range res {
		jobIDs[i] = r.Job.ID
	}
	if _, err := tx.Exec(ctx, `UPDATE repairs r SET job_id = u.job FROM unnest($1::bigint[], $2::bigint[]) AS u(id, job)
		WHERE r.id = u.id`, jobRepo, jobIDs); err != nil {
		return fmt.Errorf("link repairs to their jobs: %w", err)
	}
	return nil
}

// repairKey tells the repairs of one batch apart: alert, start and entry for alert repairs;
// the position among manual ones for those.
func repairKey(fp string, startsAt *time.Time, entry string, manual int) string {
	if fp == "" {
		return fmt.Sprintf("manual/%d", manual)
	}
	return fmt.Sprintf("%s/%d/%s", fp, startsAt.UnixMicro(), entry)
}

// insertJob queues the River job of repair id and links it.
func (e *Engine) insertJob(ctx context.Context, tx pgx.Tx, id int64, score int) error {
	res, err := e.river.InsertTx(ctx, tx, RepairArgs{RepairID: id}, &river.InsertOpts{
		Queue:    queueName,
		Priority: riverPriority(score),
	})
	if err != nil {
		return fmt.Errorf("queue repair %d: %w", id, err)
	}
	if _, err := tx.Exec(ctx, `UPDATE repairs SET job_id = $2 WHERE id = $1`, id, res.Job.ID); err != nil {
		return fmt.Errorf("link repair %d to its job: %w", id, err)
	}
	return nil
}

// cancelForResolved cancels the repairs of a resolved alert that have not started: those of
// this firing of the alert and of any earlier one still waiting. A repair a person approved
// and that waits only for its turn stays: the alert resolving (a figure near its threshold
// can flap) does not take back a person's decision; the repair's own check that the index is
// already healthy still skips it when it is.
func (e *Engine) cancelForResolved(ctx context.Context, tx pgx.Tx, a webhook.Alert) error {
	rows, err := tx.Query(ctx, `
UPDATE repairs SET state = 'cancelled', reason = 'resolved', finished_at = now()
 WHERE fingerprint = $1 AND alert_starts_at <= $2
   AND (state = 'awaiting_approval' OR state = 'queued' AND approved_by = '')
RETURNING id, job_id, plan->'steps'->0->>'strategy'`, a.Fingerprint, a.StartsAt)
	if err != nil {
		return fmt.Errorf("cancel repairs of resolved alert: %w", err)
	}
	type cancelled struct {
		id       int64
		job      *int64
		strategy *string
	}
	var cs []cancelled
	for rows.Next() {
		var c cancelled
		if err := rows.Scan(&c.id, &c.job, &c.strategy); err != nil {
			rows.Close()
			return fmt.Errorf("cancel repairs of resolved alert: %w", err)
		}
		cs = append(cs, c)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("cancel repairs of resolved alert: %w", err)
	}
	for _, c := range cs {
		if c.job != nil {
			if _, err := e.river.JobCancelTx(ctx, tx, *c.job); err != nil && !errors.Is(err, river.ErrNotFound) {
				return fmt.Errorf("cancel job of repair %d: %w", c.id, err)
			}
		}
		e.metrics.skip("resolved", deref(c.strategy))
		e.log.Info("repair cancelled: alert resolved", "repair", c.id)
	}
	return nil
}

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
