package measure_test

import (
	"context"
	"flag"
	"os"
	"path/filepath"
	"testing"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

var update = flag.Bool("update", false, "rewrite testdata/plan_*.json from the server's EXPLAIN output")

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// testPool is a pool on a database of its own where schema has run, closed at the end.
func testPool(t *testing.T, schema string) *pgxpool.Pool {
	t.Helper()
	pool, err := pgxpool.New(context.Background(), testenv.SharedPostgres(t).CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := pool.Exec(context.Background(), schema); err != nil {
		t.Fatal(err)
	}
	return pool
}

// planCases are queries over the schema of planSchema, each with the index its plan scans ("":
// none) and the fixture that holds its EXPLAIN (FORMAT JSON) output.
var planCases = []struct {
	fixture, sql, scans string
	args                []any
}{
	// Limit over an Index Scan of the HNSW index.
	{"plan_index_scan.json", `SELECT id FROM items ORDER BY v <-> $1 LIMIT 5`, "items_v_idx", []any{"[1,2,3]"}},
	// Bitmap Heap Scan over a Bitmap Index Scan of a B-tree.
	{"plan_bitmap_scan.json", `SELECT id FROM items WHERE category = $1`, "items_category_idx", []any{int32(3)}},
	// Limit over a Sort over a Seq Scan: no index.
	{"plan_seq_scan.json", `SELECT id FROM items WHERE id % 7 = 0 ORDER BY v <-> $1 LIMIT 5`, "", []any{"[1,2,3]"}},
	// A join whose inner side searches through the HNSW index in a subquery, nested deep.
	{"plan_nested.json", `SELECT o.id, n.id FROM other o CROSS JOIN LATERAL
		(SELECT id FROM items ORDER BY v <-> o.v LIMIT 3) n WHERE o.id < $1`, "items_v_idx", []any{int32(3)}},
}

const planSchema = `
SET enable_seqscan = off;
CREATE TABLE items (id int PRIMARY KEY, category int, v vector(3));
INSERT INTO items SELECT g, g % 50, ARRAY[g % 13, g % 17, g % 19]::real[]::vector FROM generate_series(1, 5000) g;
CREATE INDEX items_v_idx ON items USING hnsw (v vector_l2_ops);
CREATE INDEX items_category_idx ON items (category);
CREATE TABLE other (id int PRIMARY KEY, v vector(3));
INSERT INTO other SELECT g, ARRAY[g, g, g]::real[]::vector FROM generate_series(1, 100) g;
ANALYZE items, other;`

// TestUsesIndex asks a real server whether each query's plan scans each index; with -update it
// also writes the plans to the fixtures TestPlanScans reads.
func TestUsesIndex(t *testing.T) {
	ctx := context.Background()
	pool := testPool(t, planSchema)
	conn, err := pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Release()
	for _, c := range planCases {
		// The sequential scan is what the planner would choose anyway for the seq scan case;
		// the other plans must not depend on the cost of a tiny table.
		_, err := conn.Exec(ctx, "SET enable_seqscan = "+map[bool]string{true: "on", false: "off"}[c.scans == ""])
		if err != nil {
			t.Fatal(err)
		}
		for _, index := range []string{"items_v_idx", "items_category_idx"} {
			got, err := measure.UsesIndex(ctx, conn, index, c.sql, c.args...)
			if err != nil {
				t.Fatalf("%s: %v", c.fixture, err)
			}
			if want := index == c.scans; got != want {
				t.Errorf("%s: UsesIndex(%s) = %v, want %v", c.fixture, index, got, want)
			}
		}
		if *update {
			var raw []byte
			if err := conn.QueryRow(ctx, `EXPLAIN (FORMAT JSON) `+c.sql, c.args...).Scan(&raw); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join("testdata", c.fixture), raw, 0o644); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// TestPlanScans reads EXPLAIN (FORMAT JSON) output of PostgreSQL, kept in testdata.
func TestPlanScans(t *testing.T) {
	for _, c := range planCases {
		t.Run(c.fixture, func(t *testing.T) {
			raw, err := os.ReadFile(filepath.Join("testdata", c.fixture))
			if err != nil {
				t.Fatal(err)
			}
			for _, index := range []string{"items_v_idx", "items_category_idx", "items_pkey", "items_v"} {
				got, err := measure.PlanScans(raw, index)
				if err != nil {
					t.Fatal(err)
				}
				if want := index == c.scans; got != want {
					t.Errorf("PlanScans(%s) = %v, want %v", index, got, want)
				}
			}
		})
	}
	if _, err := measure.PlanScans([]byte(`Limit  (cost=0.00..1.00)`), "items_v_idx"); err == nil {
		t.Error("PlanScans of text output: no error")
	}
}
