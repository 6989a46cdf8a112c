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
// durable together.
func (e *Engine) Hook(ctx context.Context, tx pgx.Tx, alerts []webhook.Alert) error {
	rb := e.currentRunbook()
	for _, a := range alerts {
		switch a.Status {
		case "resolved":
			if err := e.cancelForResolved(ctx, tx, a); err != nil {
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
				if _, _, err := e.enqueue(ctx, tx, newRepair{alert: &a, labels: a.Labels, plan: plan, by: "alertmanager"}); err != nil {
					return err
				}
			}
		}
	}
	return nil
}

// newRepair is what enqueue records.
type newRepair struct {
	alert  *webhook.Alert // nil for manual repairs
	labels map[string]string
	plan   Plan
	by     string
}

// enqueue records a repair and, unless it awaits approval, its job. It returns the repair's
// id and false when the same alert had already queued this entry.
func (e *Engine) enqueue(ctx context.Context, tx pgx.Tx, n newRepair) (int64, bool, error) {
	plan, err := json.Marshal(n.plan)
	if err != nil {
		return 0, false, fmt.Errorf("encode plan: %w", err)
	}
	labels, err := json.Marshal(n.labels)
	if err != nil {
		return 0, false, fmt.Errorf("encode labels: %w", err)
	}
	state, reason := "queued", ""
	if n.plan.Approval {
		state, reason = "awaiting_approval", "approval_pending"
	}
	var (
		alertID  *int64
		fp       string
		startsAt *time.Time
	)
	if n.alert != nil {
		alertID, fp, startsAt = &n.alert.ID, n.alert.Fingerprint, &n.alert.StartsAt
	}
	var id int64
	err = tx.QueryRow(ctx, `
INSERT INTO repairs (alert_id, fingerprint, alert_starts_at, alertname, labels, entry, plan, priority,
                     target, datname, schemaname, relname, indexrelname, state, requested_by, reason)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16)
ON CONFLICT (fingerprint, alert_starts_at, entry) WHERE fingerprint <> '' DO NOTHING
RETURNING id`,
		alertID, fp, startsAt, n.labels["alertname"], labels, n.plan.Entry, plan, n.plan.Priority,
		n.labels["target"], n.labels["datname"], n.labels["schemaname"], n.labels["relname"], n.labels["indexrelname"],
		state, n.by, reason).Scan(&id)
	if errors.Is(err, pgx.ErrNoRows) {
		return 0, false, nil
	}
	if err != nil {
		return 0, false, fmt.Errorf("record repair: %w", err)
	}
	if state == "queued" {
		if err := e.insertJob(ctx, tx, id, n.plan.Priority); err != nil {
			return 0, false, err
		}
	}
	e.log.Info("repair queued", "repair", id, "entry", n.plan.Entry, "state", state,
		"target", n.labels["target"], "index", n.labels["schemaname"]+"."+n.labels["indexrelname"])
	return id, true, nil
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

// cancelForResolved cancels the repairs of a resolved alert that have not started.
func (e *Engine) cancelForResolved(ctx context.Context, tx pgx.Tx, a webhook.Alert) error {
	rows, err := tx.Query(ctx, `
UPDATE repairs SET state = 'cancelled', reason = 'resolved', finished_at = now()
 WHERE fingerprint = $1 AND alert_starts_at = $2 AND state IN ('queued', 'awaiting_approval')
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
