package strategy_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// filteredMeasurer is the exporter's Measurer with one declared filtered query on items_emb:
// $2 is a value of column filter.
func filteredMeasurer(filter string) strategy.Measurer {
	chk := config.Check{Interval: time.Minute, Timeout: time.Minute}
	return exporter.NewMeasurer(config.Exporter{
		Recall:            config.RecallCheck{Check: chk, Queries: 10, K: 10},
		StatisticsTimeout: 10 * time.Second,
		PageBatch:         64,
		FilteredQueries: []config.FilteredQuery{{Name: "by_" + filter, Schema: "public", Index: "items_emb",
			Filters: []string{filter}, K: 10, Samples: 20, Interval: time.Minute, Timeout: time.Minute,
			SQL: `SELECT id FROM items WHERE ` + filter + ` = $2 ORDER BY emb <-> $1 LIMIT $3`}},
	})
}

// filteredItems is items (16-d random vectors) with column category, 10 values spread evenly,
// and column tag, set on 10 rows only, each to a value of its own, and an HNSW index at
// pgvector's default build options.
func filteredItems(t *testing.T, b *bundle, rows int) catalog.Index {
	t.Helper()
	b.loadVectors(t, "items", 16, rows, 0.23)
	b.exec(t, "ALTER TABLE items ADD COLUMN category int, ADD COLUMN tag text",
		"UPDATE items SET category = id % 10, tag = CASE WHEN id % (SELECT count(*) / 10 FROM items) = 0 THEN 'tag' || id END",
		"CREATE INDEX items_emb ON items USING hnsw (emb vector_l2_ops)", "ANALYZE items")
	return b.resolve(t, "public", "items_emb")
}

// TestTuneSearchIterativeScanFillsFilteredQueries: with the default hnsw.ef_search = 40 a
// filter matching a tenth of the rows returns about 4 of 10 rows; tune_search turns on
// iterative scans within its bounds, which fills them again with good recall, and its rollback
// removes the settings.
func TestTuneSearchIterativeScanFillsFilteredQueries(t *testing.T) {
	b := setup(t, strategy.Options{})
	b.env.Measure = filteredMeasurer("category")
	ctx := context.Background()
	ix := filteredItems(t, b, 10000)
	if short := b.measure(t, ix, "pgvector_filtered_short_ratio"); short < 0.5 {
		t.Fatalf("precondition: %.2f of the filtered queries short at the default ef_search, want most", short)
	}
	tune := b.strategy(t, "tune_search")
	p := strategy.Params{"target_recall": 0.8, "iterative_scan": "relaxed_order", "max_scan_tuples": 40000,
		"target_filtered_recall": 0.9, "latency_budget": "2s"}
	im, err := tune.Plan(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("plan: %+v", im)
	out, err := tune.Run(ctx, b.env, ix, p)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("statements %q before %v after %v undo %s", out.Statements, out.Before, out.After, out.Undo)
	if out.Before["pgvector_filtered_short_ratio"] < 0.5 || out.After["pgvector_filtered_short_ratio"] != 0 ||
		out.After["pgvector_filtered_recall_ratio"] < 0.9 || out.After["hnsw.iterative_scan"] == 0 {
		t.Errorf("before %v after %v", out.Before, out.After)
	}
	mode := b.dbSetting(t, "", "hnsw.iterative_scan")
	if mode != "strict_order" && mode != "relaxed_order" {
		t.Errorf("hnsw.iterative_scan = %q for the database", mode)
	}
	// What a new session sees now.
	if r := b.measure(t, ix, "pgvector_filtered_rows_ratio"); r != 1 {
		t.Errorf("rows returned over k on a new session = %v, want 1", r)
	}
	// A second run finds the targets met and changes nothing.
	out2, err := tune.Run(ctx, b.env, ix, p)
	if err != nil || len(out2.Statements) != 0 {
		t.Errorf("second run: err %v statements %q", err, out2.Statements)
	}
	if err := tune.Rollback(ctx, b.env, ix, p, out.Undo); err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"hnsw.iterative_scan", "hnsw.max_scan_tuples", "hnsw.ef_search"} {
		if got := b.dbSetting(t, "", s); got != "" {
			t.Errorf("after rollback %s = %q, want unset as before", s, got)
		}
	}
	if short := b.measure(t, ix, "pgvector_filtered_short_ratio"); short < 0.5 {
		t.Errorf("after rollback %.2f of the filtered queries short, want most again", short)
	}
}

