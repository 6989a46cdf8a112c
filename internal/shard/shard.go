// Package shard splits measuring among replicas: each of Total shards owns the indexes whose
// key (target, database, index) hashes to its number, so any count of replicas measures every
// index once and none twice, without talking to each other. The assignment is stable: it
// changes only when Total does.
package shard

import (
	"fmt"
	"hash/fnv"
	"regexp"
	"strconv"
)

// Shard is one replica's part: number Index of Total (0 <= Index < Total). The zero value and
// Total 1 own everything.
type Shard struct {
	Index, Total int
}

// Owns says whether s owns the thing named by key (joined with NUL bytes, so ("a", "bc") and
// ("ab", "c") differ).
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

func (s Shard) String() string { return fmt.Sprintf("%d of %d", s.Index, s.Total) }

// ordinalRE is the ordinal at the end of a StatefulSet pod's hostname: vectorheal-2.
var ordinalRE = regexp.MustCompile(`-(\d+)$`)

// Parse reads a shard from the flags: index is a number or "auto", the ordinal at the end of
// hostname as a StatefulSet names its pods (vectorheal-0, vectorheal-1, ...).
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
	return Shard{Index: n, Total: total}, nil
}
