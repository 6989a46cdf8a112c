package strategy_test

import (
	"context"
	"encoding/binary"
	"fmt"
	"math"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
)

// sqlMeasurer computes the figures the tests need with SQL of its own, independent of the
// strategies it checks: recall as exact top-k against index top-k, dead tuples from the
// statistics, IVFFlat list sizes by walking the list pages, index use from EXPLAIN. Recall and
// index use are counted and read by the measure package, as the exporter counts them.
type sqlMeasurer struct {
	k       int // recall@k
	queries int // probe vectors, taken from evenly spaced rows
}

var testFigures = []string{
	"pgvector_recall_ratio", "pgvector_probe_latency_seconds", "pgvector_table_dead_tuples",
	"pgvector_ivfflat_list_size_cv", "pgvector_probe_index_used",
}

func (m sqlMeasurer) Figures() []string { return testFigures }

func (m sqlMeasurer) Measure(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, figure string) (float64, error) {
	switch figure {
	case "pgvector_recall_ratio":
		r, _, err := m.recall(ctx, pool, ix)
		return r, err
	case "pgvector_probe_latency_seconds":
		_, l, err := m.recall(ctx, pool, ix)
		return l.Seconds(), err
	case "pgvector_table_dead_tuples":
		var n int64
		err := pool.QueryRow(ctx, `SELECT n_dead_tup FROM pg_stat_user_tables WHERE relid = $1`, ix.TableOID).Scan(&n)
		return float64(n), err
	case "pgvector_ivfflat_list_size_cv":
		sizes, err := ivfListSizes(ctx, pool, ix)
		if err != nil {
			return 0, err
		}
		return cv(sizes), nil
	case "pgvector_probe_index_used":
		return indexUsed(ctx, pool, ix)
	}
	return 0, fmt.Errorf("unknown figure %q", figure)
}

func distanceOp(opclass string) string {
	switch {
	case strings.Contains(opclass, "cosine"):
		return "<=>"
	case strings.Contains(opclass, "ip"):
		return "<#>"
	case strings.Contains(opclass, "l1"):
		return "<+>"
	}
	return "<->"
}

// probeVectors returns m.queries random vectors in [0,1]^dim as text, the same on every call:
// out-of-sample queries, as an application sends them.
func (m sqlMeasurer) probeVectors(ctx context.Context, q *pgxpool.Conn, ix catalog.Index) ([]string, error) {
	tx, err := q.Begin(ctx)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, "SELECT setseed(0.42)"); err != nil {
		return nil, err
	}
	rows, err := tx.Query(ctx, `SELECT (SELECT array_agg(random()::real) FROM generate_series(1, $1) WHERE g > 0)::vector::text
		FROM generate_series(1, $2) g`, ix.Dimensions, m.queries)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// recall returns the mean recall@k of the index over the probe vectors and the mean latency
// of the index queries. The index query runs with the session's own search settings.
func (m sqlMeasurer) recall(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index) (float64, time.Duration, error) {
	conn, err := pool.Acquire(ctx)
	if err != nil {
		return 0, 0, err
	}
	defer conn.Release()
	probes, err := m.probeVectors(ctx, conn, ix)
	if err != nil {
		return 0, 0, err
	}
	op := distanceOp(ix.Opclass)
	q := fmt.Sprintf(`SELECT ctid::text, (%[2]s %[3]s $1::text::vector)::float8 FROM %[1]s ORDER BY %[2]s %[3]s $1::text::vector LIMIT %[4]d`,
		ix.QuotedTable(), ix.QuotedColumn(), op, m.k)
	topk := func(force string, v string) ([]measure.Row, time.Duration, error) {
		tx, err := conn.Begin(ctx)
		if err != nil {
			return nil, 0, err
		}
		defer tx.Rollback(ctx)
		if _, err := tx.Exec(ctx, force); err != nil {
			return nil, 0, err
		}
		start := time.Now()
		rows, err := tx.Query(ctx, q, v)
		if err != nil {
			return nil, 0, err
		}
		out, err := pgx.CollectRows(rows, pgx.RowToStructByPos[measure.Row])
		return out, time.Since(start), err
	}
	var sum float64
	var lat time.Duration
	for _, v := range probes {
		exact, _, err := topk("SET LOCAL enable_indexscan = off; SET LOCAL enable_bitmapscan = off", v)
		if err != nil {
			return 0, 0, err
		}
		got, d, err := topk("SET LOCAL enable_seqscan = off", v)
		if err != nil {
			return 0, 0, err
		}
		lat += d
		hit, want := measure.Hits(got, exact)
		sum += float64(hit) / float64(want)
	}
	if len(probes) == 0 {
		return 0, 0, fmt.Errorf("no probe vectors in %s", ix.QuotedTable())
	}
	return sum / float64(len(probes)), lat / time.Duration(len(probes)), nil
}

