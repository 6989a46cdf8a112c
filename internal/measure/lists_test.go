package measure_test

import (
	"math"
	"testing"

	"github.com/vectorheal/vectorheal/internal/measure"
)

func TestRecommendedLists(t *testing.T) {
	for _, c := range []struct {
		rows float64
		want int
	}{
		{0, 1},
		{-1, 1}, // reltuples of a table never analyzed
		{math.NaN(), 1},
		{999, 1},
		{1999, 1},
		{50_000, 50},
		{999_999, 999},
		{1_000_000, 1000}, // rows/1000 up to 1M rows
		{1_000_001, 1000}, // √rows above: 1000.0005
		{1_002_001, 1001}, // √ = 1001
		{4_000_000, 2000},
		{1e12, measure.MaxLists}, // √ = 1e6, pgvector's limit
	} {
		if got := measure.RecommendedLists(c.rows); got != c.want {
			t.Errorf("RecommendedLists(%v) = %d, want %d", c.rows, got, c.want)
		}
	}
}
