package standby_test

import (
	"context"
	"errors"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/standby"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func connect(t *testing.T, dsn string) *pgx.Conn {
	t.Helper()
	c, err := pgx.Connect(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(context.Background()) })
	return c
}

func exec(t *testing.T, c *pgx.Conn, stmts ...string) {
	t.Helper()
	for _, q := range stmts {
		if _, err := c.Exec(context.Background(), q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
}

// pair is a new database on the shared cluster, set up with stmts, and a connection to it on
// the primary and on a new streaming standby made with conf.
func pair(t *testing.T, conf string, stmts ...string) (primary, replica *pgx.Conn) {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	primary = connect(t, dsn)
	exec(t, primary, stmts...)
	sb, err := testenv.StartStandby(context.Background(), pg, conf)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Destroy)
	return primary, connect(t, sb.DSNFor(t, dsn))
}

// TestReplayAndLag against a real streaming standby: the primary is not in recovery and the
// standby is; a position the primary wrote is replayed; with replay paused the wait gives up
// with ErrBehind and the lag says paused and how far behind; resumed, it catches up.
func TestReplayAndLag(t *testing.T) {
	ctx := context.Background()
	primary, replica := pair(t, "", `CREATE TABLE items (id bigserial PRIMARY KEY, v int)`)

	if rec, err := standby.InRecovery(ctx, primary); err != nil || rec {
		t.Fatalf("primary in recovery: %v (%v)", rec, err)
	}
	if rec, err := standby.InRecovery(ctx, replica); err != nil || !rec {
		t.Fatalf("standby in recovery: %v (%v)", rec, err)
	}
	exec(t, primary, `INSERT INTO items (v) SELECT g FROM generate_series(1, 1000) g`)
	lsn, err := standby.PrimaryPosition(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	if err := standby.AwaitReplay(ctx, replica, lsn, 30*time.Second, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := replica.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 1000 {
		t.Fatalf("standby sees %d rows (%v) after the replay, want 1000", n, err)
	}

	exec(t, replica, `SELECT pg_wal_replay_pause()`)
	exec(t, primary, `INSERT INTO items (v) SELECT g FROM generate_series(1, 1000) g`)
	lsn, err = standby.PrimaryPosition(ctx, primary)
	if err != nil {
		t.Fatal(err)
	}
	err = standby.AwaitReplay(ctx, replica, lsn, 500*time.Millisecond, 10*time.Millisecond)
	if !errors.Is(err, standby.ErrBehind) || !strings.Contains(err.Error(), lsn) {
		t.Fatalf("wait with replay paused: %v, want ErrBehind naming %s", err, lsn)
	}
	lag, err := standby.ReadLag(ctx, primary, replica)
	if err != nil {
		t.Fatal(err)
	}
	if !lag.Paused || lag.Bytes <= 0 {
		t.Errorf("lag with replay paused: %+v, want paused and bytes behind", lag)
	}
	exec(t, replica, `SELECT pg_wal_replay_resume()`)
	if err := standby.AwaitReplay(ctx, replica, lsn, 30*time.Second, 10*time.Millisecond); err != nil {
		t.Fatalf("after resume: %v", err)
	}
	if lag, err = standby.ReadLag(ctx, primary, replica); err != nil || lag.Paused || lag.Bytes != 0 || lag.Seconds != 0 {
		t.Errorf("lag after catching up: %+v (%v), want none", lag, err)
	}
}

// TestReplayConflictIsRecognised: a standby query whose snapshot still needs rows a VACUUM on
// the primary removed is cancelled when that VACUUM is replayed (max_standby_streaming_delay 0),
// and IsReplayConflict tells it from other errors.
func TestReplayConflictIsRecognised(t *testing.T) {
	ctx := context.Background()
	primary, replica := pair(t, "max_standby_streaming_delay = 0\n", `CREATE TABLE items (id bigserial PRIMARY KEY, v int)`,
		`INSERT INTO items (v) SELECT g FROM generate_series(1, 10000) g`)
	lsn, _ := standby.PrimaryPosition(ctx, primary)
	if err := standby.AwaitReplay(ctx, replica, lsn, 30*time.Second, 10*time.Millisecond); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		// One statement, one snapshot, held for 10 s.
		_, err := replica.Exec(ctx, `SELECT count(*) FROM items, pg_sleep(10) WHERE id < 3`)
		done <- err
	}()
	time.Sleep(500 * time.Millisecond)
	exec(t, primary, `DELETE FROM items WHERE id % 2 = 0`, `VACUUM items`)
	select {
	case err := <-done:
		if !standby.IsReplayConflict(err) {
			t.Fatalf("standby query ended with %v, want a replay conflict", err)
		}
		t.Logf("standby query: %v", err)
	case <-time.After(9 * time.Second):
		t.Fatal("the standby query was not cancelled by the replayed VACUUM")
	}
	if standby.IsReplayConflict(errors.New("canceling statement due to conflict with recovery")) {
		t.Error("a plain error counted as a replay conflict")
	}
	_, err := primary.Exec(ctx, `SELECT 1/0`)
	if standby.IsReplayConflict(err) {
		t.Errorf("%v counted as a replay conflict", err)
	}
}
