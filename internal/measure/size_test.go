package measure_test

import (
	"context"
	"errors"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/measure"
)

func TestSizes(t *testing.T) {
	ctx := context.Background()
	pool := testPool(t, `CREATE TABLE t (id int PRIMARY KEY, v vector(3));
		INSERT INTO t SELECT g, '[1,2,3]' FROM generate_series(1, 2000) g;
		CREATE INDEX t_v_idx ON t USING hnsw (v vector_l2_ops);
		CREATE TABLE empty (id int)`)
	var table, index, empty uint32
	if err := pool.QueryRow(ctx, `SELECT 't'::regclass::oid, 't_v_idx'::regclass::oid, 'empty'::regclass::oid`).Scan(&table, &index, &empty); err != nil {
		t.Fatal(err)
	}
	const gone = 4_000_000_000 // no relation has this OID in a new database
	sizes, err := measure.Sizes(ctx, pool, []uint32{table, index, empty, gone})
	if err != nil {
		t.Fatal(err)
	}
	for _, oid := range []uint32{table, index} {
		s := sizes[oid]
		if s.Blocks < 2 || s.Bytes != s.Blocks*8192 {
			t.Errorf("size of %d: %+v, want at least 2 blocks of 8192 bytes", oid, s)
		}
	}
	if s, ok := sizes[empty]; !ok || s != (measure.Size{}) {
		t.Errorf("size of an empty table: %+v, %v; want 0 bytes", s, ok)
	}
	if _, ok := sizes[gone]; ok || len(sizes) != 3 {
		t.Errorf("sizes %v: want the three relations that exist", sizes)
	}
	if s, err := measure.SizeOf(ctx, pool, index); err != nil || s != sizes[index] {
		t.Errorf("SizeOf(index) = %+v, %v; want %+v", s, err, sizes[index])
	}
	if _, err := measure.SizeOf(ctx, pool, gone); !errors.Is(err, pgx.ErrNoRows) {
		t.Errorf("SizeOf(a dropped relation): %v, want pgx.ErrNoRows", err)
	}
}
