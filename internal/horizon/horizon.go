// Package horizon finds what holds back the xmin horizon of a database: the oldest
// transaction, snapshot or replication feedback that VACUUM must still respect, so that dead
// rows deleted after it can be removed neither by VACUUM nor by a rebuild of an index (which
// copies every row an old snapshot may still see). The exporter publishes the holder and the
// repair engine holds back the steps that cannot help while it holds; both read it here.
package horizon

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// The kinds of holder. They are label values (pgvector_xmin_horizon_age_*{kind}) and never change.
const (
	// KindSession is a backend of the database running a statement or holding a snapshot or a
	// transaction ID (a long query, an open REPEATABLE READ transaction).
	KindSession = "session"
	// KindIdleInTransaction is a backend of the database idle inside its transaction.
	KindIdleInTransaction = "idle_in_transaction"
	// KindPrepared is a prepared transaction of the database (PREPARE TRANSACTION).
	KindPrepared = "prepared"
	// KindReplicationSlot is a replication slot of the cluster with an xmin (a physical slot
	// of a standby with hot_standby_feedback). Its catalog_xmin holds back catalogs only,
	// never a vector table, and is not counted.
	KindReplicationSlot = "replication_slot"
	// KindStandbyFeedback is a walsender reporting a standby's oldest snapshot
	// (hot_standby_feedback) without a slot.
	KindStandbyFeedback = "standby_feedback"
)

// Holder is the oldest holder of the xmin horizon of a database.
type Holder struct {
	Kind string
	// Name is the backend's pid (session, idle_in_transaction, standby_feedback), the prepared
	// transaction's gid or the slot's name.
	Name string
	// AgeXIDs is age(xmin): the transactions started since the oldest one it holds back.
	AgeXIDs float64
	// Age is how long it has held: since its transaction began (sessions) or since it was
	// prepared. Nil for slots and standby feedback, whose start PostgreSQL does not record.
	Age *time.Duration
}

// Timed says whether the holder's age in seconds is known.
func (h *Holder) Timed() bool { return h.Age != nil }

// String names the holder for a log line or a repair record.
func (h *Holder) String() string {
	if h.Age != nil {
		return fmt.Sprintf("%s %s, holding for %s (%.0f transactions)", h.Kind, h.Name, h.Age.Round(time.Second), h.AgeXIDs)
	}
	return fmt.Sprintf("%s %s, %.0f transactions behind", h.Kind, h.Name, h.AgeXIDs)
}

// Querier is what Oldest reads through: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// oldestSQL lists the candidates PostgreSQL 15's ComputeXidHorizons counts for a table of the
// connected database and returns the one with the oldest xmin. $1 is the least age, in seconds,
// of a session or prepared transaction: younger ones are ordinary work, and naming each would
// give every scrape of a busy database a new pid label.
//
// Left out: the backend running this query; vectorheal's own reads (application_name
// vectorheal), bounded by their statement timeouts, so that the exporter and the engine never
// name each other; and backends running a lazy VACUUM (pg_stat_progress_vacuum), which other
// vacuums ignore (PROC_IN_VACUUM). vectorheal's own rebuilds (vectorheal-repair) do hold the
// horizon while they run and are counted. Without pg_read_all_stats (pg_monitor), backends of
// other roles show no backend_xmin and walsenders no backend_xmin: only the role's own sessions,
// prepared transactions and slots are seen.
const oldestSQL = `
WITH holders (kind, name, x, since) AS (
  SELECT CASE WHEN a.state LIKE 'idle in transaction%' THEN 'idle_in_transaction' ELSE 'session' END,
         a.pid::text,
         CASE WHEN a.backend_xid IS NULL OR (a.backend_xmin IS NOT NULL AND age(a.backend_xmin) >= age(a.backend_xid))
              THEN a.backend_xmin ELSE a.backend_xid END,
         a.xact_start
  FROM pg_stat_activity a
  WHERE a.datname = current_database() AND a.pid <> pg_backend_pid()
    AND coalesce(a.application_name, '') <> 'vectorheal'
    AND (a.backend_xmin IS NOT NULL OR a.backend_xid IS NOT NULL)
    AND a.xact_start <= now() - $1 * interval '1 second'
    AND NOT EXISTS (SELECT 1 FROM pg_stat_progress_vacuum v WHERE v.pid = a.pid)
  UNION ALL
  SELECT 'prepared', p.gid, p.transaction, p.prepared
  FROM pg_prepared_xacts p
  WHERE p.database = current_database() AND p.prepared <= now() - $1 * interval '1 second'
  UNION ALL
  SELECT 'replication_slot', s.slot_name::text, s.xmin, NULL::timestamptz
  FROM pg_replication_slots s WHERE s.xmin IS NOT NULL
  UNION ALL
  SELECT 'standby_feedback', r.pid::text, r.backend_xmin, NULL::timestamptz
  FROM pg_stat_replication r WHERE r.backend_xmin IS NOT NULL
)
SELECT kind, name, age(x)::float8, extract(epoch FROM now() - since)::float8
FROM holders
ORDER BY age(x) DESC, since NULLS LAST, name
LIMIT 1`

// Oldest returns the oldest holder of the xmin horizon of the database q is connected to,
// among sessions and prepared transactions older than minAge and the cluster's slots and
// standby feedback; nil when there is none.
func Oldest(ctx context.Context, q Querier, minAge time.Duration) (*Holder, error) {
	h := &Holder{}
	var secs *float64
	err := q.QueryRow(ctx, oldestSQL, minAge.Seconds()).Scan(&h.Kind, &h.Name, &h.AgeXIDs, &secs)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read xmin horizon: %w", err)
	}
	if secs != nil {
		d := time.Duration(max(*secs, 0) * float64(time.Second))
		h.Age = &d
	}
	return h, nil
}
