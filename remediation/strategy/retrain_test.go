package strategy_test

import (
	"context"
	"encoding/json"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func (b *bundle) indexNames(t *testing.T, table string) []string {
	t.Helper()
	rows, err := b.pool.Query(context.Background(), `SELECT c.relname || CASE WHEN i.indisvalid THEN '' ELSE ' (invalid)' END
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid WHERE i.indrelid = $1::regclass ORDER BY 1`, table)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			t.Fatal(err)
		}
		out = append(out, s)
	}
	return out
}

func TestRetrainRebalancesDriftedIVFFlat(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 2000, 0.5)
	b.exec(t, "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 20)")
	// Drifted inserts: far from every center, so they all land in the one nearest list.
	b.exec(t, `INSERT INTO items (emb) SELECT (SELECT array_agg(5 + random()::real) FROM generate_series(1, 8) WHERE g > 0)::vector
		FROM generate_series(1, 8000) g`, "ANALYZE items")
	ix := b.resolve(t, "public", "items_ivf")
	before := b.measure(t, ix, "pgvector_ivfflat_list_size_cv")
	if before < 2 {
		t.Fatalf("precondition: list size CV %v after drifted inserts, want a skewed index", before)
	}
	pages := exporterMeasurer()
	exporterBefore, err := pages.Measure(ctx, b.pool, ix, "pgvector_ivfflat_list_size_cv")
	if err != nil || exporterBefore < 2 {
		t.Fatalf("precondition: the exporter measures list size CV %v (%v)", exporterBefore, err)
	}

	re := b.strategy(t, "ivfflat_retrain")
	p := strategy.Params{"min_lists": 4, "max_lists": 1000}
	if err := re.CheckParams(p); err != nil {
		t.Fatal(err)
	}
	im, err := re.Plan(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %+v", im)
	if len(im.Statements) != 4 || im.Statements[0] != `CREATE INDEX CONCURRENTLY "items_ivf_vhnew" ON "public"."items" USING ivfflat (emb public.vector_l2_ops) WITH (lists = 10)` {
		t.Errorf("planned %q", im.Statements)
	}
	out, err := re.Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("before %v after %v", out.Before, out.After)
	after := b.resolve(t, "public", "items_ivf")
	// 10 000 rows / 1000, within [min_lists, max_lists] = [4, 1000].
	if after.Lists != 10 || !after.Valid || after.OID == ix.OID {
		t.Errorf("retrained index %+v", after)
	}
	cvAfter := b.measure(t, after, "pgvector_ivfflat_list_size_cv")
	if cvAfter > before/2 {
		t.Errorf("list size CV %v -> %v, want it at least halved", before, cvAfter)
	}
	if got, err := pages.Measure(ctx, b.pool, after, "pgvector_ivfflat_list_size_cv"); err != nil || got > exporterBefore/2 {
		t.Errorf("exporter's list size CV %v -> %v (%v), want it at least halved", exporterBefore, got, err)
	}
	if out.Before["pgvector_ivfflat_list_size_cv"] != before || out.After["lists"] != float64(after.Lists) {
		t.Errorf("outcome figures before %v after %v", out.Before, out.After)
	}
	if got := b.indexNames(t, "items"); len(got) != 2 || got[0] != "items_ivf" || got[1] != "items_pkey" {
		t.Errorf("indexes after retrain: %v", got)
	}
	if used := b.measure(t, after, "pgvector_probe_index_used"); used != 1 {
		t.Error("retrained index not used")
	}

	// Idempotent: a second run rebuilds again with the same lists.
	if _, err := re.Run(ctx, b.env, after, p); err != nil {
		t.Fatalf("second run: %v", err)
	}
	// Rollback restores the previous lists under the same name.
	if err := re.Rollback(ctx, b.env, after, p, out.Undo); err != nil {
		t.Fatal(err)
	}
	back := b.resolve(t, "public", "items_ivf")
	if back.Lists != 20 || !back.Valid {
		t.Errorf("after rollback %+v", back)
	}
	if got := b.indexNames(t, "items"); len(got) != 2 {
		t.Errorf("indexes after rollback: %v", got)
	}
	var u map[string]any
	if err := json.Unmarshal(out.Undo, &u); err != nil || u["previous_lists"] != float64(20) {
		t.Errorf("undo %s", out.Undo)
	}
}

func TestRetrainTimeoutKeepsOriginal(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 3000, 0.6)
	b.exec(t, "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 5)", "ANALYZE items")
	ix := b.resolve(t, "public", "items_ivf")
	release := b.blockWriters(t)
	stepCtx, cancel := context.WithTimeout(ctx, time.Second)
	defer cancel()
	go func() {
		<-stepCtx.Done()
		for b.count(t, `SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'CREATE INDEX CONCURRENTLY%' AND state = 'active'`) > 0 {
			time.Sleep(10 * time.Millisecond)
		}
		release()
	}()
	if _, err := b.strategy(t, "ivfflat_retrain").Run(stepCtx, b.env, ix, nil); err == nil {
		t.Fatal("retrain finished despite the blocked build and the timeout")
	}
	if got := b.indexNames(t, "items"); len(got) != 2 || got[0] != "items_ivf" {
		t.Errorf("indexes after the timeout: %v", got)
	}
	if now := b.resolve(t, "public", "items_ivf"); now.OID != ix.OID || !now.Valid || now.Lists != 5 {
		t.Errorf("original changed: %+v", now)
	}
}

