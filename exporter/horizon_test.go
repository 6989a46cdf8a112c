package exporter

import (
	"context"
	"strconv"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestXminHorizonHolderIsNamed: a session left idle in its transaction, holding a snapshot,
// is named by kind and pid on the first scrape once it is older than
// exporter.xmin_horizon_min_age, while the rows deleted after it stay dead; once it ends,
// nothing is named. vectorheal check names it as well.
func TestXminHorizonHolderIsNamed(t *testing.T) {
	dsn := testenv.SharedPostgres(t).CreateDatabase(t)
	clustered(t, dsn, 300, 4, 3)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	cfg := testConfig()
	s := start(t, cfg, map[string]string{"main": dsn})
	target := map[string]string{"target": "main"}
	s.waitSample(t, "vectorheal_up", target, "1", eq(1))
	if _, ok := s.sample(t, "pgvector_xmin_horizon_age_xids", target); ok {
		t.Fatalf("a horizon holder is named before any session holds it:\n%s", s.scrape(t))
	}

	conn, err := pgx.Connect(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	var pid int
	if _, err := conn.Exec(t.Context(), `BEGIN ISOLATION LEVEL REPEATABLE READ`); err != nil {
		t.Fatal(err)
	}
	if err := conn.QueryRow(t.Context(), `SELECT pg_backend_pid() FROM items LIMIT 1`).Scan(&pid); err != nil {
		t.Fatal(err)
	}
	// Apart: a session's own counts reach the statistics when it ends, after its VACUUM's.
	index := map[string]string{"target": "main", "indexrelname": "items_hnsw"}
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id <= 100`)
	s.waitSample(t, "pgvector_table_dead_tuples", index, "the deleted rows", eq(100))
	testenv.Exec(t, dsn, `VACUUM items`)
	time.Sleep(cfg.XminHorizonMinAge + 100*time.Millisecond)

	holder := map[string]string{"target": "main", "kind": "idle_in_transaction", "holder": strconv.Itoa(pid)}
	// One scrape: the statistics are read on every scrape, so no wait for a background check.
	age, ok := s.sample(t, "pgvector_xmin_horizon_age_seconds", holder)
	if !ok || age < cfg.XminHorizonMinAge.Seconds() {
		t.Fatalf("pgvector_xmin_horizon_age_seconds%v = %v (present %v), want >= %v:\n%s", holder, age, ok, cfg.XminHorizonMinAge.Seconds(), s.scrape(t))
	}
	if xids, ok := s.sample(t, "pgvector_xmin_horizon_age_xids", holder); !ok || xids < 1 {
		t.Fatalf("pgvector_xmin_horizon_age_xids%v = %v (present %v), want >= 1", holder, xids, ok)
	}
	// The VACUUM could not remove the rows deleted after the session's snapshot.
	var vacuums float64
	if err := conn.QueryRow(t.Context(), `SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'items'`).Scan(&vacuums); err != nil {
		t.Fatal(err)
	}
	if dead, _ := s.sample(t, "pgvector_table_dead_tuples", index); vacuums != 1 || dead != 100 {
		t.Fatalf("after the VACUUM: %g vacuums, %g dead rows; want 1 and the 100 deleted", vacuums, dead)
	}

	// vectorheal check names it too.
	pool, err := pgxpool.New(t.Context(), dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	rep, err := Report(t.Context(), pool, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if h := rep.XminHorizon; h == nil || h.Kind != "idle_in_transaction" || h.Holder != strconv.Itoa(pid) || h.AgeSeconds == nil {
		t.Fatalf("report's xmin horizon = %+v, want idle_in_transaction %d", h, pid)
	}

	if _, err := conn.Exec(t.Context(), `ROLLBACK`); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.sample(t, "pgvector_xmin_horizon_age_xids", target); ok {
		t.Fatalf("a horizon holder is still named after the session ended:\n%s", s.scrape(t))
	}
}
