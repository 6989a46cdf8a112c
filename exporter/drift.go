package exporter

import (
	"context"
	"fmt"
	"math"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// The drift score of an index compares rows written since its build with build-time rows.
//
// Rows written since the build are those whose xmin is newer than the transaction counter
// recorded when vectorheal saw the index's current relfilenode first (its build, or the first
// time vectorheal saw it when the build predates vectorheal). Frozen rows count as build-time.
//
//   - IVFFlat with readable pages: the reference set is the index's centers, which never move
//     after the build. score = mean distance of a sample of new rows to their nearest center
//     over the same mean for a sample of build-time rows.
//   - HNSW, or IVFFlat without page access: the reference set is a sample of build-time rows;
//     score = mean distance of new rows to their nearest reference row over the same mean for
//     a second, disjoint sample of build-time rows.
//
// Distances are the index's own (l2, cosine, l1), except inner product, which is not a
// distance (it can be negative) and is replaced by l2. 1.0 means no shift; 2.0 means new rows
// lie twice as far from what the index was built on. With no row written since the build the
// score is 1. Samples are taken with ORDER BY random() over the rows of each side, a full
// scan bounded by the check's statement_timeout.

// newSince selects rows written since the transaction counter $1 (the next xid to be assigned
// then): their xmin's age is at most the distance from $1 to the next xid now. age() of a
// frozen xmin is the largest integer, so frozen rows count as build-time.
const newSince = `age(xmin) <= (pg_snapshot_xmax(pg_current_snapshot())::text::bigint - $1::bigint)`

// driftScore computes the score of ix; ok is false when there are too few build-time rows, or
// the indexed values are sparsevec or bit, which have no score. Rows are the index's: its key
// (column or expression) and a partial index's predicate.
func driftScore(ctx context.Context, pool *pgxpool.Pool, ix catalog.Index, xidAtBuild uint64, sample int, centers [][]float32, timeout time.Duration) (score float64, ok bool, err error) {
	kind, err := distanceKind(ix)
	if err != nil {
		return 0, false, err
	}
	if !denseVector(ix) {
		return 0, false, nil
	}
	if kind == "ip" {
		kind = "l2"
	}
	var newRows, oldRows [][]float32
	err = readOnly(ctx, pool, timeout, func(tx pgx.Tx) error {
		key, tbl := ix.Key(), ix.QuotedTable()
		base := probeMarker + `SELECT ` + key + `::text FROM ` + tbl + ` WHERE ` + key + ` IS NOT NULL AND `
		if p := ix.Where(); p != "" {
			base += p + ` AND `
		}
		var err error
		if newRows, err = vectors(ctx, tx, base+newSince+` ORDER BY random() LIMIT $2`, xidAtBuild, sample); err != nil {
			return fmt.Errorf("sample new rows: %w", err)
		}
		oldN := sample
		if len(centers) == 0 {
			oldN = 2 * sample
		}
		if oldRows, err = vectors(ctx, tx, base+`NOT (`+newSince+`) ORDER BY random() LIMIT $2`, xidAtBuild, oldN); err != nil {
			return fmt.Errorf("sample build-time rows: %w", err)
		}
		return nil
	})
	if err != nil {
		return 0, false, fmt.Errorf("%s: drift: %w", ix, err)
	}
	if len(newRows) == 0 {
		return 1, true, nil
	}
	ref, baseline := centers, oldRows
	if len(ref) == 0 {
		half := len(oldRows) / 2
		ref, baseline = oldRows[:half], oldRows[half:]
	}
	if len(ref) == 0 || len(baseline) == 0 {
		return 0, false, nil
	}
	const eps = 1e-9
	return (meanNearest(kind, newRows, ref) + eps) / (meanNearest(kind, baseline, ref) + eps), true, nil
}

func vectors(ctx context.Context, tx pgx.Tx, q string, args ...any) ([][]float32, error) {
	rows, err := tx.Query(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) ([]float32, error) {
		var s string
		if err := r.Scan(&s); err != nil {
			return nil, err
		}
		return parseVector(s)
	})
}

// meanNearest is the mean over vs of the distance to the nearest vector of ref.
func meanNearest(kind string, vs, ref [][]float32) float64 {
	var sum float64
	for _, v := range vs {
		best := math.Inf(1)
		for _, r := range ref {
			if d := distance(kind, v, r); d < best {
				best = d
			}
		}
		sum += best
	}
	return sum / float64(len(vs))
}

// distance is the l2, cosine or l1 distance of a and b over their common length.
func distance(kind string, a, b []float32) float64 {
	n := min(len(a), len(b))
	switch kind {
	case "cosine":
		var dot, na, nb float64
		for i := 0; i < n; i++ {
			x, y := float64(a[i]), float64(b[i])
			dot += x * y
			na += x * x
			nb += y * y
		}
		if na == 0 || nb == 0 {
			return 1
		}
		return 1 - dot/math.Sqrt(na*nb)
	case "l1":
		var s float64
		for i := 0; i < n; i++ {
			s += math.Abs(float64(a[i]) - float64(b[i]))
		}
		return s
	default:
		var s float64
		for i := 0; i < n; i++ {
			d := float64(a[i]) - float64(b[i])
			s += d * d
		}
		return math.Sqrt(s)
	}
}