func TestRetrainKeepsPredicateAndQuotedNames(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.exec(t, `CREATE SCHEMA "Odd Schema"`,
		`CREATE TABLE "Odd Schema"."My Items" (id int PRIMARY KEY, "Emb" vector(4))`,
		`INSERT INTO "Odd Schema"."My Items" SELECT g, ARRAY[random(), random(), random(), g % 7]::vector FROM generate_series(1, 3000) g`,
		`CREATE INDEX "ivf idx" ON "Odd Schema"."My Items" USING ivfflat ("Emb" vector_cosine_ops) WITH (lists = 2) WHERE id > 10`,
		`ANALYZE "Odd Schema"."My Items"`)
	ix := b.resolve(t, "Odd Schema", "ivf idx")
	if _, err := b.strategy(t, "ivfflat_retrain").Run(ctx, b.env, ix, nil); err != nil {
		t.Fatal(err)
	}
	var def string
	if err := b.pool.QueryRow(ctx, `SELECT indexdef FROM pg_indexes WHERE schemaname = 'Odd Schema' AND indexname = 'ivf idx'`).Scan(&def); err != nil {
		t.Fatal(err)
	}
	want := `CREATE INDEX "ivf idx" ON "Odd Schema"."My Items" USING ivfflat ("Emb" vector_cosine_ops) WITH (lists='3') WHERE (id > 10)`
	if def != want {
		t.Errorf("definition after retrain:\n got %s\nwant %s", def, want)
	}
}

// Rows inserted since the last ANALYZE count: the table grew from 2,000 to 10,000 rows with
// statistics still saying 2,000, and the plan must size lists for 10,000 (10, not 2).
func TestRetrainSizesListsForRowsWrittenSinceAnalyze(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 2000, 0.3)
	b.exec(t, "ANALYZE items", "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 20)",
		`INSERT INTO items (emb) SELECT (SELECT array_agg(5 + random()::real) FROM generate_series(1, 8) WHERE g > 0)::vector
		FROM generate_series(1, 8000) g`)
	var reltuples float64
	if err := b.pool.QueryRow(ctx, `SELECT reltuples FROM pg_class WHERE relname = 'items'`).Scan(&reltuples); err != nil || reltuples != 2000 {
		t.Fatalf("precondition: statistics say %v rows (%v), want the stale 2000", reltuples, err)
	}
	im, err := b.strategy(t, "ivfflat_retrain").Plan(ctx, b.env, b.resolve(t, "public", "items_ivf"), strategy.Params{"min_lists": 1})
	if err != nil {
		t.Fatal(err)
	}
	// The estimate scales the analysed density to today's pages, so it lands near 10,000.
	var lists int
	if len(im.Statements) > 0 {
		_, after, _ := strings.Cut(im.Statements[0], "WITH (lists = ")
		lists, _ = strconv.Atoi(strings.TrimSuffix(after, ")"))
	}
	if lists < 9 || lists > 11 {
		t.Errorf("planned %q: lists %d, want about 10 for 10,000 rows (2 would be the stale statistics)", im.Statements, lists)
	}
}

// TestRetrainKeepsTheProbedShare: a retrain that quadruples the lists raises the database's
// ivfflat.probes fourfold, so searches probe the same share of the index, and the measured
// recall does not fall; rollback restores both. With keep_probe_share false the setting stays.
func TestRetrainKeepsTheProbedShare(t *testing.T) {
	b := setup(t, strategy.Options{})
	ctx := context.Background()
	b.loadVectors(t, "items", 8, 3000, 0.5)
	b.exec(t, "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 4)", "ANALYZE items")
	ix := b.resolve(t, "public", "items_ivf")
	b.exec(t, `ALTER DATABASE "`+ix.Datname+`" SET ivfflat.probes = 2`)
	re := b.strategy(t, "ivfflat_retrain")
	p := strategy.Params{"min_lists": 16, "max_lists": 16}
	if err := re.CheckParams(p); err != nil {
		t.Fatal(err)
	}
	out, err := re.Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statements %q before %v after %v", out.Statements, out.Before, out.After)
	if got := b.dbSetting(t, "", "ivfflat.probes"); got != "8" {
		t.Errorf("ivfflat.probes after lists 4 -> 16 at probes 2: %q, want 8", got)
	}
	if out.Before["ivfflat.probes"] != 2 || out.After["ivfflat.probes"] != 8 || out.After["lists"] != 16 {
		t.Errorf("recorded before %v after %v", out.Before, out.After)
	}
	if rb, ra := out.Before["pgvector_recall_ratio"], out.After["pgvector_recall_ratio"]; ra < rb-0.02 {
		t.Errorf("recall %v before, %v after the retrain: the probed share was kept, recall should be too", rb, ra)
	}
	if err := re.Rollback(ctx, b.env, ix, p, out.Undo); err != nil {
		t.Fatal(err)
	}
	if got, now := b.dbSetting(t, "", "ivfflat.probes"), b.resolve(t, "public", "items_ivf"); got != "2" || now.Lists != 4 {
		t.Errorf("after rollback: ivfflat.probes %q, lists %d; want 2 and 4", got, now.Lists)
	}

	p["keep_probe_share"] = false
	if _, err := re.Run(ctx, b.env, b.resolve(t, "public", "items_ivf"), p); err != nil {
		t.Fatal(err)
	}
	if got := b.dbSetting(t, "", "ivfflat.probes"); got != "2" {
		t.Errorf("ivfflat.probes with keep_probe_share false: %q, want 2 as it was", got)
	}
}
