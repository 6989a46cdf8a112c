// Package shard splits measuring among replicas: each of Total shards owns the indexes whose
// key hashes to its number, so any count of replicas measures every index once and none
// twice, without talking to each other. The key is (target, database, schema, index) when
// sharding by index, the target's name alone when sharding by target. The assignment is
// stable: it changes only when Total or the granularity does.
package shard

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
)

// By is the granularity of the split: what a shard owns whole.
type By string

const (
	// ByIndex spreads the indexes of every target over the shards: the most even split, but
	// every shard connects to, discovers and reads the statistics of every target.
	ByIndex By = "index"
	// ByTarget gives each shard whole targets: a shard never connects to a target it does not
	// own, so the per-target cost is divided too, at the price of a split only as even as the
	// targets are alike.
	ByTarget By = "target"
)

// ParseBy reads a granularity: "index" or "target".
func ParseBy(s string) (By, error) {
	switch b := By(s); b {
	case ByIndex, ByTarget:
		return b, nil
	}
	return "", fmt.Errorf("shard by %q: must be %s or %s", s, ByIndex, ByTarget)
}

// Shard is one replica's part: number Index of Total (0 <= Index < Total), split By index or
// target. The zero value and Total 1 own everything; an empty By is ByIndex.
type Shard struct {
	Index, Total int
	By           By
}

// Owns says whether s owns the thing named by key (joined with NUL bytes, so ("a", "bc") and
// ("ab", "c") differ), whatever s.By.
func (s Shard) Owns(key ...string) bool {
	if s.Total <= 1 {
		return true
	}
	h := fnv.New64a()
	for i, k := range key {
		if i > 0 {
			_, _ = h.Write([]byte{0})
		}
		_, _ = h.Write([]byte(k))
	}
	return h.Sum64()%uint64(s.Total) == uint64(s.Index)
}

// OwnsTarget says whether s owns the target as a whole: its figures that belong to no index
// (a database's statistics, the pgvector version, custom metrics). Under either granularity
// that is the shard the target's name hashes to, so the two agree on it.
func (s Shard) OwnsTarget(target string) bool { return s.Owns(target) }

// Visits says whether s reads anything of the target at all: every target when sharding by
// index (each may hold indexes of s), only its own when sharding by target.
func (s Shard) Visits(target string) bool {
	return s.By != ByTarget || s.OwnsTarget(target)
}

// OwnsIndex says whether s measures the index schema.index of database on target.
func (s Shard) OwnsIndex(target, database, schema, index string) bool {
	if s.By == ByTarget {
		return s.OwnsTarget(target)
	}
	return s.Owns(target, database, schema, index)
}

// Granularity is s.By, with the empty value read as ByIndex.
func (s Shard) Granularity() By {
	if s.By == "" {
		return ByIndex
	}
	return s.By
}

func (s Shard) String() string {
	return fmt.Sprintf("%d of %d by %s", s.Index, s.Total, s.Granularity())
}

// ordinalRE is the ordinal at the end of a StatefulSet pod's hostname: vectorheal-2.
var ordinalRE = regexp.MustCompile(`-(\d+)$`)

// Parse reads a shard from the flags: index is a number or "auto", the ordinal at the end of
// hostname as a StatefulSet names its pods (vectorheal-0, vectorheal-1, ...). The shard is
// split by index; set By for another granularity (ParseBy).
func Parse(index string, total int, hostname string) (Shard, error) {
	if total < 1 {
		return Shard{}, fmt.Errorf("total shards %d: must be at least 1", total)
	}
	var n int
	switch {
	case index == "auto":
		m := ordinalRE.FindStringSubmatch(hostname)
		if m == nil {
			return Shard{}, fmt.Errorf("shard auto: hostname %q does not end in -<ordinal> as a StatefulSet pod's does", hostname)
		}
		n, _ = strconv.Atoi(m[1])
	default:
		var err error
		if n, err = strconv.Atoi(index); err != nil {
			return Shard{}, fmt.Errorf("shard %q: a number from 0 or auto", index)
		}
	}
	if n < 0 || n >= total {
		return Shard{}, fmt.Errorf("shard %d: must be from 0 to %d (total shards %d)", n, total-1, total)
	}
	return Shard{Index: n, Total: total, By: ByIndex}, nil
}
