package shard

import (
	"fmt"
	"strings"
	"testing"
)

// TestEveryKeyHasOneOwner: over 3 shards, each of 3,000 keys is owned by exactly one, and the
// shards' parts are within 10 % of a third.
func TestEveryKeyHasOneOwner(t *testing.T) {
	shards := []Shard{{0, 3}, {1, 3}, {2, 3}}
	counts := make([]int, 3)
	for i := range 3000 {
		key := []string{"db" + fmt.Sprint(i%7), "app", fmt.Sprintf("idx_%d", i)}
		owners := 0
		for j, s := range shards {
			if s.Owns(key...) {
				owners++
				counts[j]++
			}
		}
		if owners != 1 {
			t.Fatalf("key %v has %d owners", key, owners)
		}
	}
	for j, n := range counts {
		if n < 900 || n > 1100 {
			t.Errorf("shard %d owns %d of 3000 keys, want about 1000", j, n)
		}
	}
	if !(Shard{}).Owns("x") || !(Shard{Total: 1}).Owns("x") {
		t.Error("an unsharded replica must own everything")
	}
}

func TestParse(t *testing.T) {
	for _, c := range []struct {
		index, host string
		total       int
		want        Shard
		err         string
	}{
		{"1", "", 3, Shard{1, 3}, ""},
		{"auto", "vectorheal-2", 3, Shard{2, 3}, ""},
		{"auto", "vectorheal", 3, Shard{}, "does not end in -<ordinal>"},
		{"auto", "vectorheal-3", 3, Shard{}, "must be from 0 to 2"},
		{"x", "", 2, Shard{}, "a number from 0 or auto"},
		{"0", "", 0, Shard{}, "must be at least 1"},
	} {
		got, err := Parse(c.index, c.total, c.host)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("Parse(%q, %d, %q) = %v, %v; want an error with %q", c.index, c.total, c.host, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("Parse(%q, %d, %q) = %v, %v; want %v", c.index, c.total, c.host, got, err, c.want)
		}
	}
}