// TestTuneSearchIterativeScanRolledBackOverLatencyBudget: a filter matching one row can never
// fill k = 10, so an iterative scan visits every tuple it is allowed to; with a large
// max_scan_tuples that costs many times the latency of a plain search, and tune_search restores
// the settings (including one set before) and says why.
func TestTuneSearchIterativeScanRolledBackOverLatencyBudget(t *testing.T) {
	b := setup(t, strategy.Options{})
	b.env.Measure = filteredMeasurer("tag")
	ctx := context.Background()
	ix := filteredItems(t, b, 20000)
	// On a table this small the planner reads it all for so rare a filter; on the large tables
	// where the case hurts it scans the vector index, which enable_seqscan = off stands for.
	b.exec(t, `ALTER DATABASE "`+ix.Datname+`" SET enable_seqscan = off`,
		`ALTER DATABASE "`+ix.Datname+`" SET hnsw.max_scan_tuples = 15000`)
	if used := b.measure(t, ix, "pgvector_filtered_index_used"); used != 1 {
		t.Fatalf("precondition: the filtered query does not scan the index (%v)", used)
	}
	plain := max(b.measure(t, ix, "pgvector_filtered_latency_seconds"), b.measure(t, ix, "pgvector_probe_latency_seconds"))
	b.exec(t, `ALTER DATABASE "`+ix.Datname+`" SET hnsw.iterative_scan = relaxed_order`)
	unbounded := b.measure(t, ix, "pgvector_filtered_latency_seconds")
	b.exec(t, `ALTER DATABASE "`+ix.Datname+`" RESET hnsw.iterative_scan`)
	budget := time.Duration(max(4*plain, 0.002) * float64(time.Second))
	t.Logf("filtered latency %.4fs plain, %.4fs with relaxed_order; budget %s", plain, unbounded, budget)
	if unbounded < 2*budget.Seconds() {
		t.Fatalf("precondition: an iterative scan of a filter that cannot be met costs %.4fs, not clearly above the budget %s", unbounded, budget)
	}

	out, err := b.strategy(t, "tune_search").Run(ctx, b.env, ix, strategy.Params{"target_recall": 0.5,
		"iterative_scan": "relaxed_order", "max_scan_tuples": 1000000, "latency_budget": budget.String()})
	t.Logf("error: %v; statements %q after %v", err, out.Statements, out.After)
	if err == nil || !strings.Contains(err.Error(), "latency_budget") || !strings.Contains(err.Error(), "previous settings restored") {
		t.Fatalf("err = %v, want the latency budget named", err)
	}
	if len(out.Statements) == 0 || !strings.Contains(strings.Join(out.Statements, ";"), "hnsw.iterative_scan = strict_order") {
		t.Errorf("statements %q: want strict_order tried first", out.Statements)
	}
	if got := b.dbSetting(t, "", "hnsw.iterative_scan"); got != "" {
		t.Errorf("hnsw.iterative_scan = %q after the rollback, want unset as before", got)
	}
	if got := b.dbSetting(t, "", "hnsw.max_scan_tuples"); got != "15000" {
		t.Errorf("hnsw.max_scan_tuples = %q after the rollback, want 15000 as before", got)
	}
}

func TestTuneSearchIterativeParams(t *testing.T) {
	b := setup(t, strategy.Options{})
	tune := b.strategy(t, "tune_search")
	for _, tc := range []struct {
		p    strategy.Params
		want string
	}{
		{strategy.Params{"iterative_scan": "relaxed_order"}, `parameter "latency_budget": required with iterative_scan`},
		{strategy.Params{"max_scan_tuples": 50000}, `parameter "max_scan_tuples": only used with iterative_scan`},
		{strategy.Params{"max_probes": 10}, `parameter "max_probes": only used with iterative_scan`},
		{strategy.Params{"iterative_scan": "sideways", "latency_budget": "1s"}, `iterative_scan`},
		{strategy.Params{"iterative_scan": "strict_order", "latency_budget": "1s", "max_scan_tuples": 0}, `max_scan_tuples`},
	} {
		if err := tune.CheckParams(tc.p); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: err = %v, want %q", tc.p, err, tc.want)
		}
	}
	// IVFFlat: relaxed_order only, and bounded.
	b.loadVectors(t, "items", 8, 500, 0.3)
	b.exec(t, "CREATE INDEX items_ivf ON items USING ivfflat (emb vector_l2_ops) WITH (lists = 10)")
	ix := b.resolve(t, "public", "items_ivf")
	for p, want := range map[string]strategy.Params{
		`"iterative_scan": public.items_ivf is an ivfflat index`: {"iterative_scan": "strict_order", "latency_budget": "1s"},
		`"max_probes": required`:                                 {"iterative_scan": "relaxed_order", "latency_budget": "1s"},
	} {
		if _, err := tune.Plan(context.Background(), b.env, ix, want); err == nil || !strings.Contains(err.Error(), p) {
			t.Errorf("%v: err = %v, want %q", want, err, p)
		}
	}
}
