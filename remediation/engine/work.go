package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"
	"unicode"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// giveUpAfter is how long a repair waits for Alertmanager or its target to answer before it
// is skipped for good.
const giveUpAfter = time.Hour

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
       schemaname, relname, indexrelname, state, reason, cancel_requested_by, created_at
  FROM repairs WHERE id = $1`, id).Scan(&r.ID, &r.JobID, &r.Fingerprint, &r.StartsAt, &labels, &r.Entry, &plan,
		&r.Priority, &r.Target, &r.Datname, &r.Schema, &r.Table, &r.Index, &r.State, &r.Reason, &r.CancelRequestedBy, &r.CreatedAt)
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

// work runs repair id once River hands its job to this process.
func (e *Engine) work(ctx context.Context, id int64) error {
	r, err := e.load(ctx, e.o.State, id)
	if errors.Is(err, errNoRepair) {
		return nil // pruned
	}
	if err != nil {
		return err
	}
	if r.terminal() || r.State == "awaiting_approval" {
		return nil
	}
	lock, ok, err := e.lockIndex(ctx, r)
	if err != nil {
		return err
	}
	if !ok {
		e.log.Debug("index busy, repair waits", "repair", r.ID, "index", r.Schema+"."+r.Index)
		return river.JobSnooze(e.o.LockRetry)
	}
	defer lock.release(ctx)
	// Another worker may have finished or started it between our read and the lock.
	if r, err = e.load(ctx, e.o.State, id); err != nil {
		return err
	}
	switch r.State {
	case "running":
		// Its worker died: whoever ran it held this lock, and we have it now.
		return e.recoverRepair(ctx, r)
	case "queued":
	default:
		return nil
	}

	if !r.Plan.Manual {
		reason, retry, err := e.precheck(ctx, r)
		if err != nil {
			return err
		}
		if retry && time.Since(r.CreatedAt) < giveUpAfter {
			if _, err := e.o.State.Exec(ctx, `UPDATE repairs SET reason = $2 WHERE id = $1`, r.ID, reason); err != nil {
				return fmt.Errorf("record wait reason: %w", err)
			}
			e.log.Warn("repair waits", "repair", r.ID, "reason", reason)
			return river.JobSnooze(e.o.LockRetry)
		}
		if reason != "" {
			return e.skip(ctx, r, reason, "")
		}
	}
	ix, env, reason, detail, err := e.resolve(ctx, r)
	if err != nil {
		if time.Since(r.CreatedAt) < giveUpAfter {
			e.log.Warn("target not reachable, repair waits", "repair", r.ID, "err", err)
			return river.JobSnooze(e.o.LockRetry)
		}
		return e.skip(ctx, r, "target_unreachable", err.Error())
	}
	if reason != "" {
		return e.skip(ctx, r, reason, detail)
	}
	if detail, healthy := e.alreadyHealthy(ctx, r, ix, env); healthy {
		return e.skip(ctx, r, "already_healthy", detail)
	}
	tag, err := e.o.State.Exec(ctx, `
