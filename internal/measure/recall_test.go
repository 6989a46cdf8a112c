package measure_test

import (
	"math"
	"testing"

	"github.com/vectorheal/vectorheal/internal/measure"
)

func rows(ids string, dists ...float64) []measure.Row {
	out := make([]measure.Row, len(ids))
	for i := range ids {
		out[i] = measure.Row{ID: ids[i : i+1], Dist: math.NaN()}
		if i < len(dists) {
			out[i].Dist = dists[i]
		}
	}
	return out
}

func TestHits(t *testing.T) {
	nan := math.NaN()
	for _, c := range []struct {
		name          string
		approx, exact []measure.Row
		hits, want    int
	}{
		{"same rows", rows("abc", 1, 2, 3), rows("abc", 1, 2, 3), 3, 3},
		{"same rows in another order", rows("cab", 3, 1, 2), rows("abc", 1, 2, 3), 3, 3},
		{"one missed", rows("abd", 1, 2, 4), rows("abc", 1, 2, 3), 2, 3},
		{"tie at the k-th distance", rows("abd", 1, 2, 3), rows("abc", 1, 2, 3), 3, 3},
		{"tie within the tolerance", rows("abd", 1, 2, 3+3e-6), rows("abc", 1, 2, 3), 3, 3},
		{"beyond the tolerance", rows("abd", 1, 2, 3+5e-6), rows("abc", 1, 2, 3), 2, 3},
		{"tie at distance 0", rows("ab", 0, 1e-7), rows("ac", 0, 0), 2, 2},
		{"an exact row returned twice counts once", rows("aab", 1, 1, 2), rows("abc", 1, 2, 3), 2, 3},
		{"a tied row returned twice counts once", rows("add", 1, 3, 3), rows("abc", 1, 2, 3), 2, 3},
		{"equal rows by value count as often as exact has them", rows("aab"), rows("aac"), 2, 3},
		{"short result", rows("a", 1), rows("abc", 1, 2, 3), 1, 3},
		{"empty result", nil, rows("abc", 1, 2, 3), 0, 3},
		{"longer than exact: hits at most want", rows("abcd", 1, 1, 1, 1), rows("ab", 1, 1), 2, 2},
		{"empty exact set", rows("abc", 1, 2, 3), nil, 0, 0},
		{"no distances: by identity only", rows("abd"), rows("abc"), 2, 3},
		{"NaN distance of a returned row", rows("abd", 1, 2, nan), rows("abc", 1, 2, 3), 2, 3},
	} {
		t.Run(c.name, func(t *testing.T) {
			hits, want := measure.Hits(c.approx, c.exact)
			if hits != c.hits || want != c.want {
				t.Errorf("Hits = %d, %d; want %d, %d", hits, want, c.hits, c.want)
			}
		})
	}
}

func TestWithin(t *testing.T) {
	for _, c := range []struct {
		d, kth float64
		want   bool
	}{
		{1, 1, true},
		{1 + 1.9e-6, 1, true}, // 1e-6·(1+1)
		{1 + 2.1e-6, 1, false},
		{1000.0009, 1000, true}, // relative: 1e-6·1001
		{1000.0011, 1000, false},
		{9e-7, 0, true}, // the absolute floor at 0
		{1.1e-6, 0, false},
		{0.5, 1, true},
		{math.NaN(), 1, false},
		{1, math.NaN(), false},
	} {
		if got := measure.Within(c.d, c.kth); got != c.want {
			t.Errorf("Within(%v, %v) = %v, want %v", c.d, c.kth, got, c.want)
		}
	}
}
