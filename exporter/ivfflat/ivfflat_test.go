package ivfflat_test

import (
	"context"
	"fmt"
	"math"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter/ivfflat"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

type bundle struct {
	ctx  context.Context
	pool *pgxpool.Pool
}

func setup(t *testing.T) *bundle {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	t.Cleanup(cancel)
	pg := testenv.SharedPostgres(t)
	pool, err := pgxpool.New(ctx, pg.CreateDatabase(t))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	return &bundle{ctx: ctx, pool: pool}
}

func (b *bundle) exec(t *testing.T, sql string, args ...any) {
	t.Helper()
	if _, err := b.pool.Exec(b.ctx, sql, args...); err != nil {
		t.Fatalf("%s: %v", sql, err)
	}
}

// build creates items(id, v vector(dim)) with rows random vectors and an IVFFlat index.
func (b *bundle) build(t *testing.T, rows, dim int, opclass string, lists int) catalog.Index {
	t.Helper()
	b.exec(t, fmt.Sprintf(`CREATE TABLE items (id serial PRIMARY KEY, v vector(%d))`, dim))
	b.exec(t, `SELECT setseed(0.17)`)
	b.exec(t, fmt.Sprintf(`INSERT INTO items (v) SELECT (SELECT array_agg(random() - 0.5) FROM generate_series(1, %d) WHERE i > 0)::vector
		FROM generate_series(1, %d) AS i`, dim, rows))
	b.exec(t, fmt.Sprintf(`CREATE INDEX items_v_idx ON items USING ivfflat (v %s) WITH (lists = %d)`, opclass, lists))
	ix, err := catalog.Resolve(b.ctx, b.pool, "public", "items_v_idx")
	if err != nil {
		t.Fatal(err)
	}
	return ix
}

func (b *bundle) analyze(t *testing.T, ix catalog.Index) *ivfflat.Report {
	t.Helper()
	r := pagescan.NewSQLReader(b.pool, ix.OID, 8, pagescan.RawPageFunc)
	rep, err := ivfflat.Analyze(b.ctx, r, ivfflat.Options{Distance: ivfflat.DistanceKind(ix.Opclass), QualitySample: 500})
	if err != nil {
		t.Fatalf("analyze: %v", err)
	}
	return rep
}

func vectorText(v []float32) string {
	parts := make([]string, len(v))
	for i, x := range v {
		parts[i] = fmt.Sprint(x)
	}
	return "[" + strings.Join(parts, ",") + "]"
}

// sqlListSizes assigns every row to its nearest center in SQL, with pgvector's own distance
// operator, and counts the rows per center.
func (b *bundle) sqlListSizes(t *testing.T, centers [][]float32, op string) []int64 {
	t.Helper()
	b.exec(t, `DROP TABLE IF EXISTS centers`)
	b.exec(t, fmt.Sprintf(`CREATE TABLE centers (i int, c vector(%d))`, len(centers[0])))
	for i, c := range centers {
		b.exec(t, `INSERT INTO centers VALUES ($1, $2::text::vector)`, i, vectorText(c))
	}
	rows, err := b.pool.Query(b.ctx, `SELECT n, count(*) FROM (
		SELECT (SELECT i FROM centers ORDER BY c `+op+` items.v, i LIMIT 1) AS n FROM items) s GROUP BY n`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	out := make([]int64, len(centers))
	for rows.Next() {
		var n int
		var c int64
		if err := rows.Scan(&n, &c); err != nil {
			t.Fatal(err)
		}
		out[n] = c
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestListsMatchNearestCenter(t *testing.T) {
	for _, tc := range []struct{ opclass, op string }{
		{"vector_l2_ops", "<->"},
		{"vector_cosine_ops", "<=>"},
	} {
		t.Run(tc.opclass, func(t *testing.T) {
			b := setup(t)
			const rows, lists = 4000, 20
			ix := b.build(t, rows, 12, tc.opclass, lists)
			rep := b.analyze(t, ix)
			if len(rep.Faults) != 0 {
				t.Errorf("faults on a healthy index: %v", rep.Faults)
			}
			if rep.Lists != lists || len(rep.ListSizes) != lists || len(rep.Centers) != lists || rep.Dimensions != 12 {
				t.Fatalf("lists %d, sizes %d, centers %d, dims %d", rep.Lists, len(rep.ListSizes), len(rep.Centers), rep.Dimensions)
			}
			if want := uint32(ix.SizeBytes / pagescan.PageSize); rep.Pages != want {
				t.Errorf("pages %d, relation has %d", rep.Pages, want)
			}
			if rep.Entries != rows {
				t.Errorf("entries %d, rows %d", rep.Entries, rows)
			}
			want := b.sqlListSizes(t, rep.Centers, tc.op)
			for i := range want {
				if rep.ListSizes[i] != want[i] {
					t.Errorf("list %d: %d entries, %d rows nearest to its center", i, rep.ListSizes[i], want[i])
				}
			}
			mean := float64(rows) / lists
			var ss float64
			for _, s := range want {
				ss += (float64(s) - mean) * (float64(s) - mean)
			}
			if cv := math.Sqrt(ss/lists) / mean; math.Abs(cv-rep.ListSizeCV) > 1e-9 {
				t.Errorf("CV %v, from the SQL sizes %v", rep.ListSizeCV, cv)
			}
			if r := float64(slices.Max(want)) / mean; math.Abs(r-rep.LargestListRatio) > 1e-9 {
				t.Errorf("largest list ratio %v, from the SQL sizes %v", rep.LargestListRatio, r)
			}
			if !(rep.CentroidQuality > 0 && rep.CentroidQuality < 1) {
				t.Errorf("centroid quality %v, want in (0,1) for centers trained on the data", rep.CentroidQuality)
			}
		})
	}
}

func TestSkewedInsertsRaiseCV(t *testing.T) {
	b := setup(t)
	ix := b.build(t, 3000, 8, "vector_l2_ops", 15)
	before := b.analyze(t, ix)
	// New rows all close to one point: they land in one or two lists.
	b.exec(t, `INSERT INTO items (v) SELECT (SELECT array_agg(0.4 + random() * 0.02) FROM generate_series(1, 8) WHERE i > 0)::vector
		FROM generate_series(1, 3000) AS i`)
	after := b.analyze(t, ix)
	t.Logf("CV %.3f -> %.3f, quality %.3f -> %.3f", before.ListSizeCV, after.ListSizeCV, before.CentroidQuality, after.CentroidQuality)
	if after.Entries != 6000 {
		t.Errorf("entries %d, want 6000", after.Entries)
	}
	if after.ListSizeCV < 2*before.ListSizeCV || after.ListSizeCV < 1 {
		t.Errorf("CV %v after skewed inserts, %v before: want a clear rise", after.ListSizeCV, before.ListSizeCV)
	}
	// 3000 more rows in one or two of 15 lists: the largest list holds at least 1500 of the
	// 6000 entries, 3.75 times the mean of 400.
	t.Logf("largest list ratio %.2f -> %.2f", before.LargestListRatio, after.LargestListRatio)
	if before.LargestListRatio < 1 || before.LargestListRatio > 2.5 || after.LargestListRatio < 3.75 {
		t.Errorf("largest list ratio %v before and %v after skewed inserts, want in [1, 2.5] and >= 3.75", before.LargestListRatio, after.LargestListRatio)
	}
	b.exec(t, `DELETE FROM items WHERE id > 3000`)
	b.exec(t, `VACUUM items`)
	vac := b.analyze(t, ix)
	if vac.Entries != 3000 || math.Abs(vac.ListSizeCV-before.ListSizeCV) > 1e-9 {
		t.Errorf("after deleting the skewed rows and VACUUM: entries %d, CV %v, want 3000 and %v", vac.Entries, vac.ListSizeCV, before.ListSizeCV)
	}
}

func TestEmptyLists(t *testing.T) {
	b := setup(t)
	// More lists than distinct points leaves lists without entries.
	b.exec(t, `CREATE TABLE items (id serial PRIMARY KEY, v vector(3))`)
	b.exec(t, `INSERT INTO items (v) SELECT ('[' || (i % 4) || ',0,0]')::vector FROM generate_series(1, 400) AS i`)
	b.exec(t, `CREATE INDEX items_v_idx ON items USING ivfflat (v vector_l2_ops) WITH (lists = 10)`)
	ix, err := catalog.Resolve(b.ctx, b.pool, "public", "items_v_idx")
	if err != nil {
		t.Fatal(err)
	}
	rep := b.analyze(t, ix)
	var empty int
	for _, s := range rep.ListSizes {
		if s == 0 {
			empty++
		}
	}
	if rep.Entries != 400 || empty < 6 || rep.EmptyLists != empty {
		t.Errorf("entries %d, empty lists %d (counted %d), sizes %v", rep.Entries, rep.EmptyLists, empty, rep.ListSizes)
	}
}

func TestDistance(t *testing.T) {
	a, b := []float32{1, 2, 2}, []float32{2, 0, 0}
	for _, tc := range []struct {
		kind string
		want float64
	}{
		{"l2", 3}, {"l1", 5}, {"ip", -2}, {"cosine", 1 - 2.0/(3*2)},
	} {
		if got := ivfflat.Distance(tc.kind, a, b); math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("%s: %v, want %v", tc.kind, got, tc.want)
		}
	}
	centers := [][]float32{{0, 0, 0}, {1, 2, 3}, {1, 2, 2.5}}
	if i, d := ivfflat.NearestCenter(centers, "l2", a); i != 2 || math.Abs(d-0.5) > 1e-12 {
		t.Errorf("nearest %d at %v, want 2 at 0.5", i, d)
	}
	if i, _ := ivfflat.NearestCenter(nil, "l2", a); i != -1 {
		t.Errorf("nearest of no centers: %d", i)
	}
}

func TestHalfvec(t *testing.T) {
	b := setup(t)
	b.exec(t, `CREATE TABLE items (id serial PRIMARY KEY, v halfvec(6))`)
	b.exec(t, `SELECT setseed(0.3)`)
	b.exec(t, `INSERT INTO items (v) SELECT (SELECT array_agg(random()) FROM generate_series(1, 6) WHERE i > 0)::halfvec FROM generate_series(1, 1500) AS i`)
	b.exec(t, `CREATE INDEX items_v_idx ON items USING ivfflat (v halfvec_l2_ops) WITH (lists = 8)`)
	ix, err := catalog.Resolve(b.ctx, b.pool, "public", "items_v_idx")
	if err != nil {
		t.Fatal(err)
	}
	rep := b.analyze(t, ix)
	if rep.Entries != 1500 || len(rep.Centers) != 8 || len(rep.Centers[0]) != 6 || len(rep.Faults) != 0 {
		t.Fatalf("entries %d, centers %d, faults %v", rep.Entries, len(rep.Centers), rep.Faults)
	}
	// The decoded centers are the index's: every row's nearest center by halfvec's own <->
	// gives the same list sizes.
	var sizes []int64
	for _, c := range rep.Centers {
		var n int64
		if err := b.pool.QueryRow(b.ctx, `SELECT count(*) FROM items WHERE `+nearestIs(rep.Centers, c), vectorText(c)).Scan(&n); err != nil {
			t.Fatal(err)
		}
		sizes = append(sizes, n)
	}
	for i := range sizes {
		if sizes[i] != rep.ListSizes[i] {
			t.Errorf("list %d: %d entries, %d rows nearest to its center", i, rep.ListSizes[i], sizes[i])
		}
	}
	if !(rep.CentroidQuality > 0 && rep.CentroidQuality < 1) {
		t.Errorf("centroid quality %v", rep.CentroidQuality)
	}
}

// nearestIs is a WHERE clause true for rows whose nearest center (among centers) is $1.
func nearestIs(centers [][]float32, _ []float32) string {
	parts := make([]string, len(centers))
	for i, c := range centers {
		parts[i] = "'" + vectorText(c) + "'::halfvec"
	}
	return `v <-> $1::text::halfvec <= (SELECT min(v <-> c) FROM unnest(ARRAY[` + strings.Join(parts, ",") + `]) AS c)`
}

func bitText(v []float32) string {
	b := make([]byte, len(v))
	for i, x := range v {
		b[i] = '0'
		if x != 0 {
			b[i] = '1'
		}
	}
	return string(b)
}

// TestBit reads an IVFFlat index over bit (bit_hamming_ops): its centers are bits, every row
// is on the list of its nearest center by pgvector's own <~> (first center on ties, as the
// build assigns them), and the decoded entries are the table's values.
func TestBit(t *testing.T) {
	for _, dim := range []int{64, 1200} { // 1-byte and 4-byte varlena headers on the entries
		t.Run(fmt.Sprint(dim), func(t *testing.T) {
			b := setup(t)
			b.exec(t, fmt.Sprintf(`CREATE TABLE items (id serial PRIMARY KEY, v bit(%d))`, dim))
			b.exec(t, `SELECT setseed(0.5)`)
			// Rows around four random bit patterns, so the lists mean something.
			b.exec(t, fmt.Sprintf(`CREATE TABLE seeds AS SELECT s, (SELECT string_agg(CASE WHEN random() < 0.5 THEN '1' ELSE '0' END, '')
				FROM generate_series(1, %d) WHERE s > 0) AS p FROM generate_series(1, 4) s`, dim))
			b.exec(t, fmt.Sprintf(`INSERT INTO items (v) SELECT (SELECT string_agg(CASE WHEN random() < 0.1 THEN 1 - substr(p, d, 1)::int
				ELSE substr(p, d, 1)::int END::text, '' ORDER BY d) FROM generate_series(1, %d) d WHERE i > 0)::bit(%d)
				FROM generate_series(1, 1200) i JOIN seeds ON s = 1 + i %% 4`, dim, dim))
			b.exec(t, `CREATE INDEX items_v_idx ON items USING ivfflat (v bit_hamming_ops) WITH (lists = 6)`)
			ix, err := catalog.Resolve(b.ctx, b.pool, "public", "items_v_idx")
			if err != nil {
				t.Fatal(err)
			}
			if ivfflat.DistanceKind(ix.Opclass) != "hamming" {
				t.Fatalf("distance of %s: %s", ix.Opclass, ivfflat.DistanceKind(ix.Opclass))
			}
			rep := b.analyze(t, ix)
			if rep.Dimensions != dim || rep.Entries != 1200 || len(rep.Centers) != 6 || len(rep.Faults) != 0 {
				t.Fatalf("dimensions %d, entries %d, centers %d, faults %v", rep.Dimensions, rep.Entries, len(rep.Centers), rep.Faults)
			}
			b.exec(t, fmt.Sprintf(`CREATE TABLE centers (i int, c bit(%d))`, dim))
			for i, c := range rep.Centers {
				if len(c) != dim {
					t.Fatalf("center %d has %d bits", i, len(c))
				}
				for _, x := range c {
					if x != 0 && x != 1 {
						t.Fatalf("center %d holds %v, not a bit", i, x)
					}
				}
				b.exec(t, `INSERT INTO centers VALUES ($1, $2::text::bit varying::bit(`+fmt.Sprint(dim)+`))`, i, bitText(c))
			}
			rows, err := b.pool.Query(b.ctx, `SELECT n, count(*) FROM (
				SELECT (SELECT i FROM centers ORDER BY c <~> items.v, i LIMIT 1) AS n FROM items) s GROUP BY n`)
			if err != nil {
				t.Fatal(err)
			}
			want := make([]int64, len(rep.Centers))
			for rows.Next() {
				var n int
				var c int64
				if err := rows.Scan(&n, &c); err != nil {
					t.Fatal(err)
				}
				want[n] = c
			}
			if err := rows.Err(); err != nil {
				t.Fatal(err)
			}
			for i := range want {
				if want[i] != rep.ListSizes[i] {
					t.Errorf("list %d: %d entries, %d rows nearest to its center", i, rep.ListSizes[i], want[i])
				}
			}
			// Four clusters in six lists: members lie much nearer their own center than any other.
			if !(rep.CentroidQuality > 0 && rep.CentroidQuality < 0.8) {
				t.Errorf("centroid quality %v, want in (0, 0.8)", rep.CentroidQuality)
			}
		})
	}
}

// TestBitDistance checks hamming and jaccard on bits given as 0 and 1 against pgvector's.
func TestBitDistance(t *testing.T) {
	b := setup(t)
	a, c := []float32{1, 1, 0, 0, 1, 0}, []float32{1, 0, 1, 0, 1, 0}
	zero := []float32{0, 0, 0, 0, 0, 0}
	for _, tc := range []struct {
		kind, op string
		x, y     []float32
	}{
		{"hamming", "<~>", a, c}, {"jaccard", "<%>", a, c}, {"jaccard", "<%>", zero, zero}, {"jaccard", "<%>", a, zero},
	} {
		var want float64
		if err := b.pool.QueryRow(b.ctx, `SELECT $1::text::bit(6) `+tc.op+` $2::text::bit(6)`, bitText(tc.x), bitText(tc.y)).Scan(&want); err != nil {
			t.Fatal(err)
		}
		if got := ivfflat.Distance(tc.kind, tc.x, tc.y); math.Abs(got-want) > 1e-12 {
			t.Errorf("%s(%s, %s) = %v, pgvector says %v", tc.kind, bitText(tc.x), bitText(tc.y), got, want)
		}
	}
}
