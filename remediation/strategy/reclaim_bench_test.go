package strategy_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// BenchmarkReclaimChurnedHNSW heals three identical churned HNSW indexes in one run: one by
// VACUUM alone, one by REINDEX INDEX CONCURRENTLY then VACUUM (both as bare statements, with
// the session settings the reclaim strategy plans), and one by the reclaim strategy itself
// (plan, figures before and after, the path it chooses). It reports the seconds of each and
// the chosen path's ratio to the cheaper bare path. Rows deleted are 20 % by default, spread
// over the table (every fifth id), with autovacuum off so that nothing heals in between.
//
//	VECTORHEAL_BENCH_RECLAIM=1 go test -run '^$' -bench ReclaimChurnedHNSW -benchtime 1x -timeout 3h ./remediation/strategy/
//
// VECTORHEAL_BENCH_RECLAIM_ROWS and _DIM change the size (default 200000 × 128).
func BenchmarkReclaimChurnedHNSW(b *testing.B) {
	if os.Getenv("VECTORHEAL_BENCH_RECLAIM") == "" {
		b.Skip("set VECTORHEAL_BENCH_RECLAIM=1: builds three 200k × 128-d HNSW indexes and vacuums one of them (most of an hour on 2 cores)")
	}
	rows, dim := testenv.PositiveInt(b, "VECTORHEAL_BENCH_RECLAIM_ROWS", 200_000), testenv.PositiveInt(b, "VECTORHEAL_BENCH_RECLAIM_DIM", 128)
	ctx := context.Background()
	pg := testenv.SharedPostgres(b)
	dsn := pg.CreateDatabase(b)
	pool, err := pgxpool.New(ctx, dsn)
	if err != nil {
		b.Fatal(err)
	}
	defer pool.Close()
	exec := func(stmts ...string) {
		b.Helper()
		for _, s := range stmts {
			if _, err := pool.Exec(ctx, s); err != nil {
				b.Fatalf("%s: %v", s, err)
			}
		}
	}
	start := time.Now()
	exec("SELECT setseed(0.42)",
		fmt.Sprintf(`CREATE TABLE src AS SELECT i AS id, (SELECT array_agg(random()) FROM generate_series(1, %d) g WHERE i > 0)::vector(%d) AS v
			FROM generate_series(1, %d) i`, dim, dim, rows))
	tables := []string{"by_reclaim", "by_reindex", "by_vacuum"}
	for _, t := range tables {
		exec(fmt.Sprintf("CREATE TABLE %s (id int PRIMARY KEY, v vector(%d)) WITH (autovacuum_enabled = false)", t, dim),
			fmt.Sprintf("INSERT INTO %s SELECT id, v FROM src ORDER BY id", t))
		conn, err := pool.Acquire(ctx)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, "SET maintenance_work_mem = '1GB'"); err != nil {
			b.Fatal(err)
		}
		if _, err := conn.Exec(ctx, fmt.Sprintf("CREATE INDEX %s_v ON %s USING hnsw (v vector_l2_ops)", t, t)); err != nil {
			b.Fatal(err)
		}
		_, _ = conn.Exec(ctx, "RESET maintenance_work_mem")
		conn.Release()
		exec(fmt.Sprintf("DELETE FROM %s WHERE id %% 5 = 0", t), "ANALYZE "+t)
	}
	exec("DROP TABLE src", "CHECKPOINT")
	b.Logf("%d × %d-d, 3 tables built and churned in %s", rows, dim, time.Since(start).Round(time.Second))

	measure := exporterMeasurer()
	env := strategy.Env{Target: "bench", Pool: pool, Measure: measure,
		Logger: slog.New(slog.NewTextHandler(testWriter{b}, &slog.HandlerOptions{Level: slog.LevelInfo}))}
	reg, err := strategy.Default(strategy.Options{ProgressInterval: time.Minute})
	if err != nil {
		b.Fatal(err)
	}
	step, err := reg.Bind("reclaim", strategy.Params{"figures": []any{"pgvector_hnsw_heap_tids:dead", "pgvector_index_size_bytes"}})
	if err != nil {
		b.Fatal(err)
	}
	index := func(t string) catalog.Index {
		ix, err := catalog.Resolve(ctx, pool, "public", t+"_v")
		if err != nil {
			b.Fatal(err)
		}
		return ix
	}
	state := func(t string) string {
		ix := index(t)
		var parts []string
		for _, f := range []string{"pgvector_hnsw_heap_tids:dead", "pgvector_hnsw_elements:deleted", "pgvector_hnsw_elements:live", "pgvector_hnsw_unreachable_elements"} {
			v, err := measure.Measure(ctx, pool, ix, f)
			if err != nil {
				b.Fatalf("%s: %s: %v", t, f, err)
			}
			parts = append(parts, fmt.Sprintf("%s=%.0f", f, v))
		}
		return fmt.Sprintf("%s: %d MiB, %s", t, ix.SizeBytes>>20, strings.Join(parts, " "))
	}
	for _, t := range tables {
		b.Log("before ", state(t))
	}

	// The reclaim strategy: plan (its estimate) and run, timed together.
	b.ResetTimer()
	t0 := time.Now()
	impact, err := step.Plan(ctx, env, index("by_reclaim"))
	if err != nil {
		b.Fatalf("plan: %v", err)
	}
	planned := time.Since(t0)
	if _, err := step.Run(ctx, env, index("by_reclaim")); err != nil {
		b.Fatalf("reclaim: %v", err)
	}
	chosen := time.Since(t0)
	b.StopTimer()
	b.Logf("reclaim impact: estimated %s; %s", impact.EstimatedDuration.Round(time.Second), impact.Notes)
	b.Logf("reclaim statements: %q", impact.Statements)

	// The bare paths, with the session settings the strategy planned for its build.
	var settings []string
	for _, s := range impact.Statements {
		if strings.HasPrefix(s, "SET ") {
			settings = append(settings, s)
		}
	}
	bare := func(stmts ...string) time.Duration {
		b.Helper()
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			b.Fatal(err)
		}
		defer conn.Close(ctx)
		for _, s := range settings {
			if _, err := conn.Exec(ctx, s); err != nil {
				b.Fatalf("%s: %v", s, err)
			}
		}
		t := time.Now()
		for _, s := range stmts {
			if _, err := conn.Exec(ctx, s); err != nil {
				b.Fatalf("%s: %v", s, err)
			}
		}
		return time.Since(t)
	}
	var reindexOnly time.Duration
	rx := bare("REINDEX INDEX CONCURRENTLY by_reindex_v")
	reindexOnly = rx
	rx += bare("VACUUM (INDEX_CLEANUP ON, ANALYZE) by_reindex")
	vac := bare("VACUUM (INDEX_CLEANUP ON, ANALYZE) by_vacuum")

	for _, t := range tables {
		b.Log("after ", state(t))
	}
	cheaper := min(rx, vac)
	b.ReportMetric(vac.Seconds(), "vacuum_s")
	b.ReportMetric(rx.Seconds(), "reindex+vacuum_s")
	b.ReportMetric(reindexOnly.Seconds(), "reindex_s")
	b.ReportMetric(chosen.Seconds(), "reclaim_s")
	b.ReportMetric(planned.Seconds(), "reclaim_plan_s")
	b.ReportMetric(chosen.Seconds()/cheaper.Seconds(), "reclaim/cheaper")
	b.ReportMetric(vac.Seconds()/rx.Seconds(), "vacuum/reindex+vacuum")
	if impact.Cost != nil {
		b.ReportMetric(impact.Cost.DeadShare, "dead_share")
		for _, e := range impact.Cost.Estimates {
			b.ReportMetric(e.Duration.Seconds(), "est_"+string(e.Path)+"_s")
		}
		// What the cost model alone chooses, with no version gate closed.
		in := strategy.CostInput{Method: "hnsw", SizeBytes: impact.Cost.IndexBytes, Elements: impact.Cost.Elements,
			DeadShare: impact.Cost.DeadShare, M: 16, Need: strategy.NeedDeadEntries, PgvectorVersion: "0.8.4"}
		if c, err := strategy.ChooseRepair(in); err == nil {
			b.Logf("cost model with no gate closed (as on 0.8.4): chooses %s: %s", c.Path, c.Reason)
		}
	}
	b.Logf("vacuum %s, reindex+vacuum %s (reindex %s), reclaim %s (plan %s): reclaim/cheaper %.2f",
		vac.Round(100*time.Millisecond), rx.Round(100*time.Millisecond), reindexOnly.Round(100*time.Millisecond),
		chosen.Round(100*time.Millisecond), planned.Round(100*time.Millisecond), chosen.Seconds()/cheaper.Seconds())
}
