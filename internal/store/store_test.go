package store_test

import (
	"bytes"
	"context"
	"io"
	"log/slog"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestMigrateConcurrently starts two migrations at once on an empty database: every
// migration must be applied exactly once and the tables must exist afterwards.
func TestMigrateConcurrently(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := context.Background()
	logger := slog.New(slog.NewTextHandler(io.Discard, nil))
	migs, err := store.Migrations()
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	applied := make([][]int, 2)
	errs := make([]error, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			pool, err := store.Open(ctx, dsn, "vh_state", 4)
			if err != nil {
				errs[i] = err
				return
			}
			defer pool.Close()
			applied[i], errs[i] = store.Migrate(ctx, pool, "vh_state", logger)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	if total := len(applied[0]) + len(applied[1]); total != len(migs) {
		t.Fatalf("applied %v and %v, want %d migrations applied once in all", applied[0], applied[1], len(migs))
	}
	pool, err := store.Open(ctx, dsn, "vh_state", 2)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	var n int
	if err := pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != len(migs) {
		t.Fatalf("schema_migrations has %d rows (%v), want %d", n, err, len(migs))
	}
	for _, table := range []string{"alerts", "index_builds", "river_job"} {
		var ok bool
		if err := pool.QueryRow(ctx, `SELECT to_regclass('vh_state.'||$1) IS NOT NULL`, table).Scan(&ok); err != nil || !ok {
			t.Errorf("table vh_state.%s missing (%v)", table, err)
		}
	}
	// A second run is a no-op.
	again, err := store.Migrate(ctx, pool, "vh_state", logger)
	if err != nil || len(again) != 0 {
		t.Fatalf("second migrate applied %v, %v", again, err)
	}
}

// TestRiverMigrationsAtDebug: at the default level a first migration logs vectorheal's own
// migrations and one line for the queue's, none of River's own messages; at debug River's
// messages are there.
func TestRiverMigrationsAtDebug(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	ctx := context.Background()
	for _, c := range []struct {
		level     slog.Level
		wantRiver bool
	}{{slog.LevelInfo, false}, {slog.LevelDebug, true}} {
		dsn := pg.CreateDatabase(t)
		var buf bytes.Buffer
		logger := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: c.level}))
		pool, err := store.Open(ctx, dsn, "vh_state", 2)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := store.Migrate(ctx, pool, "vh_state", logger); err != nil {
			t.Fatal(err)
		}
		pool.Close()
		out := buf.String()
		river := 0
		for l := range strings.Lines(out) {
			if strings.Contains(l, "component=river") {
				river++
				if !strings.Contains(l, "level=DEBUG") {
					t.Errorf("River logs above debug: %s", l)
				}
			}
		}
		if (river > 0) != c.wantRiver {
			t.Errorf("level %v: %d lines of River's, want some: %v\n%s", c.level, river, c.wantRiver, out)
		}
		if strings.Count(out, "applied queue migrations") != 1 || !strings.Contains(out, "applied migration") {
			t.Errorf("level %v: vectorheal's own migration lines missing:\n%s", c.level, out)
		}
	}
}
