package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// rolesSetup is a database whose vector table belongs to an application role, with the
// exporter and repair roles created exactly as docs/operations.md says, and a configuration
// that gives each its own DSN and migrate a superuser one.
type rolesSetup struct {
	superDSN, exporterDSN, repairDSN, noSelectDSN string
	cfgPath                                       string
}

// docRoleSQL are the SQL blocks of docs/operations.md's "Database role and grants" (the
// repair role's, then the exporter's), with the names replaced for database db, the tables'
// owner owner, the exporter role exp and the repair role rep: the test grants exactly what
// operators are told to grant.
func docRoleSQL(t *testing.T, db, owner, exp, rep string) []string {
	t.Helper()
	stmts, err := testenv.DocSQL("../../docs/operations.md", "Database role and grants", 2, strings.NewReplacer(
		"vectorheal_repair", rep, "vectorheal_exporter", exp, "app_owner", owner, "DATABASE app ", "DATABASE "+db+" "))
	if err != nil {
		t.Fatal(err)
	}
	return stmts
}

func setupRoles(t *testing.T) rolesSetup {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	pc, err := pgx.ParseConfig(dsn)
	if err != nil {
		t.Fatal(err)
	}
	sfx := fmt.Sprint(time.Now().UnixNano() % 1e9)
	owner, exp, rep, nosel := "app_owner_"+sfx, "vh_exporter_"+sfx, "vh_repair_"+sfx, "vh_nosel_"+sfx
	stmts := []string{
		`CREATE ROLE ` + owner + ` NOLOGIN`,
		// fillfactor leaves room on each page, so updates of note are HOT.
		`CREATE TABLE items (id bigserial PRIMARY KEY, embedding vector(4), note text) WITH (autovacuum_enabled = false, fillfactor = 60)`,
		`INSERT INTO items (embedding, note) SELECT ARRAY[random(), random(), random(), random()]::vector, 'secret-marker-' || i FROM generate_series(1, 2000) i`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`,
		`CREATE TABLE plain (id int, note text)`,
		`INSERT INTO plain SELECT i, 'plain-' || i FROM generate_series(1, 100) i`,
		`ALTER TABLE items OWNER TO ` + owner,
		`ALTER TABLE plain OWNER TO ` + owner,
		`ANALYZE items`,
		`CREATE ROLE ` + nosel + ` LOGIN`,
		`GRANT pg_monitor TO ` + nosel,
		// migrate must create pageinspect itself, and only when asked to.
		`DROP EXTENSION pageinspect`,
	}
	testenv.Exec(t, dsn, append(stmts, docRoleSQL(t, pc.Database, owner, exp, rep)...)...)
	t.Cleanup(func() {
		for _, r := range []string{exp, rep, nosel, owner} {
			testenv.Exec(t, dsn, `DROP OWNED BY `+r)
			testenv.Exec(t, pg.DSN("postgres"), `DROP ROLE IF EXISTS `+r)
		}
	})
	as := func(role string) string { return strings.Replace(dsn, "://"+pg.User+"@", "://"+role+"@", 1) }
	s := rolesSetup{superDSN: dsn, exporterDSN: as(exp), repairDSN: as(rep), noSelectDSN: as(nosel)}
	s.cfgPath = writeFile(t, t.TempDir(), "vectorheal.yml", fmt.Sprintf(`
state_store:
  dsn: {value: %q}
  schema: vh_state
targets:
  - name: app
    read_dsn: {value: %q}
    repair_dsn: {value: %q}
    migrate_dsn: {value: %q}
exporter:
  discovery_interval: 1s
  structure: {interval: 2s, timeout: 2s}
  recall: {disabled: true}
  drift: {disabled: true}
`, dsn, s.exporterDSN, s.repairDSN, dsn))
	return s
}

// TestDocumentedRolesAfterMigrate: with exactly the documented roles and grants, and no
// superuser after migrate, discovery, check and a validation read succeed as the exporter role
// and as the repair role. The exporter role counts dead heap TIDs exactly (HOT chains followed
// through the masked heap page reader); the repair role, without page access, gets the
// documented estimate, labelled as such, never an error.
func TestDocumentedRolesAfterMigrate(t *testing.T) {
	s := setupRoles(t)
	ctx := context.Background()

	// migrate: pageinspect only with the flag, and it says what to run without it.
	var out, errb bytes.Buffer
	if code := run([]string{"migrate", "--config.file", s.cfgPath}, &out, &errb); code != 1 ||
		!strings.Contains(errb.String(), "CREATE EXTENSION pageinspect;") || !strings.Contains(errb.String(), "--create-extensions") {
		t.Fatalf("migrate without pageinspect: exit %d\n%s%s", code, out.String(), errb.String())
	}
	out.Reset()
	errb.Reset()
	if code := run([]string{"migrate", "--config.file", s.cfgPath, "--create-extensions", "--dry-run"}, &out, &errb); code != 0 {
		t.Fatalf("migrate --dry-run: exit %d\n%s%s", code, out.String(), errb.String())
	}
	for _, want := range []string{"would install", "CREATE EXTENSION pageinspect", `CREATE SCHEMA "vectorheal_pages"`,
		`GRANT USAGE ON SCHEMA "vectorheal_pages" TO pg_monitor`, `CREATE FUNCTION "vectorheal_pages".index_page(regclass, integer)`,
		`GRANT EXECUTE ON FUNCTION "vectorheal_pages".heap_page(regclass, integer) TO pg_monitor`} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("migrate --dry-run does not print %q:\n%s", want, out.String())
		}
	}
	var created bool
	super := pool(t, s.superDSN)
	if err := super.QueryRow(ctx, `SELECT to_regnamespace('vectorheal_pages') IS NOT NULL`).Scan(&created); err != nil || created {
		t.Fatalf("migrate --dry-run created the schema (%v)", err)
	}
	out.Reset()
	if code := run([]string{"migrate", "--config.file", s.cfgPath, "--create-extensions"}, &out, &errb); code != 0 {
		t.Fatalf("migrate: exit %d\n%s%s", code, out.String(), errb.String())
	}
	if !strings.Contains(out.String(), "installed the page readers") {
		t.Errorf("migrate output:\n%s", out.String())
	}

	// Churn: deletes leave dead TIDs in the graph, HOT updates leave TIDs whose row lives
	// further down a HOT chain (exact only when the chain is followed on the heap page).
	testenv.Exec(t, s.superDSN, `DELETE FROM items WHERE id % 7 = 0`, `UPDATE items SET note = note || '-x' WHERE id % 7 = 1`)
	var hot int64
	if err := super.QueryRow(ctx, `SELECT count(*) FROM heap_page_items(get_raw_page('items', 0)) WHERE t_infomask2 & 16384 <> 0`).Scan(&hot); err != nil || hot == 0 {
		t.Fatalf("no HOT update (%v): the test would not exercise HOT chains", err)
	}

	cfg, err := config.Load(s.cfgPath)
	if err != nil {
		t.Fatal(err)
	}
	ts, err := targets.Open(ctx, cfg.Targets)
	if err != nil {
		t.Fatal(err)
	}
	defer ts.Close()
	app, _ := ts.Get("app")
	reader, _ := ts.Reading().Get("app")
	expPool, repPool := reader.Pool, app.Pool
	for p, want := range map[*pgxpool.Pool]string{expPool: "vh_exporter_", repPool: "vh_repair_"} {
		var user string
		var super bool
		if err := p.QueryRow(ctx, `SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&user, &super); err != nil || !strings.HasPrefix(user, want) || super {
			t.Fatalf("pool connects as %s (superuser %v, %v), want %s…", user, super, err, want)
		}
	}

	m := exporter.NewMeasurer(cfg.Exporter)
	ix, err := catalog.Resolve(ctx, super, "public", "items_hnsw")
	if err != nil {
		t.Fatal(err)
	}
	const deadFig = "pgvector_hnsw_heap_tids:dead"
	exact, err := m.Measure(ctx, super, ix, deadFig)
	if err != nil || math.IsNaN(exact) || exact == 0 {
		t.Fatalf("superuser's exact dead heap TIDs: %v, %v", exact, err)
	}

	// Discovery as each role, as serve runs it: the exporter on the read pools, and on the
	// repair pools for the repair role.
	t.Run("discovery", func(t *testing.T) {
		exp := runExporter(t, ts.Reading(), cfg.Exporter)
		rep := runExporter(t, ts, cfg.Exporter)
		tgt := map[string]string{"target": "app"}
		disc := map[string]string{"target": "app", "collector": "discovery"}
		dead := map[string]string{"target": "app", "indexrelname": "items_hnsw", "state": "dead"}
		ixl := map[string]string{"target": "app", "indexrelname": "items_hnsw"}
		waitGauge(t, exp, "vectorheal_collector_success", disc, 1)
		waitGauge(t, exp, "vectorheal_page_reader_available", tgt, 1)
		waitGauge(t, exp, "vectorheal_heap_reader_available", tgt, 1)
		waitGauge(t, exp, "pgvector_hnsw_heap_tids", dead, exact)
		waitGauge(t, rep, "vectorheal_collector_success", disc, 1)
		waitGauge(t, rep, "vectorheal_page_reader_available", tgt, 0)
		waitGauge(t, rep, "vectorheal_heap_reader_available", tgt, 0)
		if v := waitGaugeAny(t, rep, "pgvector_index_dead_entries_estimated", ixl); v <= 0 {
			t.Errorf("estimate for the repair role: %v", v)
		}
		if _, ok := gauge(t, rep, "pgvector_hnsw_heap_tids", dead); ok {
			t.Error("exact dead heap TIDs published for a role that cannot read pages")
		}
	})

	// vectorheal check as each role.
	t.Run("check", func(t *testing.T) {
		for dsn, want := range map[string]int{s.exporterDSN: 1, s.repairDSN: 0} {
			var out, errb bytes.Buffer
			if code := run([]string{"check", "--dsn", dsn, "--no-probe", "--output", "json"}, &out, &errb); code != 0 {
				t.Fatalf("check as %s: exit %d\n%s", dsn, code, errb.String())
			}
			var rep struct {
				Page int    `json:"page_reader_available"`
				Heap int    `json:"heap_reader_available"`
				Why  string `json:"page_reader_reason"`
			}
			if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
				t.Fatal(err)
			}
			if rep.Page != want || rep.Heap != want {
				t.Errorf("check as %s: page/heap reader %d/%d, want %d (%s)", dsn, rep.Page, rep.Heap, want, rep.Why)
			}
			if want == 0 && !strings.Contains(rep.Why, "grant pg_monitor") {
				t.Errorf("check as the repair role says why pages cannot be read: %q", rep.Why)
			}
		}
	})

	// A validation read as each role: exact where it can be read, the documented estimate
	// (named as the figure measured) where it cannot, never an error.
	t.Run("validation", func(t *testing.T) {
		v := validation.Validation{Figure: deadFig, Op: "<=", Value: 1e9, HasValue: true}
		rec := validation.Once(ctx, m, expPool, ix, v)
		if !rec.Passed || rec.MeasuredFigure != "" || rec.Measured == nil || *rec.Measured != exact {
			t.Errorf("as the exporter role: %+v, want %s = %v exactly", rec.Judge, deadFig, exact)
		}
		rec = validation.Once(ctx, m, repPool, ix, v)
		if !rec.Passed || rec.MeasuredFigure != "pgvector_index_dead_entries_estimated" || rec.Error != "" {
			t.Errorf("as the repair role: %+v, want the estimate judged", rec.Judge)
		}
		// A figure with no estimate says so, rather than failing on a privilege error.
		rec = validation.Once(ctx, m, repPool, ix, validation.Validation{Figure: "pgvector_hnsw_connectivity_ratio", Op: ">=", Value: 0.9, HasValue: true})
		if rec.Passed || !strings.Contains(rec.Error, "cannot be known on this target") {
			t.Errorf("structure figure as the repair role: %+v", rec.Judge)
		}
	})

	// The heap reader shows tuple headers only, of tables with a vector index, to roles that
	// may SELECT from them.
	t.Run("heap_page", func(t *testing.T) {
		var raw, masked []byte
		if err := super.QueryRow(ctx, `SELECT get_raw_page('items', 0)`).Scan(&raw); err != nil || !bytes.Contains(raw, []byte("secret-marker-")) {
			t.Fatalf("raw heap page: %v", err)
		}
		if err := expPool.QueryRow(ctx, `SELECT vectorheal_pages.heap_page('items'::regclass, 0)`).Scan(&masked); err != nil {
			t.Fatal(err)
		}
		if len(masked) != len(raw) || bytes.Contains(masked, []byte("secret-marker-")) || !bytes.Equal(masked[:24], raw[:24]) {
			t.Errorf("heap_page is not the page masked to its headers (%d bytes)", len(masked))
		}
		expectRefusal(t, expPool, `SELECT vectorheal_pages.heap_page('plain'::regclass, 0)`, "not a table with an hnsw or ivfflat index")
		expectRefusal(t, expPool, `SELECT vectorheal_pages.heap_page('items_hnsw'::regclass, 0)`, "not a table with an hnsw or ivfflat index")
		expectRefusal(t, pool(t, s.noSelectDSN), `SELECT vectorheal_pages.heap_page('items'::regclass, 0)`, "permission denied for table")
		expectRefusal(t, repPool, `SELECT vectorheal_pages.index_page('items_hnsw'::regclass, 0)`, "permission denied for schema")
	})

	// Without the heap reader (an install of an earlier release, or EXECUTE revoked), the
	// exact count gives way to the estimate, and the report and the metric say so.
	t.Run("without_heap_reader", func(t *testing.T) {
		testenv.Exec(t, s.superDSN, `REVOKE EXECUTE ON FUNCTION vectorheal_pages.heap_page(regclass, integer) FROM pg_monitor`)
		got, err := m.Measure(ctx, expPool, ix, deadFig)
		if err != nil || !math.IsNaN(got) {
			t.Errorf("dead heap TIDs without the heap reader: %v, %v; want NaN", got, err)
		}
		rec := validation.Once(ctx, m, expPool, ix, validation.Validation{Figure: deadFig, Op: "<=", Value: 1e9, HasValue: true})
		if !rec.Passed || rec.MeasuredFigure != "pgvector_index_dead_entries_estimated" {
			t.Errorf("validation without the heap reader: %+v", rec.Judge)
		}
		exp := runExporter(t, ts.Reading(), cfg.Exporter)
		waitGauge(t, exp, "vectorheal_page_reader_available", map[string]string{"target": "app"}, 1)
		waitGauge(t, exp, "vectorheal_heap_reader_available", map[string]string{"target": "app"}, 0)
		waitGaugeAny(t, exp, "pgvector_hnsw_elements", map[string]string{"target": "app", "state": "live"})
		if _, ok := gauge(t, exp, "pgvector_hnsw_heap_tids", map[string]string{"target": "app", "state": "dead"}); ok {
			t.Error("an inexact dead heap TID count was published")
		}
	})
}

