package engine

import (
	"context"
	"errors"
	"fmt"

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

// enqueue records repairs and the River jobs of those that need no approval, all in tx. It
// returns the ids of the repairs it created, in the order given, 0 for one that already
// existed.
func (e *Engine) enqueue(ctx context.Context, tx pgx.Tx, rs []newRepair) ([]int64, error) {
	if len(rs) == 0 {
		return nil, nil
	}
	ids, err := e.repairs.insert(ctx, tx, rs)
	if err != nil {
		return nil, err
	}
	if err := e.queueJobs(ctx, tx, rs, ids); err != nil {
		return nil, err
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
	return e.repairs.linkJobs(ctx, tx, jobRepo, jobIDs)
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
	return e.repairs.linkJob(ctx, tx, id, res.Job.ID)
}

// cancelForResolved cancels the repairs of a resolved alert that have not started: those of
// this firing of the alert and of any earlier one still waiting. A repair a person approved
// and that waits only for its turn stays: the alert resolving (a figure near its threshold
// can flap) does not take back a person's decision; the repair's own check that the index is
// already healthy still skips it when it is.
func (e *Engine) cancelForResolved(ctx context.Context, tx pgx.Tx, a webhook.Alert) error {
	cs, err := e.repairs.cancelForResolved(ctx, tx, a.Fingerprint, a.StartsAt)
	if err != nil {
		return err
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
