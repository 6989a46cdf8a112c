package exporter

import (
	"context"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestBuildTrackingInStateStore: with a state store, builds are recorded in index_builds; a
// REINDEX (new relfilenode) restarts the training staleness, and writes since the build show
// as rows changed since build.
func TestBuildTrackingInStateStore(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := context.Background()
	state := stateStore(t, pg)
	clustered(t, dsn, 400, 4, 4)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	target := superPool(t, dsn)
	relfilenode := func() uint32 {
		var n uint32
		if err := target.QueryRow(ctx, `SELECT relfilenode FROM pg_class WHERE relname = 'items_hnsw'`).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	recorded := func() (uint32, int64) {
		var n uint32
		var rows int64
		err := state.QueryRow(ctx, `SELECT relfilenode, rows_at_build FROM index_builds WHERE target = 'main'`).Scan(&n, &rows)
		if err != nil {
			return 0, 0
		}
		return n, rows
	}

	s := start(t, testConfig(), map[string]string{"main": dsn}, WithStateStore(state))
	h := map[string]string{"target": "main", "indexrelname": "items_hnsw"}
	s.waitSample(t, "pgvector_index_training_staleness_seconds", h, "present", exists)
	if n, rows := recorded(); n != relfilenode() || rows != 400 {
		t.Fatalf("index_builds has relfilenode %d rows %d; want %d and 400", n, rows, relfilenode())
	}
	time.Sleep(1500 * time.Millisecond)
	s.waitSample(t, "pgvector_index_training_staleness_seconds", h, ">= 1.5s", func(v float64) bool { return v >= 1.5 })

	addClustered(t, dsn, 100)
	s.waitSample(t, "pgvector_index_rows_changed_since_build_ratio", h, "100/400", eq(0.25))

	testenv.Exec(t, dsn, `REINDEX INDEX items_hnsw`)
	s.waitSample(t, "pgvector_index_training_staleness_seconds", h, "restarted", func(v float64) bool { return v < 1.5 })
	s.waitSample(t, "pgvector_index_rows_changed_since_build_ratio", h, "0 after the rebuild", eq(0))
	if n, rows := recorded(); n != relfilenode() || rows != 500 {
		t.Fatalf("index_builds after REINDEX has relfilenode %d rows %d; want %d and 500", n, rows, relfilenode())
	}
}
