package measure

import "math"

// Row is one result of a nearest-neighbour search: what identifies it and its distance to the
// query. Its fields are in the order of a search's columns (ctid::text, distance::float8), so
// pgx.RowToStructByPos[Row] scans them.
type Row struct {
	// ID identifies the row: its ctid, or the bytes of its values when the search returns
	// rows of its own shape. Equal IDs are the same row (or, by value, an equal one).
	ID string
	// Dist is the row's distance to the query; NaN when the search does not return one, and
	// then a row counts as found only by its ID.
	Dist float64
}

// DistanceTolerance is how far beyond the exact k-th distance, relative to it (with an
// absolute floor of the same size near zero), a returned row may lie and still count as
// found: its distance is at most kth + DistanceTolerance·(1+|kth|).
//
// pgvector computes distances in single precision (float4 sums, returned as float8), so two
// rows equally near the query can come back a few float4 steps apart (about 1.2e-7 each,
// relative) when their vectors differ. 1e-6 covers that rounding and stays far below the gap
// between rows that are really nearer or farther; a tighter bound (1e-9) only accepts
// bit-identical ties and understates recall on ties. The absolute floor keeps a tolerance
// when the k-th distance is 0 (duplicates of the query vector under cosine or L2).
const DistanceTolerance = 1e-6

// Hits counts the rows of approx (a search through an index) found in exact (the same search
// done exactly, its rows nearest first) and returns it with want, the number of exact rows.
// recall@k is hits/want; want is 0 when exact is empty, and then there is nothing to measure.
//
// A returned row is found when it is one of the exact rows, or when its distance is not
// beyond the exact k-th (last) distance within DistanceTolerance: several rows equally near
// as the k-th are all right answers, and which of them exact search kept is chance. Each
// exact row is found at most as often as exact holds it, so a row the index returns twice
// counts once; a row not among the exact ones counts once however often it is returned; and
// hits never exceed want.
func Hits(approx, exact []Row) (hits, want int) {
	if len(exact) == 0 {
		return 0, 0
	}
	left := make(map[string]int, len(exact))
	for _, r := range exact {
		left[r.ID]++
	}
	kth := exact[len(exact)-1].Dist
	tied := map[string]bool{}
	for _, r := range approx {
		n, isExact := left[r.ID]
		switch {
		case n > 0:
			left[r.ID]--
		case !isExact && !tied[r.ID] && Within(r.Dist, kth):
			tied[r.ID] = true
		default:
			continue
		}
		hits++
	}
	return min(hits, len(exact)), len(exact)
}

// Within reports whether distance d is not beyond kth within DistanceTolerance; false when
// either is NaN.
func Within(d, kth float64) bool {
	return d <= kth+DistanceTolerance*(1+math.Abs(kth))
}