func pool(t *testing.T, dsn string) *pgxpool.Pool {
	t.Helper()
	p, err := pgxpool.New(context.Background(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

func expectRefusal(t *testing.T, p *pgxpool.Pool, query, want string) {
	t.Helper()
	var b []byte
	if err := p.QueryRow(context.Background(), query).Scan(&b); err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("%s: %v, want an error containing %q", query, err, want)
	}
}

// runExporter runs an exporter over ts until the test ends and returns its registry.
func runExporter(t *testing.T, ts *targets.Set, cfg config.Exporter) *prometheus.Registry {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := exporter.New(ts, cfg, slog.New(slog.NewTextHandler(testWriter{t}, nil)))
	reg := prometheus.NewRegistry()
	reg.MustRegister(e)
	done := make(chan struct{})
	go func() { e.Run(ctx); close(done) }()
	t.Cleanup(func() { cancel(); <-done })
	return reg
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// gauge is the value of the one series of name whose labels include match.
func gauge(t *testing.T, reg *prometheus.Registry, name string, match map[string]string) (float64, bool) {
	t.Helper()
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var found []float64
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
	series:
		for _, m := range f.GetMetric() {
			got := map[string]string{}
			for _, lp := range m.GetLabel() {
				got[lp.GetName()] = lp.GetValue()
			}
			for k, v := range match {
				if got[k] != v {
					continue series
				}
			}
			found = append(found, m.GetGauge().GetValue())
		}
	}
	if len(found) != 1 {
		return 0, false
	}
	return found[0], true
}

func waitGauge(t *testing.T, reg *prometheus.Registry, name string, match map[string]string, want float64) {
	t.Helper()
	var last float64
	var ok bool
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if last, ok = gauge(t, reg, name, match); ok && last == want {
			return
		}
	}
	t.Fatalf("%s%v = %v (present %v), want %v", name, match, last, ok, want)
}

func waitGaugeAny(t *testing.T, reg *prometheus.Registry, name string, match map[string]string) float64 {
	t.Helper()
	for deadline := time.Now().Add(60 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if v, ok := gauge(t, reg, name, match); ok {
			return v
		}
	}
	t.Fatalf("%s%v never published", name, match)
	return 0
}
