package strategy_test

import (
	"context"
	"errors"
	"math"
	"strconv"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/pgvector"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/strategy/strategytest"
)

// churned loads rows vectors into items with an HNSW index and deletes every deleteEvery-th
// row (0: none), with autovacuum off so nothing heals before the strategy runs.
func (b *bundle) churned(t *testing.T, rows, deleteEvery int) catalog.Index {
	t.Helper()
	b.loadVectors(t, "items", 8, rows, 0.3)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)")
	if deleteEvery > 0 {
		b.exec(t, "DELETE FROM items WHERE id % "+strconv.Itoa(deleteEvery)+" = 0")
	}
	b.exec(t, "ANALYZE items")
	return b.resolve(t, "public", "items_emb")
}

func installedVersion(t *testing.T, b *bundle) string {
	t.Helper()
	in, err := pgvector.Installed(context.Background(), b.pool)
	if err != nil {
		t.Fatal(err)
	}
	return in.Raw
}

func estimate(t *testing.T, c *strategy.CostRecord, p strategy.Path) strategy.Estimate {
	t.Helper()
	for _, e := range c.Estimates {
		if e.Path == p {
			return e
		}
	}
	t.Fatalf("no estimate of %s in %+v", p, c)
	return strategy.Estimate{}
}

// With 20 % of rows deleted VACUUM must repair most of the graph, so the rebuild is chosen;
// with one row deleted VACUUM is. Both heal: no dead heap TID is left, measured by the
// exporter from the pages.
func TestReclaimChoosesTheCheaperPathAndHeals(t *testing.T) {
	for _, tc := range []struct {
		name        string
		deleteEvery int
		want        strategy.Path
		statement   string
	}{
		{"heavy churn", 5, strategy.PathReindexVacuum, "REINDEX INDEX CONCURRENTLY"},
		{"one row deleted", 3000, strategy.PathVacuum, "VACUUM"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := setup(t, strategy.Options{})
			ctx := context.Background()
			ix := b.churned(t, 3000, tc.deleteEvery)
			reads := &strategytest.PageReads{Measurer: exporterMeasurer()}
			b.env.Measure = reads
			version := installedVersion(t, b)
			if v, err := pgvector.ParseVersion(version); err != nil || len(pgvector.Gated(v, pgvector.GateHNSWVacuum)) > 0 {
				t.Fatalf("installed pgvector %q gates HNSW vacuum (%v): this test wants an ungated version; TestReclaimOnGatedVersion covers gated ones", version, err)
			}
			rc := b.strategy(t, "reclaim")
			im, err := rc.Plan(ctx, b.env, ix, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("impact: %+v", im)
			if reads.Count() != 1 {
				t.Errorf("the plan read the index pages %d times, want once for both heap TID figures", reads.Count())
			}
			reads.Reset()
			c := im.Cost
			if c == nil || c.Path != tc.want || c.PgvectorVersion != version || !strings.HasPrefix(c.DeadShareSource, "pgvector_hnsw_heap_tids") {
				t.Fatalf("cost record %+v, want path %s on pgvector %s from measured heap TIDs", c, tc.want, version)
			}
			wantShare := 0.0
			if tc.deleteEvery > 0 {
				wantShare = float64(3000/tc.deleteEvery) / 3000
			}
			if diff := c.DeadShare - wantShare; diff > 1e-9 || diff < -1e-9 {
				t.Errorf("dead share %v, want %v", c.DeadShare, wantShare)
			}
			if im.EstimatedDuration != estimate(t, c, tc.want).Duration || im.EstimatedDuration <= 0 {
				t.Errorf("estimated duration %s, chosen estimate %s", im.EstimatedDuration, estimate(t, c, tc.want).Duration)
			}
			if !strings.HasPrefix(im.Notes, "chose "+string(tc.want)+": ") || !strings.Contains(im.Notes, c.Reason) ||
				!strings.Contains(im.Notes, "free disk space not checked") && tc.want != strategy.PathVacuum {
				t.Errorf("notes %q", im.Notes)
			}
			env := b.env
			env.Before = im.Reading // as the engine hands the plan's reading to the run
			out, err := rc.Run(ctx, env, ix, nil)
			if err != nil {
				t.Fatal(err)
			}
			// The plan's reading, a moment ago, stands for the one before (the dead share and
			// the recorded figures); the run reads the pages once, after.
			if reads.Count() != 1 {
				t.Errorf("the run read the index pages %d times, want once (after; before is the plan's reading)", reads.Count())
			}
			if math.Abs(out.Before["pgvector_hnsw_heap_tids:dead"]-c.DeadShare*float64(c.Elements)) > 1e-6 || out.After["pgvector_hnsw_heap_tids:dead"] != 0 {
				t.Errorf("recorded dead heap TIDs %v -> %v, want %v -> 0", out.Before["pgvector_hnsw_heap_tids:dead"], out.After["pgvector_hnsw_heap_tids:dead"], c.DeadShare*float64(c.Elements))
			}
			joined := strings.Join(out.Statements, "; ")
			if !strings.Contains(joined, tc.statement) || !strings.HasSuffix(joined, `VACUUM (INDEX_CLEANUP ON, ANALYZE) "public"."items"`) {
				t.Errorf("statements %q", out.Statements)
			}
			if tc.want == strategy.PathVacuum && strings.Contains(joined, "REINDEX") {
				t.Errorf("vacuum chosen but rebuilt: %q", out.Statements)
			}
			after := b.resolve(t, "public", "items_emb")
			if dead := b.measure(t, after, "pgvector_hnsw_heap_tids:dead"); dead != 0 {
				t.Errorf("%v dead heap TIDs left", dead)
			}
			if (after.OID != ix.OID) != (tc.want == strategy.PathReindexVacuum) {
				t.Errorf("index OID %d -> %d for path %s", ix.OID, after.OID, tc.want)
			}
		})
	}
}

