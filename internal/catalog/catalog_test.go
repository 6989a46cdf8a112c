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

func TestListAndResolve(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, pg.CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
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
