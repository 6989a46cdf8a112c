package engine

import (
	"context"
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