UPDATE repairs SET state = 'running', started_at = now(), runner = $2, reason = '', datname = $3, relname = $4
 WHERE id = $1 AND state = 'queued'`, r.ID, e.o.ID, ix.Datname, ix.Table)
	if err != nil {
		return fmt.Errorf("start repair %d: %w", r.ID, err)
	}
	if tag.RowsAffected() == 0 {
		return nil // cancelled meanwhile
	}
	r.Datname, r.Table = ix.Datname, ix.Table
	e.metrics.active.Inc()
	defer e.metrics.active.Dec()
	e.log.Info("repair started", "repair", r.ID, "entry", r.Entry, "target", r.Target, "index", ix.String(), "dry_run", r.Plan.DryRun)
	res := e.execute(ctx, r, ix, env)
	return e.finish(ctx, r, res)
}

// precheck decides whether an automatic repair may run now. retry means the answer is not
// known yet (Alertmanager down): the repair waits and asks again, so nothing runs on a
// silence that could not be read.
func (e *Engine) precheck(ctx context.Context, r repairRow) (reason string, retry bool, err error) {
	var open bool
	err = e.o.State.QueryRow(ctx, `SELECT coalesce((SELECT open FROM circuits
		WHERE target = $1 AND ($2 = '' OR datname = $2) AND schemaname = $3 AND indexrelname = $4
		ORDER BY open DESC LIMIT 1), false)`,
		r.Target, r.Datname, r.Schema, r.Index).Scan(&open)
	if err != nil {
		return "", false, fmt.Errorf("read circuit: %w", err)
	}
	if open {
		return "circuit_open", false, nil
	}
	if !r.Plan.inWindow(time.Now()) {
		return "window", false, nil
	}
	if r.Plan.Cooldown > 0 {
		var recent bool
		err = e.o.State.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM repairs
			WHERE target = $1 AND ($2 = '' OR datname = $2) AND schemaname = $3 AND indexrelname = $4 AND entry = $5
			  AND state IN ('succeeded', 'failed', 'rolled_back') AND finished_at > now() - $6 * interval '1 second')`,
			r.Target, r.Datname, r.Schema, r.Index, r.Entry, r.Plan.Cooldown.Seconds()).Scan(&recent)
		if err != nil {
			return "", false, fmt.Errorf("read cooldown: %w", err)
		}
		if recent {
			return "cooldown", false, nil
		}
	}
	var n int
	err = e.o.State.QueryRow(ctx, `SELECT count(*) FROM repairs
		WHERE target = $1 AND ($2 = '' OR datname = $2) AND schemaname = $3 AND indexrelname = $4
		  AND state IN ('succeeded', 'failed', 'rolled_back') AND started_at > now() - $5 * interval '1 second'`,
		r.Target, r.Datname, r.Schema, r.Index, e.o.Config.FlapWindow.Seconds()).Scan(&n)
	if err != nil {
		return "", false, fmt.Errorf("read flap guard: %w", err)
	}
	if n >= e.o.Config.FlapMaxRepairs {
		return "flapping", false, nil
	}
	if r.Fingerprint == "" {
		return "", false, nil
	}
	var resolved bool
	err = e.o.State.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM alerts
		WHERE fingerprint = $1 AND starts_at = $2 AND status = 'resolved')`, r.Fingerprint, r.StartsAt).Scan(&resolved)
	if err != nil {
		return "", false, fmt.Errorf("read alert state: %w", err)
	}
	if resolved {
		return "resolved", false, nil
	}
	if e.o.Alertmanager == nil {
		return "", false, nil
	}
	st, err := e.o.Alertmanager.Alert(ctx, r.Labels, r.Fingerprint)
	if err != nil {
		e.log.Warn("alertmanager unreachable", "repair", r.ID, "err", err)
		return "alertmanager_unreachable", true, nil
	}
	switch {
	case !st.Firing(time.Now()):
		return "resolved", false, nil
	case len(st.SilencedBy) > 0:
		return "silenced", false, nil
	case len(st.InhibitedBy) > 0:
		return "inhibited", false, nil
	}
	return "", false, nil
}

// resolve turns the repair's labels into a catalog index on its target. A reason means the
// labels name nothing to repair; an error means the target did not answer.
func (e *Engine) resolve(ctx context.Context, r repairRow) (catalog.Index, strategy.Env, string, string, error) {
	for _, f := range []struct{ name, v string }{
		{"target", r.Target}, {"schemaname", r.Schema}, {"indexrelname", r.Index}, {"datname", r.Datname},
	} {
		if f.v == "" && f.name == "datname" {
			continue
		}
		if !plainName(f.v) {
			return catalog.Index{}, strategy.Env{}, "invalid_labels", fmt.Sprintf("label %s=%q is not a plain name", f.name, f.v), nil
		}
	}
	t, ok := e.o.Targets.Get(r.Target)
	if !ok {
		return catalog.Index{}, strategy.Env{}, "unknown_target", fmt.Sprintf("no target named %q", r.Target), nil
	}
	if !t.Watches(r.Schema, r.Index) {
		return catalog.Index{}, strategy.Env{}, "excluded", fmt.Sprintf("%s.%s is excluded by target %q", r.Schema, r.Index, r.Target), nil
	}
	ix, err := catalog.Resolve(ctx, t.Pool, r.Schema, r.Index)
	if errors.Is(err, catalog.ErrNotFound) || errors.Is(err, catalog.ErrNotVector) {
		return catalog.Index{}, strategy.Env{}, "index_not_found", err.Error(), nil
	}
	if err != nil {
		return catalog.Index{}, strategy.Env{}, "", "", err
	}
	if r.Datname != "" && ix.Datname != r.Datname {
		return catalog.Index{}, strategy.Env{}, "index_not_found",
			fmt.Sprintf("target %q is database %q, the alert names %q", r.Target, ix.Datname, r.Datname), nil
	}
	env := strategy.Env{Target: r.Target, Pool: t.Pool, Measure: e.o.Measurer, Labels: r.Labels,
		Logger: e.log.With("repair", r.ID, "index", ix.String())}
	return ix, env, "", "", nil
}

// plainName accepts what PostgreSQL and vectorheal names look like in practice (letters,
// digits, _ - . $) and refuses anything that reads like SQL or shell text. The value is only
// ever looked up as data; this refusal makes an attempt visible as invalid_labels.
func plainName(s string) bool {
	if s == "" || len(s) > 63 {
		return false
	}
	for _, c := range s {
		if !unicode.IsLetter(c) && !unicode.IsDigit(c) && c != '_' && c != '-' && c != '.' && c != '$' {
			return false
		}
	}
	return true
}

// alreadyHealthy re-measures the first step's validation figure of an automatic repair before
// anything runs. One fault often raises several alerts (an IVFFlat imbalance and a distribution
// shift, a warning and a critical tier): the repair of the first heals the index, and the
// others, queued behind the index lock, would rebuild it again for nothing. A manual repair,
// a dry run, a step without validation or a failed measurement runs as planned.
func (e *Engine) alreadyHealthy(ctx context.Context, r repairRow, ix catalog.Index, env strategy.Env) (string, bool) {
	if r.Plan.Manual || r.Plan.DryRun || len(r.Plan.Steps) == 0 || r.Plan.Steps[0].Validate == nil {
		return "", false
	}
	v := *r.Plan.Steps[0].Validate
	got, err := e.o.Measurer.Measure(ctx, env.Pool, ix, v.Figure)
	if err != nil {
		return "", false
	}
	if ok, err := v.check(got); err != nil || !ok {
		return "", false
	}
	return fmt.Sprintf("%s = %g already meets %s %g", v.Figure, got, v.Op, v.Value), true
}

// skip finishes a repair that did not run.
func (e *Engine) skip(ctx context.Context, r repairRow, reason, detail string) error {
	_, err := e.o.State.Exec(ctx, `UPDATE repairs SET state = 'skipped', reason = $2, error = $3, finished_at = now()
		WHERE id = $1 AND state = 'queued'`, r.ID, reason, detail)
	if err != nil {
		return fmt.Errorf("record skip of repair %d: %w", r.ID, err)
	}
	e.metrics.skip(reason, r.firstStrategy())
	e.log.Info("repair skipped", "repair", r.ID, "reason", reason, "detail", detail)
	return nil
}

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
	// A target is one database, so datname (absent from some alerts) is left out of the key.
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

// lockKey names an index for the lock; length prefixes keep names with separators apart.
func lockKey(target, schema, index string) string {
	return fmt.Sprintf("vectorheal/repair/%d:%s/%d:%s/%d:%s", len(target), target, len(schema), schema, len(index), index)
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
