package e2e_test

import (
	"context"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// indexIdentity is what a rebuild would change: the index's OID (REINDEX CONCURRENTLY) or its
// relfilenode (REINDEX).
type indexIdentity struct{ oid, relfilenode uint32 }

func identityOf(t *testing.T, pool *pgxpool.Pool, index string) indexIdentity {
	t.Helper()
	var id indexIdentity
	if err := pool.QueryRow(context.Background(), `SELECT oid, relfilenode FROM pg_class WHERE relname = $1`, index).Scan(&id.oid, &id.relfilenode); err != nil {
		t.Fatalf("%s: %v", index, err)
	}
	return id
}

// TestPartitionHealsAlone runs the whole loop on a partitioned table with an HNSW index on the
// parent, so one index per partition: a third of one partition's rows deleted raises the
// dead-entry alert on that partition's index only, the default runbook heals that partition
// alone (its table vacuumed, not the parent), the other partition's index is untouched (same
// OID and relfilenode, no repair), the parent index gets no repair, and the parent's rollup
// recorded by Prometheus shows the dead rows arrive and go.
func TestPartitionHealsAlone(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn, stateDSN := pg.CreateDatabase(t), pg.CreateDatabase(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	db := openPool(t, dsn)
	// Two partitions loaded as tables of their own (ids apart), then attached; autovacuum off
	// on each, so only vectorheal cleans them.
	ga := newTable(t, db, "parts_a", 4000, 16, 31)
	newTable(t, db, "parts_b", 4000, 16, 32)
	for _, q := range []string{
		`UPDATE parts_b SET id = id + 1000000`,
		`VACUUM parts_b`,
		`CREATE TABLE parts (id bigint NOT NULL, cluster int NOT NULL, embedding vector(16) NOT NULL) PARTITION BY RANGE (id)`,
		`ALTER TABLE parts ATTACH PARTITION parts_a FOR VALUES FROM (1) TO (1000000)`,
		`ALTER TABLE parts ATTACH PARTITION parts_b FOR VALUES FROM (1000000) TO (2000000)`,
		`CREATE INDEX parts_hnsw ON parts USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`ANALYZE parts`,
	} {
		if _, err := db.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	const churned, sibling, parent = "parts_a_embedding_idx", "parts_b_embedding_idx", "parts_hnsw"
	beforeSibling, beforeParent := identityOf(t, db, sibling), identityOf(t, db, parent)

	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := e2e.Start(sctx, e2e.Config{
		Root: root, Dir: t.TempDir(), Vectorheal: vectorhealBin,
		Targets:  []e2e.Target{{Name: "parts", DSN: dsn}},
		StateDSN: stateDSN,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	b := &bundle{stack: s, pg: pg, state: openPool(t, stateDSN), timing: s.Config.Timing}
	b.watchUntilCleanup(t)

	// waitValue waits until Prometheus answers q with one sample meeting ok.
	waitValue := func(t *testing.T, q, want string, ok func(float64) bool) float64 {
		t.Helper()
		deadline := time.Now().Add(detectTimeout)
		for {
			v, err := e2e.QueryValue(ctx, s.Prometheus.URL, q)
			if err == nil && ok(v) {
				return v
			}
			if time.Now().After(deadline) {
				t.Fatalf("%s = %v (%v), want %s within %s", q, v, err, want, detectTimeout)
			}
			time.Sleep(500 * time.Millisecond)
		}
	}
	eq := func(want float64) func(float64) bool { return func(v float64) bool { return v == want } }
	rollup := func(metric, selector string) string {
		return fmt.Sprintf(`%s{target="parts",parent_schemaname="public",parent_relname="parts",parent_indexrelname=%q%s}`, metric, parent, selector)
	}
	deadRollup := rollup("parent:pgvector_hnsw_heap_tids:sum", `,state="dead"`)

	// Before the fault: both partitions' graphs, exactly, and the parent's rollup of them.
	for _, ix := range []string{churned, sibling} {
		waitValue(t, fmt.Sprintf(`pgvector_hnsw_heap_tids{target="parts",indexrelname=%q,state="live"}`, ix), "4000", eq(4000))
		waitValue(t, fmt.Sprintf(`pgvector_index_partition_info{target="parts",indexrelname=%q,parent_indexrelname=%q,parent_relname="parts"}`, ix, parent), "1", eq(1))
	}
	waitValue(t, rollup("parent:pgvector_index_partitions:count", ""), "2", eq(2))
	waitValue(t, rollup("parent:pgvector_hnsw_elements:sum", `,state="live"`), "8000", eq(8000))
	waitValue(t, deadRollup, "0", eq(0))
	t.Logf("before: parent rollup of dead heap TIDs 0, live elements 8000")

	injected := time.Now()
	deleted, err := ga.DeleteFraction(ctx, db, 0.35)
	if err != nil || deleted < 1300 {
		t.Fatalf("deleted %d rows of parts_a: %v", deleted, err)
	}
	// The parent's rollup shows the churned partition's dead rows; the sibling has none.
	peak := waitValue(t, deadRollup, fmt.Sprintf("the %d deleted rows", deleted), eq(float64(deleted)))
	waitValue(t, rollup("parent:pgvector_hnsw_elements:sum", `,state="live"`), "8000 (dead rows keep their elements until VACUUM)", eq(8000))
	if v, err := e2e.QueryValue(ctx, s.Prometheus.URL, fmt.Sprintf(`pgvector_hnsw_heap_tids{target="parts",indexrelname=%q,state="dead"}`, sibling)); err != nil || v != 0 {
		t.Errorf("dead heap TIDs of the untouched partition's index: %v (%v), want 0", v, err)
	}
	t.Logf("after the delete: parent rollup of dead heap TIDs %v", peak)

	const alert = "PgvectorHNSWDeadTuplesPending"
	var r e2e.Repair
	deadline := time.Now().Add(detectTimeout + repairTimeout)
	for {
		rs, err := e2e.Repairs(ctx, b.state, "vectorheal")
		if err != nil {
			t.Fatal(err)
		}
		done := false
		for _, x := range rs {
			if x.Index == churned && x.Alertname == alert && x.StartedAt != nil && x.Finished() {
				r, done = x, true
			}
		}
		if done {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no finished repair of %s for %s within %s; repairs %+v; timeline:\n%s", churned, alert, detectTimeout+repairTimeout, rs, b.timeline(churned))
		}
		time.Sleep(250 * time.Millisecond)
	}
	if r.State != "succeeded" || !hasStep(r, "reclaim", "") || !hasStep(r, "reclaim", "succeeded") && !hasStep(r, "reindex", "succeeded") {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want succeeded by reclaim or its escalation to reindex", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	for _, st := range r.Steps {
		for _, stmt := range st.Statements {
			if strings.Contains(stmt, `"public"."parts"`) || strings.Contains(stmt, `"`+parent+`"`) || strings.Contains(stmt, sibling) {
				t.Errorf("repair %d step %s ran %q: it names the parent or the other partition", r.ID, st.Strategy, stmt)
			}
		}
		// reclaim's VACUUM (after a rebuild or alone) is of the partition, never the parent.
		if st.Strategy == "reclaim" && st.State == "succeeded" && !strings.Contains(strings.Join(st.Statements, ";"), `"public"."parts_a"`) {
			t.Errorf("reclaim ran %v, want a VACUUM of the partition parts_a", st.Statements)
		}
	}
	b.waitResolvedOn(t, "parts", churned, alert)
	healed := waitValue(t, deadRollup, "0 once the partition is healed", eq(0))
	t.Logf("healed: parent rollup of dead heap TIDs %v; fault → repaired %.1f s (repair took %.1f s)", healed,
		r.FinishedAt.Sub(injected).Seconds(), r.FinishedAt.Sub(*r.StartedAt).Seconds())

	// The other partition's index and the parent index were left alone.
	if got := identityOf(t, db, sibling); got != beforeSibling {
		t.Errorf("%s: OID/relfilenode %v, was %v: it was rebuilt", sibling, got, beforeSibling)
	}
	if got := identityOf(t, db, parent); got != beforeParent {
		t.Errorf("%s: OID/relfilenode %v, was %v", parent, got, beforeParent)
	}
	rs, err := e2e.Repairs(ctx, b.state, "vectorheal")
	if err != nil {
		t.Fatal(err)
	}
	for _, x := range rs {
		if x.Index != churned {
			t.Errorf("repair %d of %s (%s, %s): only %s was churned", x.ID, x.Index, x.Alertname, x.State, churned)
		}
	}
	var vacuumedSibling int64
	if err := db.QueryRow(ctx, `SELECT vacuum_count FROM pg_stat_user_tables WHERE relname = 'parts_b'`).Scan(&vacuumedSibling); err != nil {
		t.Fatal(err)
	}
	if vacuumedSibling != 1 { // the one VACUUM before the index was built
		t.Errorf("parts_b was vacuumed %d times, want only the VACUUM of the setup", vacuumedSibling)
	}
}
