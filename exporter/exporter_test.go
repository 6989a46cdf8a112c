package exporter

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestScrapeMeasuresIndexes scrapes a real database with an HNSW and an IVFFlat index: the
// structure read from the pages matches the table, the probe and statistics are published,
// promtool accepts the output, and deleted rows show as dead heap TIDs until VACUUM.
func TestScrapeMeasuresIndexes(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	const rows = 1500
	clustered(t, dsn, rows, 8, 12)
	testenv.Exec(t, dsn,
		`CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops) WITH (m = 8, ef_construction = 32)`,
		`CREATE INDEX items_ivf ON items USING ivfflat (embedding vector_cosine_ops) WITH (lists = 10)`)

	s := start(t, testConfig(), map[string]string{"main": dsn})
	h := map[string]string{"target": "main", "indexrelname": "items_hnsw", "schemaname": "public", "relname": "items"}
	iv := map[string]string{"target": "main", "indexrelname": "items_ivf"}
	with := func(m map[string]string, k, v string) map[string]string {
		out := map[string]string{k: v}
		for a, b := range m {
			out[a] = b
		}
		return out
	}

	s.waitSample(t, "pgvector_hnsw_elements", with(h, "state", "live"), "= rows", eq(rows))
	s.waitSample(t, "pgvector_hnsw_heap_tids", with(h, "state", "live"), "= rows", eq(rows))
	s.waitSample(t, "pgvector_hnsw_heap_tids", with(h, "state", "dead"), "0", eq(0))
	s.waitSample(t, "pgvector_hnsw_layer_elements", with(h, "layer", "0"), "= rows", eq(rows))
	s.waitSample(t, "pgvector_hnsw_connectivity_ratio", h, "1", eq(1))
	s.waitSample(t, "pgvector_ivfflat_lists", iv, "10", eq(10))
	s.waitSample(t, "pgvector_ivfflat_recommended_lists", iv, "rows/1000", eq(1))
	s.waitSample(t, "pgvector_index_info", with(with(h, "method", "hnsw"), "m", "8"), "1", eq(1))
	s.waitSample(t, "pgvector_index_valid", iv, "1", eq(1))
	s.waitSample(t, "pgvector_recall_ratio", with(h, "k", "10"), "in (0,1]", func(v float64) bool { return v > 0 && v <= 1 })
	s.waitSample(t, "pgvector_probe_index_used", h, "1", eq(1))
	s.waitSample(t, "pgvector_probe_latency_seconds", h, "observations", func(v float64) bool { return v >= 10 })
	s.waitSample(t, "pgvector_drift_score", h, "present", exists)
	s.waitSample(t, "pgvector_index_training_staleness_seconds", h, ">= 0", func(v float64) bool { return v >= 0 })
	s.waitSample(t, "pgvector_table_live_tuples", h, "= rows", eq(rows))
	s.waitSample(t, "vectorheal_up", map[string]string{"target": "main"}, "1", eq(1))
	s.waitSample(t, "vectorheal_page_reader_available", map[string]string{"target": "main"}, "1", eq(1))
	for _, c := range []string{"discovery", "statistics", "structure", "recall", "drift"} {
		s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": c}, "1", eq(1))
	}

	// Statements of the application that use a distance operator are counted; the probe's
	// own are not.
	calls0, _ := s.sample(t, "pgvector_query_calls_total", map[string]string{"target": "main"})
	for range 3 {
		testenv.Exec(t, dsn, `SELECT id FROM items ORDER BY embedding <-> (SELECT embedding FROM items LIMIT 1) LIMIT 5`)
	}
	s.waitSample(t, "pgvector_query_calls_total", map[string]string{"target": "main"}, "+3", eq(calls0+3))
	s.waitSample(t, "pgvector_query_exec_seconds_total", map[string]string{"target": "main"}, "> 0", func(v float64) bool { return v > 0 })

	promtoolCheck(t, s.scrape(t))

	// Deleted rows stay in the graph as dead heap TIDs until VACUUM.
	const deleted = 200
	testenv.Exec(t, dsn, `DELETE FROM items WHERE id <= 200`)
	s.waitSample(t, "pgvector_hnsw_heap_tids", with(h, "state", "dead"), "= deleted rows", eq(deleted))
	s.waitSample(t, "pgvector_hnsw_heap_tids", with(h, "state", "live"), "= remaining rows", eq(rows-deleted))
	s.waitSample(t, "pgvector_index_rows_changed_since_build_ratio", h, "deleted/rows", func(v float64) bool {
		return v > 0.1 && v < 0.2
	})
	testenv.Exec(t, dsn, `VACUUM items`)
	s.waitSample(t, "pgvector_hnsw_heap_tids", with(h, "state", "dead"), "0 after VACUUM", eq(0))
	s.waitSample(t, "pgvector_hnsw_elements", with(h, "state", "live"), "= remaining rows", eq(rows-deleted))
}

