package e2e_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestHealsWithReadsOnTheStandby runs the loop on a target with a hot standby: the page scans
// and probes read there (vectorheal_index_reads_server says so), the alert fires from those
// figures once replayed, the repair runs on the primary, and its validation, read on the
// standby after it replayed the repair, passes.
func TestHealsWithReadsOnTheStandby(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn, stateDSN := pg.CreateDatabase(t), pg.CreateDatabase(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	primary := openPool(t, dsn)
	g := newTable(t, primary, "items", 6000, 16, 41)
	if err := g.CreateHNSW(ctx, primary, "items_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	if _, err := primary.Exec(ctx, `ALTER TABLE items SET (autovacuum_enabled = false)`); err != nil {
		t.Fatal(err)
	}
	sb, err := testenv.StartStandby(ctx, pg, "")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sb.Destroy)

	sctx, cancel := context.WithTimeout(ctx, 3*time.Minute)
	defer cancel()
	s, err := e2e.Start(sctx, e2e.Config{
		Root: root, Dir: t.TempDir(), Vectorheal: vectorhealBin,
		Targets:  []e2e.Target{{Name: "main", DSN: dsn, StandbyDSN: sb.DSNFor(t, dsn)}},
		StateDSN: stateDSN,
	})
	if err != nil {
		t.Fatalf("start stack: %v", err)
	}
	b := &bundle{stack: s, pg: pg, state: openPool(t, stateDSN), timing: s.Config.Timing}
	b.watchUntilCleanup(t)
	waitQuery(t, s.Prometheus.URL, `vectorheal_index_reads_server{target="main",server="standby"}`, 1)
	waitQuery(t, s.Prometheus.URL, `pgvector_hnsw_heap_tids{target="main",indexrelname="items_hnsw",state="live"}`, 6000)

	if n, err := g.DeleteFraction(ctx, primary, 1.0/3); err != nil || n < 1900 {
		t.Fatalf("deleted %d rows: %v", n, err)
	}
	r := b.waitRepairOn(t, "main", func(r e2e.Repair) bool { return r.Alertname == "PgvectorHNSWDeadTuplesPending" && r.StartedAt != nil })
	if r.State != "succeeded" || !hasStep(r, "reclaim", "succeeded") {
		t.Fatalf("repair %d: state %s reason %q error %q steps %+v, want succeeded by reclaim", r.ID, r.State, r.Reason, r.Error, r.Steps)
	}
	if before, after := r.Steps[0].Before["pgvector_hnsw_heap_tids:dead"], r.Steps[0].After["pgvector_hnsw_heap_tids:dead"]; before < 1900 || after != 0 {
		t.Errorf("dead heap TIDs before the repair %v, after %v; want the ~2000 deleted rows, then 0", before, after)
	}
	if v, err := e2e.QueryValue(ctx, s.Prometheus.URL, `vectorheal_index_reads_server{target="main",server="standby"}`); err != nil || v != 1 {
		t.Errorf("after the repair the checks read on the standby: %v (%v), want 1", v, err)
	}
}
