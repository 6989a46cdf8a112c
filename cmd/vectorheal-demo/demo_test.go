package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// TestDemoOnAGivenDatabase runs the whole demo against a database given by
// VECTORHEAL_DEMO_DSN, as a user with their own PostgreSQL would: every fault must be healed,
// and at exit the database must be as it was.
func TestDemoOnAGivenDatabase(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	bin := filepath.Join(t.TempDir(), "vectorheal")
	if out, err := exec.Command("go", "build", "-o", bin, "github.com/vectorheal/vectorheal/cmd/vectorheal").CombinedOutput(); err != nil {
		t.Fatalf("build vectorheal: %v\n%s", err, out)
	}
	t.Setenv("VECTORHEAL_DEMO_DSN", dsn)
	var stdout, stderr bytes.Buffer
	code := run([]string{"--vectorheal", bin, "--root", "../..", "--rows", "6000", "--exit"}, &stdout, &stderr)
	out := stdout.String()
	if code != 0 {
		t.Fatalf("exit %d: %s\n%s", code, stderr.String(), out)
	}
	for _, want := range []string{"using the database of VECTORHEAL_DEMO_DSN", "fault 3/3", "every fault healed without a manual step",
		"/alerts", "/#/alerts", "/metrics", "/api/v1/repairs"} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	// Figures read as name=value pairs with units, never as Go maps.
	if strings.Contains(out, "map[") {
		t.Errorf("output prints a Go map:\n%s", out)
	}
	if !regexp.MustCompile(`(?m)^workload: errors=\d+ queries=\d+ query_latency_mean_seconds=[0-9.]+(µs|ms|s) writes=\d+$`).MatchString(out) {
		t.Errorf("workload line is not name=value pairs with units:\n%s", out)
	}
	pair := `[a-z_:]+=[-+0-9.a-zA-Zµ%]+`
	if !regexp.MustCompile(`step finished +#\d+ 0:reclaim succeeded before: ` + pair + `( ` + pair + `)* \| after: ` + pair).MatchString(out) {
		t.Errorf("no reclaim step with its figures before and after as name=value pairs:\n%s", out)
	}
	if n := strings.Count(out, "=== healed in"); n != 3 {
		t.Errorf("%d faults healed, want 3:\n%s", n, out)
	}

	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var tables, schemas, settings int
	err = conn.QueryRow(ctx, `SELECT
		(SELECT count(*) FROM pg_class WHERE relname LIKE 'vectorheal_demo%'),
		(SELECT count(*) FROM pg_namespace WHERE nspname IN ('vectorheal', 'vectorheal_demo')),
		(SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
		  WHERE d.datname = current_database() AND s.setrole = 0)`).Scan(&tables, &schemas, &settings)
	if err != nil {
		t.Fatal(err)
	}
	if tables != 0 || schemas != 0 || settings != 0 {
		t.Errorf("left behind: %d demo relations, %d vectorheal schemas, %d database settings", tables, schemas, settings)
	}
}

// TestDemoRefusesATakenDatabase: a database that already has the demo's tables is left alone.
func TestDemoRefusesATakenDatabase(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, `CREATE TABLE vectorheal_demo_docs (id int); INSERT INTO vectorheal_demo_docs VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VECTORHEAL_DEMO_DSN", dsn)
	bin := filepath.Join(t.TempDir(), "vectorheal")
	if err := os.WriteFile(bin, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr bytes.Buffer
	if code := run([]string{"--vectorheal", bin, "--root", "../..", "--exit"}, &stdout, &stderr); code != 1 {
		t.Fatalf("exit %d, want 1: %s", code, stderr.String())
	}
	if want := "the database already has vectorheal_demo_docs; the demo does not touch existing objects"; !strings.Contains(stderr.String(), want) {
		t.Errorf("stderr %q lacks %q", stderr.String(), want)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM vectorheal_demo_docs`).Scan(&n); err != nil || n != 1 {
		t.Errorf("the existing table was touched: %d rows, %v", n, err)
	}
}
