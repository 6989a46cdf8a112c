package hnsw

import (
	"encoding/binary"
	"math/bits"
	"slices"
)

// The graph keeps, per element, the set of its neighbours over all layers as a sorted list of
// keys (block*maxItems + offset-1), Rice-coded: the gaps between sorted keys are close to
// geometric, so a Rice code with parameter log2(mean gap) spends about log2(gap)+2 bits each,
// half of what uint32 keys take. Reachability and orphans need neither order nor layer.

const (
	chunkBits = 20 // 1 MiB chunks: the pool grows without copying what it holds
	chunkSize = 1 << chunkBits
	noList    = ^uint32(0)
)

// pool holds the encoded lists; an offset is chunk<<chunkBits | position.
type pool struct {
	chunks [][]byte
	buf    []byte // scratch for encoding
}

// add encodes keys (sorted, unique, non-empty) and returns the list's offset, or noList when
// the pool is full (4 GiB).
func (p *pool) add(keys []uint32) uint32 {
	p.buf = encodeList(p.buf[:0], keys)
	if len(p.chunks) == 0 || len(p.chunks[len(p.chunks)-1])+len(p.buf) > chunkSize {
		if len(p.chunks) == 1<<(32-chunkBits) || len(p.buf) > chunkSize {
			return noList
		}
		p.chunks = append(p.chunks, make([]byte, 0, chunkSize))
	}
	c := len(p.chunks) - 1
	off := uint32(c)<<chunkBits | uint32(len(p.chunks[c]))
	p.chunks[c] = append(p.chunks[c], p.buf...)
	return off
}

// each calls fn for every key of the list at off.
func (p *pool) each(off uint32, fn func(key uint32)) {
	b := p.chunks[off>>chunkBits][off&(chunkSize-1):]
	n, w := binary.Uvarint(b)
	k := uint(b[w])
	b = b[w+1:]
	var pos uint // bit position in b
	var prev int64 = -1
	for range n {
		var q uint32
		for b[pos>>3]&(1<<(pos&7)) != 0 {
			q++
			pos++
		}
		pos++
		r := uint32(0)
		for i := range k {
			if b[pos>>3]&(1<<(pos&7)) != 0 {
				r |= 1 << i
			}
			pos++
		}
		key := uint32(prev + 1 + int64(q<<k|r))
		fn(key)
		prev = int64(key)
	}
}

func (p *pool) bytes() int {
	n := 0
	for _, c := range p.chunks {
		n += cap(c)
	}
	return n
}

// encodeList appends the Rice code of keys to dst: uvarint count, the parameter k, then per
// key the gap to the previous key minus one (the first from -1), its quotient q = gap>>k in
// unary and its k low bits.
func encodeList(dst []byte, keys []uint32) []byte {
	n := len(keys)
	dst = binary.AppendUvarint(dst, uint64(n))
	mean := (uint64(keys[n-1]) + 1 - uint64(n)) / uint64(n)
	k := uint(0)
	if mean > 0 {
		k = uint(bits.Len64(mean) - 1)
	}
	dst = append(dst, byte(k))
	start := len(dst)
	var pos uint
	put := func(bit bool) {
		if pos&7 == 0 {
			dst = append(dst, 0)
		}
		if bit {
			dst[start+int(pos>>3)] |= 1 << (pos & 7)
		}
		pos++
	}
	prev := int64(-1)
	for _, key := range keys {
		g := uint64(int64(key) - prev - 1)
		for q := g >> k; q > 0; q-- {
			put(true)
		}
		put(false)
		for i := range k {
			put(g&(1<<i) != 0)
		}
		prev = int64(key)
	}
	return dst
}

// sortUnique sorts keys and drops duplicates in place.
func sortUnique(keys []uint32) []uint32 {
	slices.Sort(keys)
	return slices.Compact(keys)
}

// bitset is a plain bitmap.
type bitset []uint64

func newBitset(n uint64) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i uint32)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) has(i uint32) bool { return b[i>>6]&(1<<(i&63)) != 0 }

// ranker answers rank(i): the number of set bits of b before i, in O(1).
type ranker struct {
	b   bitset
	cum []uint32
}

func newRanker(b bitset) ranker {
	cum := make([]uint32, len(b))
	var n uint32
	for i, w := range b {
		cum[i] = n
		n += uint32(bits.OnesCount64(w))
	}
	return ranker{b: b, cum: cum}
}

func (r ranker) rank(i uint32) uint32 {
	return r.cum[i>>6] + uint32(bits.OnesCount64(r.b[i>>6]&(1<<(i&63)-1)))
}
