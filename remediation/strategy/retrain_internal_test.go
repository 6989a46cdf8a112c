package strategy

import "testing"

// TestRetrainLists checks the bounds of a step around pgvector's advice; the advice itself is
// measure.RecommendedLists's, tested there.
func TestRetrainLists(t *testing.T) {
	for _, c := range []struct {
		rows   float64
		lo, hi int
		want   int
	}{
		{0, 1, 32768, 1},
		{50_000, 1, 32768, 50},
		{4_000_000, 1, 32768, 2000},
		{50_000, 100, 32768, 100},
		{50_000, 1, 20, 20},
	} {
		if got := (RetrainConfig{MinLists: c.lo, MaxLists: c.hi}).lists(c.rows); got != c.want {
			t.Errorf("lists(%v) within [%d, %d] = %d, want %d", c.rows, c.lo, c.hi, got, c.want)
		}
	}
}