// indexUsed is 1 when the planner answers a nearest-neighbour query with ix, as a new client's
// query would be planned.
func indexUsed(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index) (float64, error) {
	var v string
	if err := pool.QueryRow(ctx, fmt.Sprintf(`SELECT %s::text FROM %s LIMIT 1`, ix.QuotedColumn(), ix.QuotedTable())).Scan(&v); err != nil {
		return 0, err
	}
	// The vector is a literal so that the plan is a custom one on every call.
	used, err := measure.UsesIndex(ctx, pool, ix.Name, fmt.Sprintf(`SELECT 1 FROM %s ORDER BY %s %s '%s' LIMIT 10`,
		ix.QuotedTable(), ix.QuotedColumn(), distanceOp(ix.Opclass), v))
	if err != nil || !used {
		return 0, err
	}
	return 1, nil
}

// ivfListSizes walks an IVFFlat index's pages: the list pages from block 1, then each list's
// own page chain, counting its entries (layout as in pgvector's ivfflat.h).
func ivfListSizes(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index) ([]int64, error) {
	rows, err := pool.Query(ctx, `SELECT get_raw_page($1::oid::regclass::text, b::int)
		FROM generate_series(0, pg_relation_size($1::oid::regclass) / 8192 - 1) b ORDER BY b`, ix.OID)
	if err != nil {
		return nil, err
	}
	pages, err := pgx.CollectRows(rows, pgx.RowTo[[]byte])
	if err != nil {
		return nil, err
	}
	const invalid = 0xFFFFFFFF
	next := func(p []byte) uint32 { return binary.LittleEndian.Uint32(p[8184:]) }
	items := func(p []byte) [][]byte {
		lower := binary.LittleEndian.Uint16(p[12:])
		var out [][]byte
		for off := 24; off < int(lower); off += 4 {
			w := binary.LittleEndian.Uint32(p[off:])
			o, l := w&0x7FFF, w>>17
			out = append(out, p[o:o+l])
		}
		return out
	}
	var starts []uint32
	for b := uint32(1); b != invalid && int(b) < len(pages); b = next(pages[b]) {
		for _, it := range items(pages[b]) {
			starts = append(starts, binary.LittleEndian.Uint32(it))
		}
	}
	sizes := make([]int64, len(starts))
	for i, s := range starts {
		for b := s; b != invalid && int(b) < len(pages); b = next(pages[b]) {
			sizes[i] += int64(len(items(pages[b])))
		}
	}
	return sizes, nil
}

func cv(xs []int64) float64 {
	if len(xs) == 0 {
		return 0
	}
	var sum float64
	for _, x := range xs {
		sum += float64(x)
	}
	mean := sum / float64(len(xs))
	if mean == 0 {
		return 0
	}
	var ss float64
	for _, x := range xs {
		ss += (float64(x) - mean) * (float64(x) - mean)
	}
	return math.Sqrt(ss/float64(len(xs))) / mean
}
