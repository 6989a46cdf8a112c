package exporter

import (
	"context"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/shard"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestShardsMeasureEachIndexOnce: two exporters on the same target, shards 0 and 1 of 2,
// publish disjoint sets of indexes whose union is every index, say which shard they are, and
// only one of them publishes the database's own figures.
func TestShardsMeasureEachIndexOnce(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 300, 4, 3)
	const n = 12
	var stmts []string
	for i := range n {
		stmts = append(stmts, fmt.Sprintf(`CREATE INDEX items_hnsw_%d ON items USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 8)`, i))
	}
	testenv.Exec(t, dsn, stmts...)
	testenv.Exec(t, dsn, `SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM items LIMIT 1) LIMIT 1`)
	cfg := testConfig()
	cfg.Recall.Disabled, cfg.Drift.Disabled = true, true

	var shards []*started
	for i := range 2 {
		shards = append(shards, start(t, cfg, map[string]string{"main": dsn}, WithShard(shard.Shard{Index: i, Total: 2})))
	}
	info := regexp.MustCompile(`(?m)^pgvector_index_info\{[^}]*indexrelname="([^"]+)"`)
	indexesOf := func(s *started) map[string]bool {
		out := map[string]bool{}
		for _, m := range info.FindAllStringSubmatch(s.scrape(t), -1) {
			out[m[1]] = true
		}
		return out
	}
	var sets []map[string]bool
	deadline := time.Now().Add(time.Minute)
	for {
		sets = []map[string]bool{indexesOf(shards[0]), indexesOf(shards[1])}
		if len(sets[0])+len(sets[1]) >= n || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	for name := range sets[0] {
		if sets[1][name] {
			t.Errorf("%s is measured by both shards", name)
		}
	}
	for i := range n {
		name := fmt.Sprintf("items_hnsw_%d", i)
		if !sets[0][name] && !sets[1][name] {
			t.Errorf("%s is measured by no shard", name)
		}
	}
	t.Logf("shard 0: %d indexes, shard 1: %d", len(sets[0]), len(sets[1]))
	if len(sets[0]) == 0 || len(sets[1]) == 0 {
		t.Errorf("one shard measures nothing: %d and %d of %d", len(sets[0]), len(sets[1]), n)
	}
	for i, s := range shards {
		s.waitSample(t, "vectorheal_shard_info", map[string]string{"shard": fmt.Sprint(i), "total_shards": "2", "by": "index"}, "1", eq(1))
	}
	whole := 0
	for _, s := range shards {
		s.waitSample(t, "vectorheal_up", map[string]string{"target": "main"}, "1", eq(1))
		if strings.Contains(s.scrape(t), "\npgvector_query_calls_total{") {
			whole++
		}
	}
	if whole != 1 {
		t.Errorf("%d shards publish the database's own figures (pgvector_query_calls_total), want 1", whole)
	}
}

// TestShardsRunFilteredQueriesOfTheirIndexes: a filtered query set declared for one index is
// run by the shard that measures the index; the other shard does not run it, so it reports no
// failing collector for an index it was never meant to read (with three shards or more,
// VectorhealCollectorFailing averages the shards' collector success and would fire).
func TestShardsRunFilteredQueriesOfTheirIndexes(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	categorised(t, dsn, 3000, 4)
	cfg := testConfig()
	cfg.Recall.Disabled, cfg.Drift.Disabled = true, true
	cfg.FilteredQueries = []config.FilteredQuery{byCategory("by_category")}
	var shards []*started
	for i := range 2 {
		shards = append(shards, start(t, cfg, map[string]string{"main": dsn}, WithShard(shard.Shard{Index: i, Total: 2})))
	}
	var owner, other *started
	deadline := time.Now().Add(time.Minute)
	for owner == nil {
		for i, s := range shards {
			if _, ok := s.sample(t, "pgvector_index_size_bytes", map[string]string{"indexrelname": "items_hnsw"}); ok {
				owner, other = s, shards[1-i]
			}
		}
		if time.Now().After(deadline) {
			t.Fatal("no shard measures items_hnsw after a minute")
		}
		time.Sleep(100 * time.Millisecond)
	}
	q := map[string]string{"target": "main", "indexrelname": "items_hnsw", "query": "by_category"}
	owner.waitSample(t, "pgvector_filtered_short_ratio", q, "published by the shard of the index", exists)
	owner.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "filtered:by_category"}, "1", eq(1))
	// Several of the query's intervals: the other shard would have run it by now.
	time.Sleep(3 * time.Second)
	if v, ok := other.sample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "filtered:by_category"}); ok {
		t.Errorf("the shard that does not measure items_hnsw reports its filtered query's collector (success %v)", v)
	}
	if _, ok := other.sample(t, "pgvector_filtered_short_ratio", q); ok {
		t.Error("the shard that does not measure items_hnsw publishes its filtered figures")
	}
}

