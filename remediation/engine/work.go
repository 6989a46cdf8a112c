package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
)

// repairWorker is River's worker of RepairArgs.
type repairWorker struct {
	river.WorkerDefaults[RepairArgs]
	e *Engine
}

// Timeout is -1: the engine applies the runbook's timeout itself, so that a timeout still
// leaves time to roll back and record.
func (w *repairWorker) Timeout(*river.Job[RepairArgs]) time.Duration { return -1 }

func (w *repairWorker) Work(ctx context.Context, job *river.Job[RepairArgs]) error {
	return w.e.work(ctx, job.Args.RepairID)
}

// repairRow is one row of repairs.
type repairRow struct {
	ID                int64
	JobID             *int64
	Fingerprint       string
	StartsAt          *time.Time
	Labels            map[string]string
	Entry             string
	Plan              Plan
	Priority          int
	Target, Datname   string
	Schema, Table     string
	Index             string
	State, Reason     string
	CancelRequestedBy string
	ApprovedBy        string // "" until a person approves the repair (or a step of it)
	Deferrals         int    // times a step said "retry later"
	CreatedAt         time.Time
}

func (r repairRow) terminal() bool {
	switch r.State {
	case "queued", "awaiting_approval", "running":
		return false
	}
	return true
}

func (r repairRow) firstStrategy() string {
	if len(r.Plan.Steps) == 0 {
		return ""
	}
	return r.Plan.Steps[0].Strategy
}

var errNoRepair = errors.New("no such repair")

func (e *Engine) load(ctx context.Context, q querier, id int64) (repairRow, error) {
	var (
		r            repairRow
		labels, plan []byte
	)
	err := q.QueryRow(ctx, `
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

// querier is a pool, connection or transaction.
type querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

func isNoRows(err error) bool { return errors.Is(err, pgx.ErrNoRows) }

// indexLock is a session advisory lock on one index, held on a dedicated connection of the
// state store for the whole repair. If the process dies, PostgreSQL ends the session and the
// lock goes with it, so a lock never outlives its holder.
type indexLock struct {
	conn *pgxpool.Conn
	key  string
}

func (e *Engine) lockIndex(ctx context.Context, r repairRow) (*indexLock, bool, error) {
	conn, err := e.o.State.Acquire(ctx)
	if err != nil {
		return nil, false, fmt.Errorf("index lock: %w", err)
	}
	key := lockKey(r.Target, r.Schema, r.Index)
	var ok bool
	if err := conn.QueryRow(ctx, `SELECT pg_try_advisory_lock(hashtextextended($1, 0))`, key).Scan(&ok); err != nil {
		conn.Release()
		return nil, false, fmt.Errorf("index lock: %w", err)
	}
	if !ok {
		conn.Release()
		return nil, false, nil
	}
	return &indexLock{conn: conn, key: key}, true, nil
}

func (l *indexLock) release(ctx context.Context) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
	defer cancel()
	if _, err := l.conn.Exec(ctx, `SELECT pg_advisory_unlock(hashtextextended($1, 0))`, l.key); err != nil {
		// Closing the session is the other way to drop the lock.
		_ = l.conn.Hijack().Close(ctx)
		return
	}
	l.conn.Release()
}
