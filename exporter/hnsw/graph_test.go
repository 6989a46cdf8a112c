package hnsw

import (
	"math/rand/v2"
	"slices"
	"testing"
)

func TestRiceRoundTrip(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var p pool
	var lists [][]uint32
	var offs []uint32
	for i := range 3000 {
		n := 1 + rng.IntN(60)
		span := uint32(1 + rng.IntN(1<<(1+i%31)))
		keys := make([]uint32, n)
		for j := range keys {
			keys[j] = rng.Uint32N(span)
		}
		if i%7 == 0 {
			keys = append(keys, ^uint32(0)-1, 0) // extremes: huge gaps, key 0
		}
		want := slices.Compact(slices.Sorted(slices.Values(keys)))
		keys = newSorter(1 << 32).sortUnique(keys)
		if !slices.Equal(keys, want) {
			t.Fatalf("sorted %v, want %v", keys, want)
		}
		lists = append(lists, keys)
		offs = append(offs, p.add(keys))
	}
	for i, keys := range lists {
		var got []uint32
		p.each(offs[i], func(k uint32) { got = append(got, k) })
		if !slices.Equal(got, keys) {
			t.Fatalf("list %d: decoded %v, want %v", i, got, keys)
		}
	}
}

func TestRanker(t *testing.T) {
	b := newBitset(1000)
	var set []uint32
	for i := uint32(0); i < 1000; i += 3 + i%5 {
		b.set(i)
		set = append(set, i)
	}
	r := newRanker(b)
	for want, i := range set {
		if got := r.rank(i); got != uint32(want) {
			t.Fatalf("rank(%d) = %d, want %d", i, got, want)
		}
		if i > 0 {
			if got := b.next(i - 1); got != i && !b.has(i-1) {
				t.Fatalf("next(%d) = %d, want %d", i-1, got, i)
			}
		}
		if got := b.next(i); got != i {
			t.Fatalf("next(%d) = %d", i, got)
		}
	}
}
