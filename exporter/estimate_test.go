package exporter

import (
	"context"
	"fmt"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestDeadEntriesEstimate: on a table with a third of its rows deleted and some rows
// HOT-updated, the estimate from the statistics views agrees with the exact count read from
// pages and heap by a superuser, discounts the HOT updates that n_dead_tup counts, and is
// what a pg_monitor role without page access gets, from the Measurer and on /metrics, where
// the exact figures are unknowable (NaN) and absent.
func TestDeadEntriesEstimate(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	// fillfactor leaves room on each page, so updates of a column no index covers are HOT.
	testenv.Exec(t, dsn, `CREATE TABLE items (id bigserial PRIMARY KEY, note int NOT NULL DEFAULT 0, embedding vector(8)) WITH (fillfactor = 50)`,
		`SELECT setseed(0.3)`,
		`INSERT INTO items (embedding) SELECT (SELECT array_agg(random()) FROM generate_series(1, 8) WHERE g > 0)::vector FROM generate_series(1, 3000) g`,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`,
		`VACUUM ANALYZE items`)
	role := fmt.Sprintf("monitor_%d", time.Now().UnixNano()%1e9)
	testenv.Exec(t, dsn, `CREATE ROLE `+role+` LOGIN`, `GRANT pg_monitor TO `+role, `GRANT SELECT ON items TO `+role)
	t.Cleanup(func() {
		testenv.Exec(t, dsn, `DROP OWNED BY `+role)
		testenv.Exec(t, pg.DSN("postgres"), `DROP ROLE IF EXISTS `+role)
	})
	monitorDSN := strings.Replace(dsn, "://"+pg.User+"@", "://"+role+"@", 1)

	// Each statement on a connection of its own, closed after it: a backend reports its
	// statistics at the latest when it exits.
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id % 3 = 0`)
	testenv.Exec(t, dsn, `UPDATE items SET note = 1 WHERE id % 3 = 1 AND id <= 1500`)
	// An update of the vector itself is never HOT: the index gets a new entry, the old one dies.
	testenv.Exec(t, dsn, `UPDATE items SET embedding = embedding + embedding WHERE id % 3 = 2 AND id <= 600`)
	ctx := context.Background()
	super, monitor := superPool(t, dsn), superPool(t, monitorDSN)
	var dead, del, upd, hot int64
	if err := super.QueryRow(ctx, `SELECT n_dead_tup, n_tup_del, n_tup_upd, n_tup_hot_upd FROM pg_stat_user_tables WHERE relname = 'items'`).
		Scan(&dead, &del, &upd, &hot); err != nil {
		t.Fatal(err)
	}
	t.Logf("n_dead_tup %d, n_tup_del %d, n_tup_upd %d, n_tup_hot_upd %d", dead, del, upd, hot)
	if del != 1000 || upd != 700 || hot == 0 || hot > 500 {
		t.Fatalf("the statistics do not show the churn: %d deletes, %d updates (%d HOT); want 1000, 700 and some of the first 500 HOT", del, upd, hot)
	}

	m := NewMeasurer(testConfig())
	ix := resolve(t, super, "items_hnsw")
	exact, err := m.Measure(ctx, super, ix, "pgvector_hnsw_heap_tids:dead")
	if err != nil {
		t.Fatal(err)
	}
	est, err := m.Measure(ctx, super, ix, "pgvector_index_dead_entries_estimated")
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("dead heap TIDs: exact %v, estimated %v, n_dead_tup %d", exact, est, dead)
	if want := float64(del + upd - hot); exact != want || exact >= float64(dead) {
		t.Errorf("exact dead heap TIDs %v: want the deleted rows and the non-HOT updates (%v), fewer than n_dead_tup %d", exact, want, dead)
	}
	if math.Abs(est-exact) > 0.05*exact {
		t.Errorf("estimate %v is more than 5%% off the exact count %v", est, exact)
	}
	if est >= float64(dead) {
		t.Errorf("estimate %v does not discount the %d HOT updates counted in n_dead_tup %d", est, hot, dead)
	}

	// The monitoring role: no page access, the same estimate.
	if got, err := m.Measure(ctx, monitor, ix, "pgvector_hnsw_heap_tids:dead"); err != nil || !math.IsNaN(got) {
		t.Errorf("exact dead heap TIDs without page access = %v, %v; want NaN (unknowable here)", got, err)
	}
	if got, err := m.Measure(ctx, monitor, ix, "pgvector_hnsw_connectivity_ratio"); err != nil || !math.IsNaN(got) {
		t.Errorf("connectivity without page access = %v, %v; want NaN", got, err)
	}
	if got, err := m.Measure(ctx, monitor, ix, "pgvector_index_dead_entries_estimated"); err != nil || got != est {
		t.Errorf("estimate as %s = %v, %v; want %v as the superuser measured", role, got, err, est)
	}
	s := start(t, testConfig(), map[string]string{"managed": monitorDSN})
	sel := map[string]string{"target": "managed", "indexrelname": "items_hnsw"}
	s.waitSample(t, "pgvector_index_dead_entries_estimated", sel, fmt.Sprint(est), eq(est))
	s.waitSample(t, "vectorheal_page_reader_available", map[string]string{"target": "managed"}, "0", eq(0))
	if v, ok := s.sample(t, "pgvector_hnsw_heap_tids", map[string]string{"target": "managed", "state": "dead"}); ok {
		t.Errorf("exact dead heap TIDs published without page access: %v", v)
	}

	// VACUUM removes the dead entries; the estimate follows. A VACUUM does not wait for a heap
	// page another session has pinned (the running exporter's probe reads the table): it
	// leaves that page's dead rows for the next one, so the test vacuums again, a few times
	// at most, until none is left.
	for try := 1; ; try++ {
		testenv.Exec(t, dsn, `VACUUM (INDEX_CLEANUP ON, ANALYZE) items`)
		got, err := m.Measure(ctx, super, ix, "pgvector_hnsw_heap_tids:dead")
		if err == nil && got == 0 {
			break
		}
		if try == 5 {
			t.Fatalf("exact after %d VACUUMs = %v, %v; want 0", try, got, err)
		}
		t.Logf("VACUUM %d left %v dead heap TIDs (a page was pinned); again", try, got)
	}
	if got, err := m.Measure(ctx, monitor, ix, "pgvector_index_dead_entries_estimated"); err != nil || got != 0 {
		t.Errorf("estimate after VACUUM = %v, %v; want 0", got, err)
	}

	// After a VACUUM the counters since the reset no longer bound the HOT versions: the
	// estimate is then an upper bound, never below the exact count nor above n_dead_tup.
	testenv.Exec(t, dsn, `UPDATE items SET note = 2 WHERE id % 3 = 1 AND id > 1500`)
	exact, _ = m.Measure(ctx, super, ix, "pgvector_hnsw_heap_tids:dead")
	est, _ = m.Measure(ctx, monitor, ix, "pgvector_index_dead_entries_estimated")
	if err := super.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relname = 'items'`).Scan(&dead); err != nil {
		t.Fatal(err)
	}
	t.Logf("after VACUUM and HOT updates: exact %v, estimated %v, n_dead_tup %d", exact, est, dead)
	if est < exact || est > float64(dead) {
		t.Errorf("estimate %v outside [exact %v, n_dead_tup %d]", est, exact, dead)
	}
}
