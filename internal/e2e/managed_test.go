package e2e_test

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/internal/workload"
)

// execAll runs statements separated by semicolons, leaving out comment lines.
func execAll(t *testing.T, pool *pgxpool.Pool, sql string) {
	t.Helper()
	for _, stmt := range strings.Split(sql, ";") {
		var lines []string
		for _, l := range strings.Split(stmt, "\n") {
			if !strings.HasPrefix(strings.TrimSpace(l), "--") {
				lines = append(lines, l)
			}
		}
		if s := strings.TrimSpace(strings.Join(lines, "\n")); s != "" {
			if _, err := pool.Exec(context.Background(), s); err != nil {
				t.Fatalf("%s: %v", s, err)
			}
		}
	}
}

// TestManagedTargetHealsFromEstimates runs the whole loop against two databases with the same
// table and the same fault, a third of the rows deleted: "managed", watched and repaired by a
// role holding only the grants docs/operations.md lists for managed PostgreSQL (no superuser,
// no page reader), and "super", watched by a superuser. On the managed target the dead-entry
// alert fires from the estimate and the default runbook's VACUUM is judged on the estimate; on
// the superuser target the same alert and repair use the exact count read from the pages.
func TestManagedTargetHealsFromEstimates(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	managedSuperDSN, superDSN, stateDSN := pg.CreateDatabase(t), pg.CreateDatabase(t), pg.CreateDatabase(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	admin := openPool(t, managedSuperDSN) // the service's administrator role
	var db string
	if err := admin.QueryRow(ctx, `SELECT current_database()`).Scan(&db); err != nil {
		t.Fatal(err)
	}
	owner, role := db+"_owner", db+"_vectorheal"
	t.Cleanup(func() {
		for _, q := range []string{
			fmt.Sprintf("REASSIGN OWNED BY %s, %s TO CURRENT_USER", owner, role),
			fmt.Sprintf("DROP OWNED BY %s, %s", owner, role),
		} {
			_, _ = admin.Exec(context.Background(), q)
		}
		admin.Close()
		if c, err := pgxpool.New(context.Background(), pg.DSN("postgres")); err == nil {
			_, _ = c.Exec(context.Background(), fmt.Sprintf("DROP ROLE IF EXISTS %s, %s", role, owner))
			c.Close()
		}
	})

	// The same table on both targets; autovacuum off on it, so only vectorheal cleans it.
	load := func(pool *pgxpool.Pool) *workload.Generator {
		g := newTable(t, pool, "managed_items", 6000, 16, 21)
		if err := g.CreateHNSW(ctx, pool, "managed_hnsw", 8, 32); err != nil {
			t.Fatal(err)
		}
		if _, err := pool.Exec(ctx, `ALTER TABLE managed_items SET (autovacuum_enabled = false)`); err != nil {
			t.Fatal(err)
		}
		return g
	}
	gManaged, gSuper := load(admin), load(openPool(t, superDSN))
	// The application's role owns the table; vectorheal's role gets the documented grants.
	execAll(t, admin, fmt.Sprintf("CREATE ROLE %s NOLOGIN; ALTER TABLE managed_items OWNER TO %s", owner, owner))
	grants, err := testenv.DocSQL(filepath.Join(root, "docs", "operations.md"), "Managed PostgreSQL", 1, strings.NewReplacer(
		"ROLE vectorheal ", "ROLE "+role+" ", "TO vectorheal;", "TO "+role+";", "DATABASE app ", "DATABASE "+db+" ", "app_owner", owner))
	if err != nil {
		t.Fatal(err)
	}
	execAll(t, admin, strings.Join(grants, ";\n"))
	managedDSN := strings.Replace(managedSuperDSN, "://"+pg.User+"@", "://"+role+":change-me@", 1)
	managed := openPool(t, managedDSN)
	var super bool
	if err := managed.QueryRow(ctx, `SELECT rolsuper FROM pg_roles WHERE rolname = current_user`).Scan(&super); err != nil || super {
		t.Fatalf("managed role is superuser=%v (%v)", super, err)
	}

	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := e2e.Start(sctx, e2e.Config{
		Root: root, Dir: t.TempDir(), Vectorheal: vectorhealBin,
		Targets:  []e2e.Target{{Name: "managed", DSN: managedDSN}, {Name: "super", DSN: superDSN}},
		StateDSN: stateDSN,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	b := &bundle{stack: s, pg: pg, state: openPool(t, stateDSN), timing: s.Config.Timing}
	b.watchUntilCleanup(t)

	// Page access as the roles have it.
	for target, want := range map[string]float64{"managed": 0, "super": 1} {
		waitQuery(t, s.Prometheus.URL, fmt.Sprintf(`vectorheal_page_reader_available{target=%q}`, target), want)
	}

	// The exact count of the superuser's index is published before the fault, so its alert can
	// only come from it.
	deadline := time.Now().Add(detectTimeout)
	for {
		q := `pgvector_hnsw_heap_tids{target="super",indexrelname="managed_hnsw",state="live"}`
		if v, err := e2e.QueryValue(ctx, s.Prometheus.URL, q); err == nil && v == 6000 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not published within %s", q, detectTimeout)
		}
		time.Sleep(500 * time.Millisecond)
	}

	injected := time.Now()
	for _, c := range []struct {
		g    *workload.Generator
		pool *pgxpool.Pool
	}{{gManaged, admin}, {gSuper, openPool(t, superDSN)}} {
		if n, err := c.g.DeleteFraction(ctx, c.pool, 1.0/3); err != nil || n < 1900 {
			t.Fatalf("deleted %d rows: %v", n, err)
		}
	}
	const alert = "PgvectorHNSWDeadTuplesPending"
	for _, c := range []struct {
		target, basis, figure string
	}{
		{"managed", "estimated", "pgvector_index_dead_entries_estimated"},
		{"super", "", "pgvector_hnsw_heap_tids:dead"},
	} {
		t.Run(c.target, func(t *testing.T) {
			r := b.waitRepairOn(t, c.target, func(r e2e.Repair) bool { return r.Alertname == alert && r.StartedAt != nil })
			// The alert as Alertmanager delivered it.
			var labels map[string]string
			if err := b.state.QueryRow(ctx, `SELECT labels FROM vectorheal.alerts WHERE labels->>'target' = $1
				AND labels->>'indexrelname' = 'managed_hnsw' AND alertname = $2 AND status = 'firing' LIMIT 1`, c.target, alert).Scan(&labels); err != nil {
				t.Fatalf("no firing %s of %s recorded: %v", alert, c.target, err)
			}
			if labels["basis"] != c.basis {
				t.Errorf("%s fired with basis %q, want %q (labels %v)", alert, labels["basis"], c.basis, labels)
			}
			// The default runbook's reclaim: VACUUM or a rebuild then VACUUM, whichever is cheaper.
			if r.State != "succeeded" || !hasStep(r, "reclaim", "succeeded") {
				t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want succeeded by reclaim", r.ID, r.State, r.Reason, r.Error, r.Steps)
			}
			st := r.Steps[0]
			var rec struct {
				Figure         string   `json:"figure"`
				MeasuredFigure string   `json:"measured_figure"`
				Measured       *float64 `json:"measured"`
				Passed         bool     `json:"passed"`
			}
			if err := json.Unmarshal(st.Validation, &rec); err != nil {
				t.Fatal(err)
			}
			judged := rec.Figure
			if rec.MeasuredFigure != "" {
				judged = rec.MeasuredFigure
			}
			if judged != c.figure || !rec.Passed || rec.Measured == nil || *rec.Measured >= 1000 {
				t.Errorf("vacuum judged %s = %v (passed %v), want %s below 1000: %s", judged, rec.Measured, rec.Passed, c.figure, st.Validation)
			}
			if before, after := st.Before[c.figure], st.After[c.figure]; before < 1900 || after != 0 {
				t.Errorf("%s before the vacuum %v, after %v; want the ~2000 deleted rows, then 0 (before %v, after %v)", c.figure, before, after, st.Before, st.After)
			}
			if _, ok := st.After["pgvector_hnsw_heap_tids:dead"]; c.target == "managed" && ok {
				t.Errorf("the managed target recorded an exact dead count: %v", st.After)
			}
			b.waitResolvedOn(t, c.target, "managed_hnsw", alert)
			t.Logf("%s: fault → repaired %.1f s (repair took %.1f s)", c.target,
				r.FinishedAt.Sub(injected).Seconds(), r.FinishedAt.Sub(*r.StartedAt).Seconds())
		})
	}
	// The managed role did the VACUUM itself: the table is clean.
	var dead int64
	if err := managed.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'managed_items'`).Scan(&dead); err != nil || dead != 0 {
		t.Errorf("managed_items has %d dead rows after the repair (%v)", dead, err)
	}
}

// watchUntilCleanup polls the stack's alerts and repairs into b.watch until the test ends,
// logging each event, and on failure logs the tails of the stack's logs.
func (b *bundle) watchUntilCleanup(t *testing.T) {
	t.Helper()
	s := b.stack
	t.Cleanup(func() {
		if t.Failed() {
			for _, v := range s.Vectorheals {
				t.Logf("%s log (tail):\n%s", v.Name, tailLines(v.Logs(), 80))
			}
			t.Logf("prometheus log (tail):\n%s", tailLines(s.Prometheus.Logs(), 20))
			for _, am := range s.Alertmanagers {
				t.Logf("alertmanager log (tail):\n%s", tailLines(am.Logs(), 20))
			}
		}
		s.Close()
	})
	b.watch = e2e.NewWatcher(s, b.state)
	wctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() {
		tick := time.NewTicker(250 * time.Millisecond)
		defer tick.Stop()
		for {
			if evs, err := b.watch.Poll(wctx); err == nil {
				for _, e := range evs {
					t.Log(e)
				}
			}
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
		}
	})
	t.Cleanup(func() {
		stop()
		wg.Wait()
	})
}

// waitResolvedOn waits until alertname is neither pending nor firing on index of target.
func (b *bundle) waitResolvedOn(t *testing.T, target, index, alertname string) {
	t.Helper()
	deadline := time.Now().Add(resolveTimeout)
	for {
		alerts, err := b.stack.PrometheusAlerts(context.Background())
		active := err != nil
		for _, a := range alerts {
			active = active || a.Labels["target"] == target && a.Labels["indexrelname"] == index && a.Labels["alertname"] == alertname
		}
		if !active {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s/%s: %s still active after %s; timeline:\n%s", target, index, alertname, resolveTimeout, b.timeline(index))
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// waitRepairOn waits until a repair of target's managed_hnsw matching pick is finished.
func (b *bundle) waitRepairOn(t *testing.T, target string, pick func(e2e.Repair) bool) e2e.Repair {
	t.Helper()
	deadline := time.Now().Add(repairTimeout)
	for {
		var ids []int64
		rows, err := b.state.Query(context.Background(), `SELECT id FROM vectorheal.repairs WHERE target = $1`, target)
		if err == nil {
			for rows.Next() {
				var id int64
				if rows.Scan(&id) == nil {
					ids = append(ids, id)
				}
			}
			rows.Close()
		}
		rs, err := e2e.Repairs(context.Background(), b.state, "vectorheal")
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range rs {
			for _, id := range ids {
				if r.ID == id && r.Finished() && pick(r) {
					return r
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no matching finished repair within %s; repairs %+v; timeline:\n%s", target, repairTimeout, rs, b.timeline("managed_hnsw"))
		}
		time.Sleep(250 * time.Millisecond)
	}
}
