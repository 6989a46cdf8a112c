package exporter

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/shard"
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

// TestCheckRequestsReachTheShardThatMeasures: with the measuring split between two shards and a
// replica that does not measure beside them, all on one state store, a request for the whole
// target makes every index be checked, each by its shard, and a request for one index is taken
// by the shard that measures it and marked done — never swallowed by a replica that would run
// nothing for it.
func TestCheckRequestsReachTheShardThatMeasures(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := context.Background()
	state := stateStore(t, pg)
	// One table per index, each with enough rows that the planner uses its index, so that the
	// probe publishes recall for every index.
	clustered(t, dsn, 1500, 4, 4)
	const n = 6
	var names []string
	for i := range n {
		names = append(names, fmt.Sprintf("items_hnsw_%d", i))
		testenv.Exec(t, dsn, fmt.Sprintf(`CREATE TABLE items_%d AS SELECT * FROM items`, i),
			fmt.Sprintf(`CREATE INDEX items_hnsw_%d ON items_%d USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 8)`, i, i),
			fmt.Sprintf(`ANALYZE items_%d`, i))
	}

	// Nothing is measured but what is requested.
	cfg := testConfig()
	cfg.Recall.Interval, cfg.Recall.Timeout = 400*time.Hour, time.Minute
	cfg.Structure.Interval = 400 * time.Hour
	cfg.Drift.Interval = 400 * time.Hour
	var shards []*started
	for i := range 2 {
		shards = append(shards, start(t, cfg, map[string]string{"main": dsn}, WithStateStore(state), WithShard(shard.Shard{Index: i, Total: 2})))
	}
	off := testConfig()
	off.Recall.Disabled, off.Structure.Disabled, off.Drift.Disabled = true, true, true
	start(t, off, map[string]string{"main": dsn}, WithStateStore(state))

	owner := map[string]*started{}
	deadline := time.Now().Add(time.Minute)
	for len(owner) < n {
		for _, s := range shards {
			for _, name := range names {
				if _, ok := s.sample(t, "pgvector_index_size_bytes", map[string]string{"indexrelname": name}); ok {
					owner[name] = s
				}
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("after a minute the shards measure %d of %d indexes", len(owner), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, name := range names {
		if _, ok := owner[name].sample(t, "pgvector_recall_ratio", map[string]string{"indexrelname": name}); ok {
			t.Fatalf("%s: recall measured before any request; the test's intervals are too short", name)
		}
	}

	// The whole target: every shard checks its own indexes.
	if _, err := state.Exec(ctx, `INSERT INTO check_requests (target, schemaname, indexrelname, requested_by)
		VALUES ('main', '', '', 'test')`); err != nil {
		t.Fatal(err)
	}
	probes := map[string]float64{}
	for _, name := range names {
		h := map[string]string{"indexrelname": name}
		owner[name].waitSample(t, "pgvector_recall_ratio", h, "measured after the request for the target", exists)
		probes[name] = owner[name].waitSample(t, "pgvector_probe_latency_seconds", h, "probed", exists)
	}

	// One index at a time: the request reaches the shard that measures the index.
	for _, name := range names {
		var id int64
		if err := state.QueryRow(ctx, `INSERT INTO check_requests (target, schemaname, indexrelname, requested_by)
			VALUES ('main', 'public', $1, 'test') RETURNING id`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		owner[name].waitSample(t, "pgvector_probe_latency_seconds", map[string]string{"indexrelname": name},
			"probed again after the request for the index", func(v float64) bool { return v > probes[name] })
		var done bool
		if err := state.QueryRow(ctx, `SELECT done_at IS NOT NULL FROM check_requests WHERE id = $1`, id).Scan(&done); err != nil || !done {
			t.Errorf("request %d for %s not marked done (%v)", id, name, err)
		}
	}
}
