package measure

import "math"

// MaxLists is the most lists pgvector builds an IVFFlat index with (IVFFLAT_MAX_LISTS).
const MaxLists = 32768

// RecommendedLists is pgvector's advice for the lists of an IVFFlat index over rows rows:
// rows/1000 up to 1M rows, √rows above, rounded down, at least 1 and at most MaxLists.
func RecommendedLists(rows float64) int {
	n := rows / 1000
	if rows > 1e6 {
		n = math.Sqrt(rows)
	}
	if !(n >= 1) { // also NaN
		return 1
	}
	return int(min(n, MaxLists))
}
