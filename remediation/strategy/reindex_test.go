package strategy_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// invalidIndexes lists the INVALID indexes of a table.
func (b *bundle) invalidIndexes(t *testing.T, table string) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		WHERE i.indrelid = $1::regclass AND NOT i.indisvalid`, table)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	return names
}

func TestReindexKeepsAnsweringQueries(t *testing.T) {
	var building atomic.Bool
	var samples atomic.Int64
	b := setup(t, strategy.Options{ProgressInterval: 100 * time.Millisecond, OnProgress: func(p strategy.Progress) {
		samples.Add(1)
		building.Store(true)
	}})
	ctx := context.Background()
	b.loadVectors(t, "items", 16, 6000, 0.2)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)", "ANALYZE items")
	ix := b.resolve(t, "public", "items_emb")

	re := b.strategy(t, "reindex")
	p := strategy.Params{"max_maintenance_work_mem": "512MB"}
	if err := re.CheckParams(p); err != nil {
		t.Fatal(err)
	}
	im, err := re.Plan(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	if im.LockLevel != "SHARE UPDATE EXCLUSIVE" || im.DiskBytesNeeded != ix.SizeBytes || im.IndexBytes != ix.SizeBytes {
		t.Errorf("impact = %+v", im)
	}
	if last := im.Statements[len(im.Statements)-1]; last != `REINDEX INDEX CONCURRENTLY "public"."items_emb"` {
		t.Errorf("planned %q", last)
	}

	// Queries and writes run against the table for as long as the rebuild takes.
	var answers, answersDuringBuild, failures atomic.Int64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				var id int64
				var err error
				if w == 0 || i%5 != 0 {
					err = b.pool.QueryRow(ctx, `SELECT id FROM items ORDER BY emb <-> (SELECT emb FROM items WHERE id = $1) LIMIT 1`, 1+i%1000).Scan(&id)
				} else {
					err = b.pool.QueryRow(ctx, `INSERT INTO items (emb) SELECT array_agg(random()::real)::vector
						FROM generate_series(1, 16) WHERE $1::int > 0 RETURNING id`, 1+i%1000).Scan(&id)
				}
				if err != nil {
					failures.Add(1)
					t.Errorf("query during rebuild: %v", err)
					continue
				}
				answers.Add(1)
				if building.Load() {
					answersDuringBuild.Add(1)
				}
			}
		}()
	}
	out, err := re.Run(ctx, b.env, ix, p)
	close(stop)
	wg.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("answers %d (%d while the build reported progress), failures %d, progress samples %d",
		answers.Load(), answersDuringBuild.Load(), failures.Load(), samples.Load())
	if failures.Load() != 0 || answers.Load() == 0 {
		t.Errorf("answers %d, failures %d", answers.Load(), failures.Load())
	}
	after := b.resolve(t, "public", "items_emb")
	if after.OID == ix.OID || after.Relfilenode == ix.Relfilenode || !after.Valid {
		t.Errorf("index not rebuilt: before %+v after %+v", ix, after)
	}
	if left := b.invalidIndexes(t, "items"); len(left) != 0 {
		t.Errorf("leftover invalid indexes: %v", left)
	}
	// The rebuilt graph answers as well as a graph does: not an empty or broken index.
	if rb, ra := out.Before["pgvector_recall_ratio"], out.After["pgvector_recall_ratio"]; rb < 0.5 || ra < 0.5 {
		t.Errorf("figures before %v after %v", out.Before, out.After)
	}
	// Idempotent: rebuilding the rebuilt index works the same way.
	if _, err := re.Run(ctx, b.env, after, p); err != nil {
		t.Fatalf("second run: %v", err)
	}
}

// blockWriters opens a transaction that holds a row lock and stays open: REINDEX CONCURRENTLY
// and CREATE INDEX CONCURRENTLY wait for it after creating their new (INVALID) index, so a
// timeout reliably hits them mid-build.
func (b *bundle) blockWriters(t *testing.T) (release func()) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, b.dsn)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := tx.Exec(ctx, "UPDATE items SET id = id WHERE id = 1"); err != nil {
		t.Fatal(err)
	}
	var once sync.Once
	release = func() {
		once.Do(func() {
			_ = tx.Rollback(ctx)
			conn.Close(ctx)
		})
	}
	t.Cleanup(release)
	return release
}

func (b *bundle) waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (b *bundle) count(t *testing.T, q string, args ...any) int {
	t.Helper()
	var n int
	if err := b.pool.QueryRow(context.Background(), q, args...).Scan(&n); err != nil {
		t.Fatalf("%s: %v", q, err)
	}
	return n
}

func TestReindexTimeoutDropsLeftoverAndKeepsOriginal(t *testing.T) {
	var mu sync.Mutex
	var phases []string
	b := setup(t, strategy.Options{ProgressInterval: 50 * time.Millisecond, OnProgress: func(p strategy.Progress) {
		mu.Lock()
		defer mu.Unlock()
		if p.Index.Name == "items_emb" && p.Target == "test" {
			phases = append(phases, p.Command+": "+p.Phase)
		}
	}})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 2000, 0.3)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)", "ANALYZE items")
	ix := b.resolve(t, "public", "items_emb")
	release := b.blockWriters(t)

	// Release the blocker only once the timeout has cancelled the REINDEX, so it cannot finish;
	// the clean-up (DROP INDEX CONCURRENTLY) then needs the blocker gone too.
	stepCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	var sawLeftover atomic.Bool
	go func() {
		for stepCtx.Err() == nil {
			if len(b.invalidIndexes(t, "items")) > 0 {
				sawLeftover.Store(true)
			}
			time.Sleep(10 * time.Millisecond)
		}
		for b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'REINDEX%' AND state = 'active'`) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		release()
	}()
	out, err := b.strategy(t, "reindex").Run(stepCtx, b.env, ix, nil)
	if err == nil {
		t.Fatal("reindex finished despite the blocked build and the timeout")
	}
	t.Logf("error: %v; statements %q", err, out.Statements)
	if !sawLeftover.Load() {
		t.Error("precondition: the REINDEX never got as far as creating its _ccnew index")
	}
	// While it waited, progress came from pg_stat_progress_create_index.
	mu.Lock()
	if len(phases) == 0 || !strings.HasPrefix(phases[0], "REINDEX CONCURRENTLY: ") {
		t.Errorf("progress samples %q, want REINDEX CONCURRENTLY phases", phases)
	}
	mu.Unlock()
	if left := b.invalidIndexes(t, "items"); len(left) != 0 {
		t.Errorf("invalid indexes left after the timeout: %v", left)
	}
	if n := b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'REINDEX%' AND state = 'active'`); n != 0 {
		t.Errorf("%d REINDEX statements still running after the timeout", n)
	}
	now := b.resolve(t, "public", "items_emb")
	if now.OID != ix.OID || !now.Valid {
		t.Errorf("original index changed: before %+v now %+v", ix, now)
	}
	if used := b.measure(t, now, "pgvector_probe_index_used"); used != 1 {
		t.Error("the original index no longer answers queries")
	}
	// A retry now succeeds.
	if _, err := b.strategy(t, "reindex").Run(ctx, b.env, now, nil); err != nil {
		t.Fatalf("retry: %v", err)
	}
}

func TestReindexRefusesWhileAnotherBuildRuns(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 4, 200, 0.4)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)")
	ix := b.resolve(t, "public", "items_emb")
	release := b.blockWriters(t)
	buildCtx, cancel := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() {
		conn, err := pgx.Connect(buildCtx, b.dsn)
		if err != nil {
			done <- err
			return
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(buildCtx, "CREATE INDEX CONCURRENTLY other ON items (id)")
		done <- err
	}()
	b.waitFor(t, "the other build to show in pg_stat_progress_create_index", func() bool {
		return b.count(t, "SELECT count(*) FROM pg_stat_progress_create_index WHERE relid = $1", ix.TableOID) > 0
	})
	_, err := b.strategy(t, "reindex").Run(ctx, b.env, ix, nil)
	if !errors.Is(err, strategy.ErrBusy) {
		t.Errorf("err = %v, want ErrBusy", err)
	}
	release()
	if err := <-done; err != nil {
		t.Logf("other build: %v", err)
	}
	cancel()
	if now := b.resolve(t, "public", "items_emb"); now.OID != ix.OID {
		t.Error("the index was rebuilt although another build was running")
	}
}

func TestReindexPlanSizesMaintenanceWorkMem(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 64, 3000, 0.15)
	b.exec(t, "CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)", "ANALYZE items")
	var db string
	if err := b.pool.QueryRow(ctx, "SELECT current_database()").Scan(&db); err != nil {
		t.Fatal(err)
	}
	b.exec(t, `ALTER DATABASE "`+db+`" SET maintenance_work_mem = '1MB'`)
	b.pool.Reset() // new sessions with the small setting
	ix := b.resolve(t, "public", "items_emb")
	re := b.strategy(t, "reindex")

	im, err := re.Plan(ctx, b.env, ix, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(im.Statements[0], "SET maintenance_work_mem = '") || !strings.Contains(im.Notes, "raised") {
		t.Errorf("plan with 1MB maintenance_work_mem: %+v", im)
	}
	var kb int64
	if _, err := fmt.Sscanf(im.Statements[0], "SET maintenance_work_mem = '%dkB'", &kb); err != nil || kb*1024 < ix.SizeBytes {
		t.Errorf("maintenance_work_mem %d kB for an index of %d bytes (%v)", kb, ix.SizeBytes, err)
	}
	im, err = re.Plan(ctx, b.env, ix, strategy.Params{"max_maintenance_work_mem": "2MB"})
	if err != nil {
		t.Fatal(err)
	}
	if im.Statements[0] != "SET maintenance_work_mem = '2048kB'" || !strings.Contains(im.Notes, "slower") {
		t.Errorf("plan capped at 2MB: %+v", im)
	}
	if _, err := re.Run(ctx, b.env, ix, nil); err != nil {
		t.Fatal(err)
	}
}