// promtoolCheck runs promtool check metrics on a scrape.
func promtoolCheck(t *testing.T, text string) {
	t.Helper()
	bin, err := testenv.PromtoolBinary()
	if err != nil {
		testenv.Unavailable(t, err)
	}
	cmd := exec.Command(bin, "check", "metrics")
	cmd.Stdin = strings.NewReader(text)
	out, err := cmd.CombinedOutput()
	if err != nil {
		path := filepath.Join(t.TempDir(), "scrape.txt")
		_ = os.WriteFile(path, []byte(text), 0o644)
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
}

// TestUnreachableTarget: a target that does not answer is reported down while the others are
// still measured, and scrapes keep being served.
func TestUnreachableTarget(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 300, 4, 3)
	testenv.Exec(t, dsn, `CREATE INDEX items_hnsw ON items USING hnsw (embedding vector_l2_ops)`)
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	bad := "postgres://nobody@127.0.0.1:" + itoa(port) + "/nothing?sslmode=disable&connect_timeout=2"
	logs := &logLines{}
	s := startLogged(t, logs, testConfig(), map[string]string{"good": dsn, "gone": bad})
	s.waitSample(t, "vectorheal_up", map[string]string{"target": "gone"}, "0", eq(0))
	s.waitSample(t, "vectorheal_up", map[string]string{"target": "good"}, "1", eq(1))
	s.waitSample(t, "pgvector_hnsw_elements", map[string]string{"target": "good", "state": "live"}, "300", eq(300))
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "gone", "collector": "discovery"}, "0", eq(0))
	for range 3 {
		text := s.scrape(t)
		if !strings.Contains(text, `vectorheal_up{target="gone"} 0`) {
			t.Fatalf("scrape lacks the down target:\n%s", text)
		}
	}
	// Every scrape and discovery round failed, yet each state change is logged once, naming
	// the target and the reason.
	time.Sleep(2 * time.Second) // several discovery rounds
	if n := logs.count(`msg="target is down" target=gone`); n != 1 {
		t.Errorf("'target is down' logged %d times, want once", n)
	}
	if n := logs.count(`msg="cannot list vector indexes" target=gone`); n != 1 {
		t.Errorf("discovery failure logged %d times, want once", n)
	}
	if n := logs.count(`connect`); n == 0 {
		t.Error("the log does not say why the target is down")
	}
	if n := logs.count(`level=WARN`, `target=good`); n != 0 {
		t.Errorf("the reachable target logged %d warnings", n)
	}
}

