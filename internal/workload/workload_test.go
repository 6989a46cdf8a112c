package workload_test

import (
	"context"
	"math"
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/internal/workload"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestLiteral(t *testing.T) {
	if got := workload.Literal([]float32{1, -0.5, 2.25}); got != "[1,-0.5,2.25]" {
		t.Errorf("Literal = %q", got)
	}
}

func dist(a, b []float32) float64 {
	var s float64
	for i := range a {
		d := float64(a[i] - b[i])
		s += d * d
	}
	return math.Sqrt(s)
}

// TestDriftedIsFarFromEveryCentre checks the property the IVFFlat scenarios rely on: drifted
// points are closer to each other than to any original centre.
func TestDriftedIsFarFromEveryCentre(t *testing.T) {
	g := workload.NewGenerator(workload.Dataset{Dim: 8, Clusters: 4, Seed: 1})
	a, b := g.Drifted(0), g.Drifted(0)
	for _, c := range g.Centers() {
		if dist(a, c) < 4*dist(a, b) {
			t.Errorf("drifted point %v is near centre %v (%.3f, between drifted %.3f)", a, c, dist(a, c), dist(a, b))
		}
	}
	p, k := g.Point()
	if d := dist(p, g.Centers()[k]); d > 1 {
		t.Errorf("point is %.3f from its centre", d)
	}
}

// TestLoadIndexChurnAndRun runs the dataset through real PostgreSQL: load, both index types,
// deletes and updates, and a short workload.
func TestLoadIndexChurnAndRun(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	pool, err := pgxpool.New(ctx, pg.CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	g := workload.NewGenerator(workload.Dataset{Dim: 8, Clusters: 4, Rows: 1200, Seed: 7})
	var last, calls int
	if err := g.Load(ctx, pool, func(done, total int) { last, calls = done, calls+1 }); err != nil {
		t.Fatal(err)
	}
	if last != 1200 || calls != 3 {
		t.Errorf("progress: last %d after %d calls, want 1200 after 3", last, calls)
	}
	if err := g.CreateHNSW(ctx, pool, "items_hnsw", 8, 32); err != nil {
		t.Fatal(err)
	}
	if err := g.CreateIVFFlat(ctx, pool, "items_ivf", 4); err != nil {
		t.Fatal(err)
	}
	var n int
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM items").Scan(&n); err != nil || n != 1200 {
		t.Fatalf("rows = %d, %v", n, err)
	}
	deleted, err := g.DeleteFraction(ctx, pool, 0.25)
	if err != nil {
		t.Fatal(err)
	}
	if deleted < 250 || deleted > 350 {
		t.Errorf("deleted %d of 1200 for a quarter", deleted)
	}
	updated, err := g.UpdateFraction(ctx, pool, 0.1)
	if err != nil || updated == 0 {
		t.Errorf("updated %d, %v", updated, err)
	}
	if err := g.InsertDrifted(ctx, pool, 100, nil); err != nil {
		t.Fatal(err)
	}
	if err := pool.QueryRow(ctx, "SELECT count(*) FROM items WHERE cluster = -1").Scan(&n); err != nil || n != 100 {
		t.Errorf("drifted rows = %d, %v", n, err)
	}
	runCtx, stop := context.WithTimeout(ctx, 1500*time.Millisecond)
	defer stop()
	var st workload.Stats
	if err := g.Fork(2).Run(runCtx, pool, workload.Options{QueriesPerSecond: 50, WritesPerSecond: 20, UpdateShare: 0.5}, &st); err != nil {
		t.Fatal(err)
	}
	if st.Queries.Load() < 10 || st.Writes.Load() < 5 || st.Errors.Load() != 0 {
		t.Errorf("workload: %d queries, %d writes, %d errors", st.Queries.Load(), st.Writes.Load(), st.Errors.Load())
	}
}
