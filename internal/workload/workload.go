// Package workload generates clustered vector datasets and drives a query and write workload
// against them, so end-to-end tests and the demo exercise pgvector indexes the way an
// application would: points gathered around a few centres, nearest-neighbour queries near those
// centres, and inserts, updates and deletes in between.
package workload

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// Dataset describes a clustered dataset: Clusters centres drawn uniformly in [-1,1]^Dim and
// Rows points around them with Gaussian noise of standard deviation Spread.
type Dataset struct {
	// Table is the table the rows live in; it is created by Load. Default "items".
	Table string
	// Dim is the vector dimension. Default 16.
	Dim int
	// Clusters is the number of centres. Default 8.
	Clusters int
	// Rows is how many rows Load inserts. Default 2000.
	Rows int
	// Spread is the noise around a centre. Default 0.05.
	Spread float64
	// Seed makes the dataset reproducible.
	Seed uint64
}

// Generator draws vectors of a dataset. It is not safe for concurrent use.
type Generator struct {
	ds      Dataset
	rng     *rand.Rand
	centers [][]float32
}

// NewGenerator fills in ds's defaults and draws its centres.
func NewGenerator(ds Dataset) *Generator {
	if ds.Table == "" {
		ds.Table = "items"
	}
	if ds.Dim <= 0 {
		ds.Dim = 16
	}
	if ds.Clusters <= 0 {
		ds.Clusters = 8
	}
	if ds.Rows <= 0 {
		ds.Rows = 2000
	}
	if ds.Spread <= 0 {
		ds.Spread = 0.05
	}
	g := &Generator{ds: ds, rng: rand.New(rand.NewPCG(ds.Seed, ds.Seed^0x9e3779b97f4a7c15))}
	for range ds.Clusters {
		g.centers = append(g.centers, g.uniform())
	}
	return g
}

// Dataset returns the dataset with its defaults filled in.
func (g *Generator) Dataset() Dataset { return g.ds }

// Centers returns the cluster centres.
func (g *Generator) Centers() [][]float32 { return g.centers }

func (g *Generator) uniform() []float32 {
	v := make([]float32, g.ds.Dim)
	for i := range v {
		v[i] = float32(g.rng.Float64()*2 - 1)
	}
	return v
}

// Near returns a point around centre c with the dataset's spread.
func (g *Generator) Near(c []float32) []float32 {
	v := make([]float32, len(c))
	for i := range v {
		v[i] = c[i] + float32(g.rng.NormFloat64()*g.ds.Spread)
	}
	return v
}

// Point returns a point around a random centre and the centre's number.
func (g *Generator) Point() ([]float32, int) {
	k := g.rng.IntN(len(g.centers))
	return g.Near(g.centers[k]), k
}

// Drifted returns a point around a centre that was not part of the dataset when it was
// built, far from every original centre: the kind of data that makes IVFFlat lists stale.
// The same shift gives the same new centre, so drifted inserts pile into one region.
func (g *Generator) Drifted(shift int) []float32 {
	c := make([]float32, g.ds.Dim)
	for i := range c {
		// Outside [-1,1]^Dim, so no original centre is close.
		c[i] = 3 + float32((shift+i)%3)
	}
	return g.Near(c)
}

// Literal formats v as a pgvector text literal, e.g. "[1,2,3]".
func Literal(v []float32) string {
	var b strings.Builder
	b.Grow(len(v) * 10)
	b.WriteByte('[')
	for i, x := range v {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(strconv.FormatFloat(float64(x), 'g', 6, 32))
	}
	b.WriteByte(']')
	return b.String()
}

// table returns the dataset's table as a quoted identifier.
func (g *Generator) table() string { return pgx.Identifier{g.ds.Table}.Sanitize() }

// Progress is called during long operations with work done and total.
type Progress func(done, total int)

// Load creates the dataset's table (dropping an older one) and inserts its rows in batches,
// reporting progress after each batch. Columns: id bigserial, cluster int, embedding vector(Dim).
func (g *Generator) Load(ctx context.Context, pool *pgxpool.Pool, progress Progress) error {
	stmts := []string{
		"DROP TABLE IF EXISTS " + g.table(),
		fmt.Sprintf("CREATE TABLE %s (id bigserial PRIMARY KEY, cluster int NOT NULL, embedding vector(%d) NOT NULL)", g.table(), g.ds.Dim),
		// Autovacuum would repair the damage the tests inject before vectorheal sees it.
		"ALTER TABLE " + g.table() + " SET (autovacuum_enabled = false)",
	}
	for _, s := range stmts {
		if _, err := pool.Exec(ctx, s); err != nil {
			return fmt.Errorf("prepare %s: %w", g.ds.Table, err)
		}
	}
	return g.insert(ctx, pool, g.ds.Rows, func() ([]float32, int) { return g.Point() }, progress)
}