// On a pgvector whose HNSW vacuuming has known issues VACUUM is refused as the repair even
// where it is cheaper, and the build runs without parallel workers where that is gated too;
// the impact says both. The version is set in the catalog of a throwaway database: pgvector
// itself never reads extversion, the gates do.
func TestReclaimOnGatedVersion(t *testing.T) {
	for _, tc := range []struct {
		version  string
		parallel bool // whether parallel HNSW builds are gated too
	}{{"0.8.0", true}, {"0.8.3", false}} {
		t.Run(tc.version, func(t *testing.T) {
			b := setup(t, strategy.Options{})
			ctx := context.Background()
			ix := b.churned(t, 3000, 3000) // one row deleted: VACUUM would be the cheaper path
			b.env.Measure = exporterMeasurer()
			b.exec(t, "UPDATE pg_extension SET extversion = '"+tc.version+"' WHERE extname = 'vector'")
			rc := b.strategy(t, "reclaim")
			im, err := rc.Plan(ctx, b.env, ix, nil)
			if err != nil {
				t.Fatal(err)
			}
			t.Logf("impact: %+v", im)
			c := im.Cost
			if c == nil || c.Path != strategy.PathReindexVacuum || c.PgvectorVersion != tc.version {
				t.Fatalf("cost %+v, want reindex+vacuum on %s", c, tc.version)
			}
			vac, rx := estimate(t, c, strategy.PathVacuum), estimate(t, c, strategy.PathReindexVacuum)
			if vac.Duration >= rx.Duration {
				t.Fatalf("vacuum est. %s not below reindex+vacuum est. %s: the test index does not show the gate", vac.Duration, rx.Duration)
			}
			if !strings.Contains(vac.Refused, "pgvector "+tc.version) || !strings.Contains(im.Notes, "vacuum refused: pgvector "+tc.version) {
				t.Errorf("vacuum refusal %q, notes %q: want the version named", vac.Refused, im.Notes)
			}
			setWorkers := "SET max_parallel_maintenance_workers = 0"
			hasSet := strings.Contains(strings.Join(im.Statements, ";"), setWorkers)
			if hasSet != tc.parallel || strings.Contains(im.Notes, "no parallel HNSW build workers") != tc.parallel {
				t.Errorf("statements %q, notes %q: parallel build gate %t expected", im.Statements, im.Notes, tc.parallel)
			}
			out, err := rc.Run(ctx, b.env, ix, nil)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(strings.Join(out.Statements, ";"), setWorkers) != tc.parallel || !strings.Contains(strings.Join(out.Statements, ";"), "REINDEX INDEX CONCURRENTLY") {
				t.Errorf("ran %q", out.Statements)
			}
			if dead := b.measure(t, b.resolve(t, "public", "items_emb"), "pgvector_hnsw_heap_tids:dead"); dead != 0 {
				t.Errorf("%v dead heap TIDs left", dead)
			}
			// The plain vacuum strategy still runs what the runbook says, and says what is gated.
			vim, err := b.strategy(t, "vacuum").Plan(ctx, b.env, ix, nil)
			if err != nil || !strings.Contains(vim.Notes, "pgvector "+tc.version) || !strings.Contains(vim.Notes, "reclaim") {
				t.Errorf("vacuum impact notes %q (%v)", vim.Notes, err)
			}
		})
	}
}

// budget is a configured free space of n bytes.
func budget(n int64) *strategy.Resources {
	return &strategy.Resources{MaxParallelWorkers: -1, FreeSpace: func(context.Context) (*strategy.FreeSpace, error) {
		return &strategy.FreeSpace{Bytes: n, Source: `budget builds.free_space_bytes of target "test"`}, nil
	}}
}