// TestShardsByTargetMeasureWholeTargets: two exporters sharded by target over four targets
// (four databases) publish disjoint whole targets whose union is every target; neither uses the
// pool of a target it does not own (no connection, no ping, no query: the pool was never
// acquired from) nor publishes any series of it, not even vectorheal_up. A check request for a
// whole target is run by the target's shard and marked done, as without shards.
func TestShardsByTargetMeasureWholeTargets(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	ctx := context.Background()
	state := stateStore(t, pg)
	names := []string{"tenant_a", "tenant_b", "tenant_c", "tenant_d"}
	owner := map[string]int{}
	dsns := map[string]string{}
	for _, name := range names {
		for i := range 2 {
			if (shard.Shard{Index: i, Total: 2, By: shard.ByTarget}).OwnsTarget(name) {
				owner[name] = i
			}
		}
		dsns[name] = pg.CreateDatabase(t)
		clustered(t, dsns[name], 300, 4, 3)
		testenv.Exec(t, dsns[name],
			`CREATE INDEX items_hnsw_0 ON items USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 8)`,
			`CREATE INDEX items_hnsw_1 ON items USING hnsw (embedding vector_l2_ops) WITH (m = 4, ef_construction = 8)`)
	}
	if shardsOwning := slices.Sorted(maps.Values(owner)); shardsOwning[0] == shardsOwning[len(shardsOwning)-1] {
		t.Fatalf("targets %v all hash to one shard (%v): rename them so that each shard owns one", names, owner)
	}

	// Nothing is measured but what is requested; discovery alone publishes each index.
	cfg := testConfig()
	cfg.Structure.Interval = 400 * time.Hour
	cfg.Recall.Disabled, cfg.Drift.Disabled = true, true
	var shards []*started
	for i := range 2 {
		shards = append(shards, start(t, cfg, dsns, WithStateStore(state), WithShard(shard.Shard{Index: i, Total: 2, By: shard.ByTarget})))
	}
	for _, name := range names {
		s := shards[owner[name]]
		s.waitSample(t, "vectorheal_up", map[string]string{"target": name}, "1 on its shard", eq(1))
		for _, ix := range []string{"items_hnsw_0", "items_hnsw_1"} {
			s.waitSample(t, "pgvector_index_info", map[string]string{"target": name, "indexrelname": ix}, "published by the target's shard", exists)
		}
	}

	var ids []int64
	for _, name := range names {
		var id int64
		if err := state.QueryRow(ctx, `INSERT INTO check_requests (target, schemaname, indexrelname, requested_by)
			VALUES ($1, '', '', 'test') RETURNING id`, name).Scan(&id); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
	}
	for _, name := range names {
		for _, ix := range []string{"items_hnsw_0", "items_hnsw_1"} {
			shards[owner[name]].waitSample(t, "pgvector_hnsw_connectivity_ratio",
				map[string]string{"target": name, "indexrelname": ix}, "scanned after the request", exists)
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		var pending int
		if err := state.QueryRow(ctx, `SELECT count(*) FROM check_requests WHERE id = ANY($1) AND done_at IS NULL`, ids).Scan(&pending); err != nil {
			t.Fatal(err)
		}
		if pending == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d of %d whole-target requests not marked done after 30s", pending, len(ids))
		}
		time.Sleep(100 * time.Millisecond)
	}

	labelled := regexp.MustCompile(`(?m)^[a-z_]+\{[^}]*target="([^"]+)"`)
	for i, s := range shards {
		s.waitSample(t, "vectorheal_shard_info", map[string]string{"shard": fmt.Sprint(i), "total_shards": "2", "by": "target"}, "1", eq(1))
		published := map[string]bool{}
		for _, m := range labelled.FindAllStringSubmatch(s.scrape(t), -1) {
			published[m[1]] = true
		}
		for _, name := range names {
			tg, _ := s.ts.Reading().Get(name)
			st := tg.Pool.Stat()
			if owner[name] == i {
				if !published[name] || st.AcquireCount() == 0 {
					t.Errorf("shard %d owns %s but publishes it %v, acquired its pool %d times", i, name, published[name], st.AcquireCount())
				}
				continue
			}
			if published[name] {
				t.Errorf("shard %d publishes series of %s, a target of shard %d", i, name, owner[name])
			}
			if st.AcquireCount() != 0 || st.TotalConns() != 0 {
				t.Errorf("shard %d used the pool of %s, a target of shard %d: acquired %d times, %d connections",
					i, name, owner[name], st.AcquireCount(), st.TotalConns())
			}
		}
	}
}
