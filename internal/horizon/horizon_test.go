package horizon_test

import (
	"context"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/horizon"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func open(t *testing.T) (*pgxpool.Pool, string) {
	t.Helper()
	dsn := testenv.SharedPostgres(t).CreateDatabase(t)
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(t.Context(), `CREATE TABLE t (id int); INSERT INTO t SELECT generate_series(1, 10)`); err != nil {
		t.Fatal(err)
	}
	return pool, dsn
}

// IdleInTransaction opens a session that takes a snapshot and stays idle inside its
// transaction, as an application that forgot to commit does; it returns the session's pid.
func idleInTransaction(t *testing.T, dsn string) int {
	t.Helper()
	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close(context.Background()) })
	var pid int
	if _, err := conn.Exec(t.Context(), `BEGIN ISOLATION LEVEL REPEATABLE READ`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT pg_backend_pid() FROM t LIMIT 1`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestOldestNamesAnIdleInTransactionSession(t *testing.T) {
	pool, dsn := open(t)
	pid := idleInTransaction(t, dsn)
	if _, err := pool.Exec(t.Context(), `DELETE FROM t WHERE id <= 5`); err != nil {
		t.Fatal(err)
	}
	h, err := horizon.Oldest(t.Context(), pool, 0)
	if err != nil {
		t.Fatal(err)
	}
	if h == nil || h.Kind != horizon.KindIdleInTransaction || h.Name != strconv.Itoa(pid) || !h.Timed() || h.AgeXIDs < 1 {
		t.Fatalf("oldest holder = %+v, want idle_in_transaction %d with an age", h, pid)
	}

	// Younger than the least age asked for: not a holder yet.
	if h, err := horizon.Oldest(t.Context(), pool, time.Hour); err != nil || h != nil {
		t.Fatalf("with a least age of 1h: %+v, %v; want none", h, err)
	}
}

// A writer of short transactions is ordinary work: with a least age above their length,
// nothing holds the horizon.
func TestOldestIgnoresShortTransactions(t *testing.T) {
	pool, _ := open(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		for ctx.Err() == nil {
			_, _ = pool.Exec(ctx, `UPDATE t SET id = id WHERE id = 1`)
		}
	}()
	t.Cleanup(func() { cancel(); <-done })
	for range 20 {
		h, err := horizon.Oldest(t.Context(), pool, time.Second)
		if err != nil {
			t.Fatal(err)
		}
		if h != nil {
			t.Fatalf("oldest holder = %+v, want none", h)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