// A rebuild that does not fit the budget is refused before it starts, naming the budget and
// the shortfall, and leaves no _ccnew index; reclaim then falls back on VACUUM, which needs no
// space, or refuses when only a rebuild heals.
func TestBuildRefusedForLackOfSpace(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	ix := b.churned(t, 3000, 5)
	b.env.Measure = exporterMeasurer()
	b.env.Resources = budget(ix.SizeBytes / 2)
	short := ix.SizeBytes - ix.SizeBytes/2

	_, err := b.strategy(t, "reindex").Run(ctx, b.env, ix, nil)
	var se *strategy.SpaceError
	if !errors.As(err, &se) || se.Shortfall != short || !strings.Contains(err.Error(), `budget builds.free_space_bytes of target "test"`) ||
		!strings.Contains(err.Error(), "short by") {
		t.Fatalf("reindex error %v, want a SpaceError naming the budget, short by %d bytes", err, short)
	}
	if strategy.RetryLater(err) {
		t.Errorf("a refusal for space is not 'retry later': %v", err)
	}
	var leftovers int
	if err := b.pool.QueryRow(ctx, `SELECT count(*) FROM pg_class WHERE relname LIKE 'items_emb%' AND relkind = 'i'`).Scan(&leftovers); err != nil || leftovers != 1 {
		t.Fatalf("%d indexes named items_emb*, want only the original (%v)", leftovers, err)
	}
	if after := b.resolve(t, "public", "items_emb"); after.OID != ix.OID {
		t.Errorf("index rebuilt although refused: OID %d -> %d", ix.OID, after.OID)
	}

	im, err := b.strategy(t, "reclaim").Plan(ctx, b.env, ix, nil)
	if err != nil || im.Cost == nil || im.Cost.Path != strategy.PathVacuum ||
		!strings.Contains(im.Notes, "reindex+vacuum refused: REINDEX INDEX CONCURRENTLY") || !strings.Contains(im.Notes, "short by") {
		t.Errorf("reclaim with no room to rebuild: %+v (%v), want vacuum with the refusal named", im, err)
	}
	_, err = b.strategy(t, "reclaim").Plan(ctx, b.env, ix, strategy.Params{"need": "space"})
	if !errors.Is(err, strategy.ErrNoRepair) || !strings.Contains(err.Error(), "short by") {
		t.Errorf("reclaim of space with no room to rebuild: %v, want ErrNoRepair naming the shortfall", err)
	}

	b.env.Resources = budget(ix.SizeBytes * 2)
	im, err = b.strategy(t, "reindex").Plan(ctx, b.env, ix, nil)
	if err != nil || !strings.Contains(im.Notes, "allows") {
		t.Errorf("reindex within budget: %+v (%v)", im, err)
	}
}

// A failing free-space source stops the build rather than letting it run unchecked.
func TestBuildWaitsForAnUnansweredFreeSpace(t *testing.T) {
	b := setup(t, strategy.Options{})
	ix := b.churned(t, 500, 0)
	b.env.Resources = &strategy.Resources{MaxParallelWorkers: 1, FreeSpace: func(context.Context) (*strategy.FreeSpace, error) {
		return nil, errors.New("prometheus down")
	}}
	if _, err := b.strategy(t, "reindex").Plan(context.Background(), b.env, ix, nil); err == nil || !strings.Contains(err.Error(), "prometheus down") {
		t.Errorf("plan with an unanswered free space: %v", err)
	}
	b.env.Resources.FreeSpace = nil
	im, err := b.strategy(t, "reindex").Plan(context.Background(), b.env, ix, nil)
	if err != nil || !strings.Contains(strings.Join(im.Statements, ";"), "SET max_parallel_maintenance_workers = 1") {
		t.Errorf("worker cap 1: %+v (%v)", im, err)
	}
}

// On IVFFlat the rebuild path is a retrain with lists recomputed for today's rows, then VACUUM;
// a VACUUM is cheap there, so with dead entries to remove it is the path chosen.
func TestReclaimIVFFlat(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "docs", 8, 4000, 0.5)
	b.exec(t, "CREATE INDEX docs_ivf ON docs USING ivfflat (emb vector_l2_ops) WITH (lists = 2)",
		"DELETE FROM docs WHERE id % 5 = 0", "ANALYZE docs")
	ix := b.resolve(t, "public", "docs_ivf")
	rc := b.strategy(t, "reclaim")
	im, err := rc.Plan(ctx, b.env, ix, nil)
	if err != nil || im.Cost == nil || im.Cost.Path != strategy.PathVacuum || !strings.HasPrefix(im.Cost.DeadShareSource, "pg_stat_user_tables") {
		t.Fatalf("dead entries: %+v (%v), want vacuum with the dead share from statistics", im, err)
	}
	im, err = rc.Plan(ctx, b.env, ix, strategy.Params{"need": "space"})
	if err != nil || im.Cost.Path != strategy.PathRetrainVacuum || !strings.Contains(im.Notes, "vacuum does not heal space") {
		t.Fatalf("space: %+v (%v), want retrain+vacuum", im, err)
	}
	out, err := rc.Run(ctx, b.env, ix, strategy.Params{"need": "space"})
	if err != nil {
		t.Fatal(err)
	}
	after := b.resolve(t, "public", "docs_ivf")
	if after.OID == ix.OID || after.Lists != 3 || !strings.HasSuffix(strings.Join(out.Statements, "; "), `VACUUM (INDEX_CLEANUP ON, ANALYZE) "public"."docs"`) {
		t.Errorf("after retrain+vacuum: lists %d (want 3 for 3200 rows), OID %d -> %d, statements %q", after.Lists, ix.OID, after.OID, out.Statements)
	}
}
