package shard

import (
	"fmt"
	"strings"
	"testing"
)

// TestEveryKeyHasOneOwner: over 3 shards, each of 3,000 keys is owned by exactly one, and the
// shards' parts are within 10 % of a third.
func TestEveryKeyHasOneOwner(t *testing.T) {
	shards := []Shard{{Index: 0, Total: 3}, {Index: 1, Total: 3}, {Index: 2, Total: 3}}
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
		{"1", "", 3, Shard{Index: 1, Total: 3, By: ByIndex}, ""},
		{"auto", "vectorheal-2", 3, Shard{Index: 2, Total: 3, By: ByIndex}, ""},
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

func TestParseBy(t *testing.T) {
	for _, c := range []struct {
		in   string
		want By
		err  string
	}{
		{"index", ByIndex, ""},
		{"target", ByTarget, ""},
		{"", "", `shard by "": must be index or target`},
		{"database", "", `shard by "database": must be index or target`},
		{"Target", "", "must be index or target"},
	} {
		got, err := ParseBy(c.in)
		if c.err != "" {
			if err == nil || !strings.Contains(err.Error(), c.err) {
				t.Errorf("ParseBy(%q) = %q, %v; want an error with %q", c.in, got, err, c.err)
			}
			continue
		}
		if err != nil || got != c.want {
			t.Errorf("ParseBy(%q) = %q, %v; want %q", c.in, got, err, c.want)
		}
	}
}

// TestByTargetOwnsWholeTargets: sharding by target, each of 60 targets has exactly one shard
// that visits it, and that shard owns every index of it and the target as a whole; the other
// shards visit nothing of it. Sharding by index every shard visits every target. Under both
// granularities the target as a whole goes to the same shard.
func TestByTargetOwnsWholeTargets(t *testing.T) {
	const total = 3
	counts := make([]int, total)
	for i := range 60 {
		target := fmt.Sprintf("tenant_%02d", i)
		visitors := 0
		for n := range total {
			byTarget := Shard{Index: n, Total: total, By: ByTarget}
			byIndex := Shard{Index: n, Total: total, By: ByIndex}
			if !byIndex.Visits(target) {
				t.Errorf("%v does not visit %s", byIndex, target)
			}
			if byTarget.OwnsTarget(target) != byIndex.OwnsTarget(target) {
				t.Errorf("%s as a whole: owned by %v is %v, by %v is %v", target,
					byTarget, byTarget.OwnsTarget(target), byIndex, byIndex.OwnsTarget(target))
			}
			if !byTarget.Visits(target) {
				for j := range 20 {
					if byTarget.OwnsIndex(target, target, "public", fmt.Sprintf("idx_%d", j)) {
						t.Errorf("%v owns an index of %s, which it does not visit", byTarget, target)
					}
				}
				continue
			}
			visitors++
			counts[n]++
			if !byTarget.OwnsTarget(target) {
				t.Errorf("%v visits %s without owning it as a whole", byTarget, target)
			}
			for j := range 20 {
				if !byTarget.OwnsIndex(target, target, "public", fmt.Sprintf("idx_%d", j)) {
					t.Errorf("%v visits %s but does not own its index idx_%d", byTarget, target, j)
				}
			}
		}
		if visitors != 1 {
			t.Errorf("%s is visited by %d shards by target, want 1", target, visitors)
		}
	}
	for n, c := range counts {
		if c == 0 {
			t.Errorf("shard %d of %d by target owns none of 60 targets", n, total)
		}
	}
	t.Logf("60 targets over 3 shards by target: %v", counts)
	// The zero value shards by index and an unsharded replica visits and owns everything.
	if (Shard{}).Granularity() != ByIndex || !(Shard{Total: 1, By: ByTarget}).Visits("x") || !(Shard{Total: 1, By: ByTarget}).OwnsIndex("x", "d", "s", "i") {
		t.Error("an unsharded replica must visit and own everything")
	}
}
