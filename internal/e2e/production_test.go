package e2e_test

import (
	"bytes"
	"context"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestProductionSetupHeals walks the production setup of docs/operations.md as written: the
// exporter and repair roles created with the documented grants, `vectorheal migrate` run once
// with a superuser migrate_dsn (and --create-extensions, pageinspect being absent), then
// `serve` reading with the exporter role and repairing with the repair role, behind
// --web.config.file basic auth that Prometheus scrapes with, Alertmanager delivering to the
// webhook with its bearer token. A third of the rows deleted, the loop heals the index: the
// alert reaches the receiver (no 401), the probes answer without credentials, and the repair
// succeeds as the repair role with nothing rolled back for lack of a privilege.
func TestProductionSetupHeals(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	superDSN, stateDSN := pg.CreateDatabase(t), pg.CreateDatabase(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := openPool(t, superDSN)
	var db string
	if err := admin.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	owner, exp, rep := db+"_owner", db+"_exporter", db+"_repair"
	t.Cleanup(func() {
		for _, q := range []string{
			fmt.Sprintf("REASSIGN OWNED BY %s, %s, %s TO CURRENT_USER", owner, exp, rep),
			fmt.Sprintf("DROP OWNED BY %s, %s, %s", owner, exp, rep),
		} {
			_, _ = admin.Exec(context.Background(), q)
		}
		admin.Close()
		if c, err := pgx.Connect(context.Background(), pg.DSN("postgres")); err == nil {
			_, _ = c.Exec(context.Background(), fmt.Sprintf("DROP ROLE IF EXISTS %s, %s, %s", exp, rep, owner))
			c.Close(context.Background())
		}
	})

	g := newTable(t, admin, "items", 6000, 16, 31)
	if err := g.CreateHNSW(ctx, admin, "items_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	setup := []string{
		`ALTER TABLE items SET (autovacuum_enabled = false)`,
		`CREATE ROLE ` + owner + ` NOLOGIN`,
		`ALTER TABLE items OWNER TO ` + owner,
		`ALTER DATABASE ` + db + ` OWNER TO ` + owner,
		`DROP EXTENSION pageinspect`, // migrate creates it, when asked to
	}
	// The repair role's block, then the exporter role's, as operators are told to run them.
	grants, err := testenv.DocSQL(filepath.Join(root, "docs", "operations.md"), "Database role and grants", 2,
		strings.NewReplacer("vectorheal_repair", rep, "vectorheal_exporter", exp, "app_owner", owner, "DATABASE app ", "DATABASE "+db+" "))
	if err != nil {
		t.Fatal(err)
	}
	setup = append(setup, grants...)
	for _, q := range setup {
		if _, err := admin.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	as := func(role string) string {
		return strings.Replace(superDSN, "://"+pg.User+"@", "://"+role+":change-me@", 1)
	}
	exporterDSN, repairDSN := as(exp), as(rep)

	// migrate, once, as the documented admin connection.
	dir := t.TempDir()
	migrateCfg := filepath.Join(dir, "migrate.yml")
	if err := os.WriteFile(migrateCfg, fmt.Appendf(nil, "state_store:\n  dsn: {value: %q}\ntargets:\n  - name: prod\n    read_dsn: {value: %q}\n    repair_dsn: {value: %q}\n    migrate_dsn: {value: %q}\n",
		stateDSN, exporterDSN, repairDSN, superDSN), 0o600); err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	cmd := exec.Command(vectorhealBin, "migrate", "--config.file", migrateCfg, "--create-extensions")
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		t.Fatalf("vectorheal migrate: %v\n%s", err, out.String())
	}
	t.Logf("migrate:\n%s", out.String())
	for _, role := range []string{exp, rep} {
		var super bool
		if err := admin.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = $1`, role).Scan(&super); err != nil || super {
			t.Fatalf("%s is superuser=%v (%v)", role, super, err)
		}
	}

	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := e2e.Start(sctx, e2e.Config{
		Root: root, Dir: filepath.Join(dir, "stack"), Vectorheal: vectorhealBin,
		Targets:  []e2e.Target{{Name: "prod", ReadDSN: exporterDSN, RepairDSN: repairDSN}},
		StateDSN: stateDSN, WebUser: "prometheus", WebPassword: "scrape-secret",
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	b := &bundle{stack: s, pg: pg, state: openPool(t, stateDSN), timing: s.Config.Timing}
	b.watchUntilCleanup(t)

	// Prometheus scrapes through basic auth, and the exporter role reads the pages.
	waitQuery(t, s.Prometheus.URL, `up{job="vectorheal"}`, 1)
	waitQuery(t, s.Prometheus.URL, `vectorheal_page_reader_available{target="prod"}`, 1)
	waitQuery(t, s.Prometheus.URL, `pgvector_hnsw_heap_tids{target="prod",indexrelname="items_hnsw",state="live"}`, 6000)
	// The web config's basic auth guards /metrics; the probes stay open.
	v := s.Vectorheals[0]
	for path, want := range map[string]int{"/-/healthy": 200, "/-/ready": 200, "/metrics": 401} {
		resp, err := http.Get(v.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			t.Errorf("GET %s without credentials: %d, want %d", path, resp.StatusCode, want)
		}
	}

	injected := time.Now()
	if n, err := g.DeleteFraction(ctx, admin, 1.0/3); err != nil || n < 1900 {
		t.Fatalf("deleted %d rows: %v", n, err)
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	r := b.waitRepairOn(t, "prod", func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
	if r.State != "succeeded" || !hasStep(r, "reclaim", "succeeded") {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want succeeded by reclaim", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	t.Logf("fault → repaired in %.1f s", r.FinishedAt.Sub(injected).Seconds())

	// Nothing rolled back or failed, and the receiver refused nothing.
	var bad int
	if err := b.state.QueryRow(ctx, `SELECT count(*) FROM vectorheal.repairs WHERE state IN ('failed', 'rolled_back')`).Scan(&bad); err != nil || bad != 0 {
		t.Errorf("%d repairs failed or rolled back (%v)", bad, err)
	}
	refused, err := e2e.QueryValue(ctx, s.Prometheus.URL, `sum(vectorheal_webhook_notifications_total{outcome=~"unauthorized|forbidden"})`)
	if err != nil || refused != 0 {
		t.Errorf("notifications refused by the receiver: %v (%v), want 0", refused, err)
	}
	// The repair proves a notification was recorded; Prometheus sees the counter at its next
	// scrape.
	for deadline := time.Now().Add(detectTimeout); ; time.Sleep(500 * time.Millisecond) {
		recorded, err := e2e.QueryValue(ctx, s.Prometheus.URL, `sum(vectorheal_webhook_notifications_total{outcome="recorded"})`)
		if err == nil && recorded > 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Errorf("notifications recorded by the receiver: %v (%v), want some", recorded, err)
			break
		}
	}
	// The step was judged on the exact count, read as the exporter reads it, though the repair
	// role itself may not read pages: the deleted rows before, none after.
	st := r.Steps[0]
	if before, after := st.Before["pgvector_hnsw_heap_tids:dead"], st.After["pgvector_hnsw_heap_tids:dead"]; before < 1900 || after != 0 {
		t.Errorf("exact dead heap TIDs before the repair %v, after %v; want the ~2000 deleted rows, then 0 (before %v, after %v)", before, after, st.Before, st.After)
	}
}
