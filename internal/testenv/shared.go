package testenv

import (
	"context"
	"fmt"
	"os"
	"sync"
	"testing"
	"time"
)

// shared holds the per-package PostgreSQL cluster started on first use.
var shared struct {
	once sync.Once
	pg   *Postgres
	err  error
}

// SharedPostgres returns the package's PostgreSQL cluster, starting it on first use. Use
// Main in TestMain so it is stopped at the end. When the test fails, the tail of the server
// log is printed.
func SharedPostgres(t testing.TB) *Postgres {
	t.Helper()
	shared.once.Do(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		shared.pg, shared.err = StartPostgres(ctx)
	})
	if shared.err != nil {
		Unavailable(t, fmt.Errorf("start PostgreSQL: %w", shared.err))
	}
	pg := shared.pg
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("postgres log (tail):\n%s", tail(pg.Logs(), 40))
		}
	})
	return pg
}

// Main runs the package's tests and then stops the shared instances. Use it as
// func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }.
func Main(m *testing.M) int {
	code := m.Run()
	if shared.pg != nil {
		if code != 0 {
			fmt.Fprintf(os.Stderr, "postgres log (tail):\n%s\n", tail(shared.pg.Logs(), 60))
		}
		shared.pg.Destroy()
	}
	return code
}