// TestDiscoveryFollowsCatalog: indexes created and dropped while the exporter runs are picked
// up, and an INVALID index is published with pgvector_index_valid 0.
func TestDiscoveryFollowsCatalog(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 200, 4, 3)
	s := start(t, testConfig(), map[string]string{"main": dsn})
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "discovery"}, "1", eq(1))
	if _, ok := s.sample(t, "pgvector_index_info", map[string]string{"indexrelname": "later"}); ok {
		t.Fatal("index published before it exists")
	}
	testenv.Exec(t, dsn, `CREATE INDEX later ON items USING ivfflat (embedding vector_l2_ops) WITH (lists = 4)`)
	s.waitSample(t, "pgvector_index_info", map[string]string{"indexrelname": "later", "method": "ivfflat", "lists": "4"}, "1", eq(1))
	testenv.Exec(t, dsn, `UPDATE pg_index SET indisvalid = false WHERE indexrelid = 'later'::regclass`)
	s.waitSample(t, "pgvector_index_valid", map[string]string{"indexrelname": "later"}, "0", eq(0))
	testenv.Exec(t, dsn, `DROP INDEX later`)
	deadline := time.Now().Add(30 * time.Second)
	for {
		if _, ok := s.sample(t, "pgvector_index_info", map[string]string{"indexrelname": "later"}); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("dropped index still published")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestCustomMetrics publishes user SQL metrics with their label columns.
func TestCustomMetrics(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	testenv.Exec(t, dsn, `CREATE TABLE tasks (kind text, n int)`, `INSERT INTO tasks VALUES ('train', 3), ('eval', 5)`)
	cfg := testConfig()
	cfg.CustomMetrics = []config.CustomMetric{
		{Name: "learning_tasks", Help: "Tasks by kind.", Type: "gauge", SQL: `SELECT kind, sum(n) AS value FROM tasks GROUP BY kind`,
			ValueColumn: "value", LabelColumns: []string{"kind"}, Interval: time.Second, Timeout: time.Second},
		{Name: "broken_metric", Help: "Names a column the query lacks.", Type: "gauge", SQL: `SELECT 1 AS other`,
			ValueColumn: "value", Interval: time.Second, Timeout: time.Second},
	}
	clashes := []config.CustomMetric{
		{Name: "pgvector_recall_ratio", Help: "Clashes with the exporter's own.", Type: "gauge", SQL: `SELECT 1 AS value`,
			ValueColumn: "value", Interval: time.Second, Timeout: time.Second},
		{Name: "learning_target", Help: "Label column named like the target label.", Type: "gauge", SQL: `SELECT 'x' AS target, 1 AS value`,
			ValueColumn: "value", LabelColumns: []string{"target"}, Interval: time.Second, Timeout: time.Second},
	}
	cfg.CustomMetrics = append(cfg.CustomMetrics, clashes...)
	logs := &logLines{}
	s := startLogged(t, logs, cfg, map[string]string{"main": dsn})
	for _, c := range clashes {
		if logs.count(`msg="custom metric left out" metric=`+c.Name) != 1 {
			t.Errorf("custom metric %s not left out with an error", c.Name)
		}
	}
	s.waitSample(t, "learning_tasks", map[string]string{"target": "main", "kind": "train"}, "3", eq(3))
	s.waitSample(t, "learning_tasks", map[string]string{"target": "main", "kind": "eval"}, "5", eq(5))
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "custom:broken_metric"}, "0", eq(0))
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "custom:learning_tasks"}, "1", eq(1))
	promtoolCheck(t, s.scrape(t))
}

func itoa(n int) string { return strconv.Itoa(n) }

// TestFailingIndexDoesNotHideOthers: the recall probe of one index fails (its expression
// calls a function that refuses to run in a read-only transaction, as the probe's is); the
// failure is counted and reported while the other index of the table is still measured.
func TestFailingIndexDoesNotHideOthers(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	clustered(t, dsn, 1500, 8, 6)
	testenv.Exec(t, dsn,
		`CREATE FUNCTION writable_only(v vector) RETURNS vector IMMUTABLE LANGUAGE plpgsql AS $$
		BEGIN
			IF current_setting('transaction_read_only') = 'on' THEN
				RAISE EXCEPTION 'writable_only called in a read-only transaction';
			END IF;
			RETURN v;
		END $$`,
		`CREATE INDEX plain ON items USING hnsw (embedding vector_l2_ops)`,
		`CREATE INDEX expr ON items USING hnsw ((writable_only(embedding)::vector(8)) vector_cosine_ops)`)
	s := start(t, testConfig(), map[string]string{"main": dsn})
	s.waitSample(t, "pgvector_probe_errors_total", map[string]string{"indexrelname": "expr"}, "> 1", func(v float64) bool { return v > 1 })
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": "recall"}, "0", eq(0))
	s.waitSample(t, "pgvector_recall_ratio", map[string]string{"indexrelname": "plain"}, "present", exists)
	s.waitSample(t, "pgvector_hnsw_elements", map[string]string{"indexrelname": "expr", "state": "live"}, "1500", eq(1500))
	if _, ok := s.sample(t, "pgvector_recall_ratio", map[string]string{"indexrelname": "expr"}); ok {
		t.Error("recall published for the index whose probe fails")
	}
	if n, _ := s.sample(t, "pgvector_probe_errors_total", map[string]string{"indexrelname": "plain"}); n != 0 {
		t.Errorf("plain index has %v probe errors", n)
	}
}
