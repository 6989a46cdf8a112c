package catalog_test

import (
	"context"
	"errors"
	"os"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

// connect opens a connection to a new database of the shared cluster, closed at the end.
func connect(t *testing.T) *pgx.Conn {
	t.Helper()
	conn, err := pgx.Connect(context.Background(), testenv.SharedPostgres(t).CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(context.Background()) })
	return conn
}

func TestListAndResolve(t *testing.T) {
	ctx := context.Background()
	conn := connect(t)
	for _, q := range []string{
		`CREATE SCHEMA "Odd Schema"`,
		`CREATE TABLE "Odd Schema".items (id int PRIMARY KEY, "Emb" vector(4))`,
		`INSERT INTO "Odd Schema".items SELECT g, ARRAY[g, 1, 2, 3]::vector FROM generate_series(1, 50) g`,
		`CREATE INDEX "hnsw idx" ON "Odd Schema".items USING hnsw ("Emb" vector_cosine_ops) WITH (m = 6)`,
		`CREATE INDEX ivf ON "Odd Schema".items USING ivfflat ("Emb") WITH (lists = 3)`,
		`CREATE INDEX plain ON "Odd Schema".items (id)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	all, err := catalog.List(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(all) != 2 {
		t.Fatalf("List found %d indexes, want 2: %+v", len(all), all)
	}
	h, err := catalog.Resolve(ctx, conn, "Odd Schema", "hnsw idx")
	if err != nil {
		t.Fatal(err)
	}
	if h.Method != "hnsw" || h.Opclass != "vector_cosine_ops" || h.M != 6 || h.EfConstruction != 64 ||
		h.Dimensions != 4 || h.Table != "items" || h.Column != "Emb" || !h.Valid {
		t.Errorf("resolved %+v", h)
	}
	if got, want := h.QuotedIndex(), `"Odd Schema"."hnsw idx"`; got != want {
		t.Errorf("QuotedIndex = %s, want %s", got, want)
	}
	// The quoted names work in a real statement.
	if _, err := conn.Exec(ctx, "ANALYZE "+h.QuotedTable()+" ("+h.QuotedColumn()+")"); err != nil {
		t.Errorf("quoted identifiers rejected by the server: %v", err)
	}
	iv, err := catalog.Resolve(ctx, conn, "Odd Schema", "ivf")
	if err != nil || iv.Lists != 3 || iv.Method != "ivfflat" {
		t.Errorf("ivf = %+v, %v", iv, err)
	}
	if _, err := catalog.Resolve(ctx, conn, "Odd Schema", "plain"); !errors.Is(err, catalog.ErrNotVector) {
		t.Errorf("plain btree: err = %v, want ErrNotVector", err)
	}
	for _, evil := range []string{"x'; DROP TABLE items; --", "$(rm -rf /)", "hnsw idx\"; DROP"} {
		if _, err := catalog.Resolve(ctx, conn, "Odd Schema", evil); !errors.Is(err, catalog.ErrNotFound) {
			t.Errorf("%q: err = %v, want ErrNotFound", evil, err)
		}
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM "Odd Schema".items`).Scan(&n); err != nil || n != 50 {
		t.Errorf("table damaged: %d rows, %v", n, err)
	}
}