// InsertDrifted inserts n drifted points (see Drifted), labelled with cluster -1.
func (g *Generator) InsertDrifted(ctx context.Context, pool *pgxpool.Pool, n int, progress Progress) error {
	return g.insert(ctx, pool, n, func() ([]float32, int) { return g.Drifted(0), -1 }, progress)
}

const batchRows = 500

func (g *Generator) insert(ctx context.Context, pool *pgxpool.Pool, n int, next func() ([]float32, int), progress Progress) error {
	q := "INSERT INTO " + g.table() + " (cluster, embedding) SELECT c, e::vector FROM unnest($1::int[], $2::text[]) AS t(c, e)"
	for done := 0; done < n; {
		size := min(batchRows, n-done)
		clusters := make([]int32, size)
		vecs := make([]string, size)
		for i := range size {
			v, k := next()
			clusters[i], vecs[i] = int32(k), Literal(v)
		}
		if _, err := pool.Exec(ctx, q, clusters, vecs); err != nil {
			return fmt.Errorf("insert into %s: %w", g.ds.Table, err)
		}
		done += size
		if progress != nil {
			progress(done, n)
		}
	}
	return nil
}

// CreateHNSW builds an HNSW index called name on the table (L2 distance).
func (g *Generator) CreateHNSW(ctx context.Context, pool *pgxpool.Pool, name string, m, efConstruction int) error {
	q := fmt.Sprintf("CREATE INDEX %s ON %s USING hnsw (embedding vector_l2_ops) WITH (m = %d, ef_construction = %d)",
		pgx.Identifier{name}.Sanitize(), g.table(), m, efConstruction)
	if _, err := pool.Exec(ctx, q); err != nil {
		return fmt.Errorf("create hnsw index %s: %w", name, err)
	}
	return nil
}

// CreateIVFFlat builds an IVFFlat index called name on the table (L2 distance).
func (g *Generator) CreateIVFFlat(ctx context.Context, pool *pgxpool.Pool, name string, lists int) error {
	q := fmt.Sprintf("CREATE INDEX %s ON %s USING ivfflat (embedding vector_l2_ops) WITH (lists = %d)",
		pgx.Identifier{name}.Sanitize(), g.table(), lists)
	if _, err := pool.Exec(ctx, q); err != nil {
		return fmt.Errorf("create ivfflat index %s: %w", name, err)
	}
	return nil
}

// DeleteFraction deletes about fraction of the rows (every row whose id falls in the chosen
// share, so the deleted rows are spread over every cluster) and returns how many went.
func (g *Generator) DeleteFraction(ctx context.Context, pool *pgxpool.Pool, fraction float64) (int64, error) {
	if fraction <= 0 || fraction > 1 {
		return 0, fmt.Errorf("delete fraction %v: must be in (0,1]", fraction)
	}
	mod := int64(1000)
	keep := int64(math.Round((1 - fraction) * float64(mod)))
	tag, err := pool.Exec(ctx, "DELETE FROM "+g.table()+" WHERE id % $1 >= $2", mod, keep)
	if err != nil {
		return 0, fmt.Errorf("delete from %s: %w", g.ds.Table, err)
	}
	return tag.RowsAffected(), nil
}

// UpdateFraction moves about fraction of the rows to new points of their cluster (an update
// in PostgreSQL is a delete plus an insert, so the index gains dead tuples too).
func (g *Generator) UpdateFraction(ctx context.Context, pool *pgxpool.Pool, fraction float64) (int64, error) {
	rows, err := pool.Query(ctx, "SELECT id, cluster FROM "+g.table()+" WHERE random() < $1 AND cluster >= 0", fraction)
	if err != nil {
		return 0, fmt.Errorf("select rows to update: %w", err)
	}
	var ids []int64
	var clusters []int32
	for rows.Next() {
		var id int64
		var c int32
		if err := rows.Scan(&id, &c); err != nil {
			rows.Close()
			return 0, err
		}
		ids, clusters = append(ids, id), append(clusters, c)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	q := "UPDATE " + g.table() + " AS t SET embedding = u.e::vector FROM unnest($1::bigint[], $2::text[]) AS u(id, e) WHERE t.id = u.id"
	var n int64
	for start := 0; start < len(ids); start += batchRows {
		end := min(start+batchRows, len(ids))
		vecs := make([]string, 0, end-start)
		for _, c := range clusters[start:end] {
			vecs = append(vecs, Literal(g.Near(g.centers[int(c)%len(g.centers)])))
		}
		tag, err := pool.Exec(ctx, q, ids[start:end], vecs)
		if err != nil {
			return n, fmt.Errorf("update %s: %w", g.ds.Table, err)
		}
		n += tag.RowsAffected()
	}
	return n, nil
}
