package exporter

import (
	"context"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestCheckRequestRunsChecksEarly: with 400-hour intervals no recall probe would run during
// the test; a row in check_requests (what POST /api/v1/checks writes) makes it run now and is
// marked done.
func TestCheckRequestRunsChecksEarly(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := context.Background()
	state := stateStore(t, pg)
	clustered(t, dsn, 1500, 4, 4) // enough rows that the planner uses the index, so recall is published
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)

	cfg := testConfig()
	cfg.Recall.Interval, cfg.Recall.Timeout = 400*time.Hour, time.Minute
	cfg.Structure.Interval = 400 * time.Hour
	cfg.Drift.Interval = 400 * time.Hour
	s := start(t, cfg, map[string]string{"main": dsn}, WithStateStore(state))
	h := map[string]string{"target": "main", "indexrelname": "items_hnsw"}
	s.waitSample(t, "pgvector_index_size_bytes", h, "discovered", exists)
	if _, ok := s.sample(t, "pgvector_recall_ratio", h); ok {
		t.Fatal("recall measured before any request; the test's intervals are too short")
	}

	var id int64
	if err := state.QueryRow(ctx, `INSERT INTO check_requests (target, schemaname, indexrelname, requested_by)
		VALUES ('main', 'public', 'items_hnsw', 'test') RETURNING id`).Scan(&id); err != nil {
		t.Fatal(err)
	}
	s.waitSample(t, "pgvector_recall_ratio", h, "measured after the request", exists)
	var done bool
	if err := state.QueryRow(ctx, `SELECT done_at IS NOT NULL FROM check_requests WHERE id = $1`, id).Scan(&done); err != nil || !done {
		t.Errorf("request %d not marked done (%v)", id, err)
	}
}