// TestLayouts: expression, partial and partitioned indexes are described from the catalog,
// and their expression and predicate work in a query as they are.
func TestLayouts(t *testing.T) {
	ctx := context.Background()
	conn := connect(t)
	for _, q := range []string{
		`CREATE SCHEMA "Part S"`,
		`CREATE TABLE items (id int, cat int, e vector(8), b bit(16))`,
		`INSERT INTO items SELECT g, g % 3, ARRAY[g, 1, 2, 3, 4, 5, 6, 7]::vector, (g % 65536)::bit(16) FROM generate_series(1, 30) g`,
		`CREATE INDEX items_half ON items USING hnsw ((e::halfvec(8)) halfvec_l2_ops)`,
		`CREATE INDEX items_cat1 ON items USING hnsw (e vector_cosine_ops) WHERE cat = 1`,
		`CREATE INDEX items_bits ON items USING ivfflat (b bit_hamming_ops) WITH (lists = 2)`,
		`CREATE TABLE docs (id int, e vector(4)) PARTITION BY RANGE (id)`,
		`CREATE TABLE "Part S".docs_1 PARTITION OF docs FOR VALUES FROM (0) TO (100)`,
		`CREATE TABLE docs_2 PARTITION OF docs FOR VALUES FROM (100) TO (200)`,
		`CREATE INDEX docs_hnsw ON docs USING hnsw (e vector_l2_ops)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	all, err := catalog.List(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]catalog.Index{}
	for _, ix := range all {
		got[ix.Name] = ix
	}
	if len(all) != 6 {
		t.Fatalf("List found %d indexes, want 6: %#v", len(all), all)
	}

	half := got["items_half"]
	if half.Column != "" || half.Expression == "" || half.KeyType != "halfvec(8)" || half.Dimensions != 8 || half.Predicate != "" {
		t.Errorf("expression index: %#v", half)
	}
	cat1 := got["items_cat1"]
	if cat1.Column != "e" || cat1.Key() != `"e"` || cat1.Predicate == "" || cat1.Dimensions != 8 || cat1.KeyType != "vector(8)" {
		t.Errorf("partial index: %#v", cat1)
	}
	if b := got["items_bits"]; b.KeyType != "bit(16)" || b.Dimensions != 16 || b.Opclass != "bit_hamming_ops" {
		t.Errorf("bit index: %#v", b)
	}
	// Key and Where are usable as they are: the expression orders through the index, and the
	// predicate selects the partial index's rows.
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM items WHERE `+cat1.Where()).Scan(&n); err != nil || n != 10 {
		t.Errorf("rows matching %s: %d, %v; want 10", cat1.Where(), n, err)
	}
	var first int
	if err := conn.QueryRow(ctx, `SELECT id FROM items ORDER BY `+half.Key()+` <-> '[3,1,2,3,4,5,6,7]' LIMIT 1`).Scan(&first); err != nil || first != 3 {
		t.Errorf("nearest by %s: %d, %v; want 3", half.Key(), first, err)
	}

	parent := got["docs_hnsw"]
	if !parent.Partitioned || parent.ParentIndex != "" || parent.Table != "docs" {
		t.Errorf("partitioned parent index: %#v", parent)
	}
	var parts int
	for _, ix := range all {
		if ix.ParentIndex == "" {
			continue
		}
		parts++
		if ix.Partitioned || ix.ParentIndex != "docs_hnsw" || ix.ParentTable != "docs" || ix.ParentSchema != "public" {
			t.Errorf("partition index %s: %#v", ix, ix)
		}
		if ix.Table == "docs_1" && ix.Schema != "Part S" {
			t.Errorf("partition index %s lives in %q, want the partition's schema", ix, ix.Schema)
		}
	}
	if parts != 2 {
		t.Errorf("%d partition indexes with a parent, want 2", parts)
	}
	for _, ix := range []catalog.Index{half, cat1, got["items_bits"]} {
		if ix.Partitioned || ix.ParentIndex != "" {
			t.Errorf("%s: not a partition's index: %#v", ix, ix)
		}
	}
	r, err := catalog.Resolve(ctx, conn, "public", "docs_hnsw")
	if err != nil || !r.Partitioned {
		t.Errorf("resolve parent: %+v, %v", r, err)
	}
}

// The ordering operator comes from the catalog, schema-qualified: a search_path that puts an
// operator of the same name first does not change what a query built with it orders by.
func TestOrderOperatorIsQualified(t *testing.T) {
	ctx := context.Background()
	conn := connect(t)
	for _, q := range []string{
		`CREATE TABLE items (id int PRIMARY KEY, v vector(2), b bit(4))`,
		`INSERT INTO items VALUES (1, '[1,0]', B'0001'), (2, '[0,1]', B'0011'), (3, '[5,5]', B'1111')`,
		`CREATE INDEX items_l2 ON items USING hnsw (v vector_l2_ops)`,
		`CREATE INDEX items_cos ON items USING hnsw (v vector_cosine_ops)`,
		`CREATE INDEX items_ham ON items USING hnsw (b bit_hamming_ops)`,
		`CREATE SCHEMA shadow`,
		`CREATE FUNCTION shadow.nearest_is_id3(a vector, b vector) RETURNS float8 LANGUAGE sql AS $$ SELECT CASE WHEN a = '[5,5]' THEN 0 ELSE 1 END::float8 $$`,
		`CREATE OPERATOR shadow.<-> (LEFTARG = vector, RIGHTARG = vector, FUNCTION = shadow.nearest_is_id3)`,
	} {
		if _, err := conn.Exec(ctx, q); err != nil {
			t.Fatalf("%s: %v", q, err)
		}
	}
	var schema string
	if err := conn.QueryRow(ctx, `SELECT extnamespace::regnamespace::text FROM pg_extension WHERE extname = 'vector'`).Scan(&schema); err != nil {
		t.Fatal(err)
	}
	for name, want := range map[string]string{"items_l2": "<->", "items_cos": "<=>", "items_ham": "<~>"} {
		ix, err := catalog.Resolve(ctx, conn, "public", name)
		if err != nil {
			t.Fatal(err)
		}
		op, err := ix.OrderOperator()
		wantOp := "OPERATOR(" + schema + "." + want + ")" // regnamespace's text is quoted where needed
		if err != nil || op != wantOp {
			t.Errorf("%s: operator %q, %v; want %s", name, op, err, wantOp)
		}
	}
	ix, err := catalog.Resolve(ctx, conn, "public", "items_l2")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `SET search_path = shadow, public`); err != nil {
		t.Fatal(err)
	}
	nearest := func(op string) int {
		var id int
		if err := conn.QueryRow(ctx, `SELECT id FROM public.items ORDER BY v `+op+` '[1,0.1]' LIMIT 1`).Scan(&id); err != nil {
			t.Fatalf("order by %s: %v", op, err)
		}
		return id
	}
	if got := nearest("<->"); got != 3 {
		t.Fatalf("the shadowing operator was not used by the bare name (nearest %d): the test shows nothing", got)
	}
	if got := nearest(ix.Operator); got != 1 {
		t.Errorf("ordered by %s: nearest %d, want 1 (pgvector's L2 distance)", ix.Operator, got)
	}
	none := catalog.Index{Schema: "s", Name: "i", Opclass: "x_ops"}
	if _, err := none.OrderOperator(); err == nil {
		t.Error("an index without an ordering operator gave no error")
	}
}
