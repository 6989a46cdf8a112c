// Package standby holds what reading figures from a hot standby needs: whether a server is one,
// how far its replay is behind the primary, waiting until it has replayed a position the
// primary wrote (a repair's end), and telling a query cancelled by a replay conflict from other
// errors. Page scans and probes read there cost the primary nothing; the statistics counters
// (n_dead_tup, vacuum times) are not maintained on a standby and stay with the primary.
package standby

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Querier is what the functions here query: a pool, a connection or a transaction.
type Querier interface {
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// InRecovery says whether q's server is a standby (pg_is_in_recovery()).
func InRecovery(ctx context.Context, q Querier) (bool, error) {
	var yes bool
	if err := q.QueryRow(ctx, `SELECT pg_is_in_recovery()`).Scan(&yes); err != nil {
		return false, fmt.Errorf("pg_is_in_recovery: %w", err)
	}
	return yes, nil
}

// PrimaryPosition is the primary's WAL position now, as text ("0/3000148"): what a standby
// must have replayed to show everything committed before this call. It is the insert position,
// not the write position: with synchronous_commit off a commit's record may still be in the
// WAL buffers, and a standby that replayed only what was written would not show it yet.
func PrimaryPosition(ctx context.Context, primary Querier) (string, error) {
	var lsn string
	if err := primary.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return "", fmt.Errorf("primary WAL position: %w", err)
	}
	return lsn, nil
}

// Lag is how far a standby's replay is behind its primary.
type Lag struct {
	Bytes int64 // WAL the primary wrote that the standby has not replayed
	// Seconds since the commit time of the last transaction replayed, 0 when the standby has
	// replayed everything; it grows on a standby that stopped replaying even when the primary
	// is idle, which Bytes alone does not show.
	Seconds float64
	Paused  bool // replay paused (pg_wal_replay_pause())
}

// ReadLag reads the lag of standby behind primary: one query on each.
func ReadLag(ctx context.Context, primary, standby Querier) (Lag, error) {
	lsn, err := PrimaryPosition(ctx, primary)
	if err != nil {
		return Lag{}, err
	}
	var l Lag
	var state string
	err = standby.QueryRow(ctx, `SELECT greatest(pg_wal_lsn_diff($1::pg_lsn, pg_last_wal_replay_lsn()), 0)::bigint,
		CASE WHEN pg_last_wal_replay_lsn() >= $1::pg_lsn THEN 0
		     ELSE coalesce(extract(epoch FROM now() - pg_last_xact_replay_timestamp()), 0) END,
		pg_get_wal_replay_pause_state()`, lsn).Scan(&l.Bytes, &l.Seconds, &state)
	if err != nil {
		return Lag{}, fmt.Errorf("standby replay position: %w", err)
	}
	l.Paused = state != "not paused"
	return l, nil
}

// ErrBehind says a standby did not replay a position within the time it was given.
var ErrBehind = errors.New("standby has not replayed the position")

// AwaitReplay waits, polling every poll, until standby has replayed lsn (a position the
// primary wrote, e.g. at the end of a repair's step), for at most limit. It returns an error
// wrapping ErrBehind, with the position reached, when the limit passes first.
func AwaitReplay(ctx context.Context, standby Querier, lsn string, limit, poll time.Duration) error {
	deadline := time.Now().Add(limit)
	for {
		var done bool
		var at string
		err := standby.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn, pg_last_wal_replay_lsn()::text`, lsn).Scan(&done, &at)
		if err != nil {
			return fmt.Errorf("standby replay position: %w", err)
		}
		if done {
			return nil
		}
		if !time.Now().Before(deadline) {
			return fmt.Errorf("%w %s within %s: replayed up to %s", ErrBehind, lsn, limit, at)
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("wait for the standby to replay %s: %w", lsn, ctx.Err())
		case <-time.After(min(poll, time.Until(deadline))):
		}
	}
}

// AwaitPrimary waits, as AwaitReplay, until standby has replayed the primary's WAL position at
// the time of the call: then it shows everything committed on the primary before.
func AwaitPrimary(ctx context.Context, primary, standby Querier, limit, poll time.Duration) error {
	lsn, err := PrimaryPosition(ctx, primary)
	if err != nil {
		return err
	}
	return AwaitReplay(ctx, standby, lsn, limit, poll)
}

// IsReplayConflict says whether err is a query a standby cancelled because replaying the
// primary's WAL needed what the query held (a snapshot of rows a VACUUM removed, a lock, a
// buffer pin): PostgreSQL reports it as a serialization failure "due to conflict with
// recovery". Such a read is worth trying again; it says nothing about the index.
func IsReplayConflict(err error) bool {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		return false
	}
	return (pgErr.Code == "40001" || pgErr.Code == "57P04") && strings.Contains(pgErr.Message, "conflict with recovery")
}
