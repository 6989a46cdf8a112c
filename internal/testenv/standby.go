package testenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
)

// StartStandby makes a hot standby of primary, as an operator makes a streaming replica:
// pg_basebackup -R (the WAL of the copy streamed with it, primary_conninfo and standby.signal
// written) into a new temporary directory, then the server started there on a free port. Its
// databases are the primary's, read-only, as of its replay position. extraConf is appended to
// its postgresql.conf (e.g. max_standby_streaming_delay). Destroy removes it.
func StartStandby(ctx context.Context, primary *Postgres, extraConf string) (*Postgres, error) {
	dir, err := os.MkdirTemp("", "vectorheal-standby-")
	if err != nil {
		return nil, fmt.Errorf("temp dir: %w", err)
	}
	sb := &Postgres{Dir: dir, User: primary.User, bin: primary.bin, cred: primary.cred, uid: primary.uid, gid: primary.gid}
	if sb.uid >= 0 {
		if err := os.Chown(dir, sb.uid, sb.gid); err != nil {
			os.RemoveAll(dir)
			return nil, err
		}
	}
	cmd := sb.command(ctx, "pg_basebackup", "-D", sb.DataDir(), "-h", "127.0.0.1", "-p", strconv.Itoa(primary.Port),
		"-U", primary.User, "-R", "-X", "stream", "-c", "fast", "--no-sync")
	if out, err := cmd.CombinedOutput(); err != nil {
		os.RemoveAll(dir)
		return nil, fmt.Errorf("pg_basebackup: %w\n%s", err, out)
	}
	// The copy carries the primary's postgresql.conf: its own socket directory, and a hot
	// standby that answers queries.
	if err := sb.appendConf("unix_socket_directories = '" + dir + "'\nhot_standby = on\n" + extraConf); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	if err := sb.Start(ctx); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	return sb, nil
}

// WaitReplayed waits until standby has replayed the primary's WAL as of now: what a test does
// before comparing what the two servers show. It gives up when ctx ends.
func WaitReplayed(ctx context.Context, primaryDSN, standbyDSN string) error {
	p, err := pgx.Connect(ctx, primaryDSN)
	if err != nil {
		return fmt.Errorf("connect primary: %w", err)
	}
	defer p.Close(ctx)
	var lsn string
	if err := p.QueryRow(ctx, `SELECT pg_current_wal_insert_lsn()::text`).Scan(&lsn); err != nil {
		return fmt.Errorf("primary WAL position: %w", err)
	}
	s, err := pgx.Connect(ctx, standbyDSN)
	if err != nil {
		return fmt.Errorf("connect standby: %w", err)
	}
	defer s.Close(ctx)
	for {
		var done bool
		if err := s.QueryRow(ctx, `SELECT pg_last_wal_replay_lsn() >= $1::pg_lsn`, lsn).Scan(&done); err != nil {
			return fmt.Errorf("standby replay position: %w", err)
		}
		if done {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("standby did not replay up to %s: %w", lsn, ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
