package hnsw

import (
	"encoding/binary"
	"math/bits"
	"slices"
	"sync/atomic"
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
	it := p.list(off)
	for it.more() {
		fn(it.next())
	}
}

// listIter walks one encoded list; its methods are small enough to inline into loops.
type listIter struct {
	br   bitReader
	n    uint64
	k    uint
	mask uint64
	prev int64
}

func (p *pool) list(off uint32) listIter {
	b := p.chunks[off>>chunkBits][off&(chunkSize-1):]
	n, w := binary.Uvarint(b)
	k := uint(b[w])
	return listIter{br: bitReader{b: b[w+1:]}, n: n, k: k, mask: uint64(1)<<k - 1, prev: -1}
}

func (it *listIter) more() bool { return it.n > 0 }

func (it *listIter) next() uint32 {
	it.n--
	// Most codes fit in one window: read quotient and remainder from it at once.
	w := it.br.window()
	ones := uint(bits.TrailingZeros64(^w))
	var g uint64
	if ones+1+it.k <= 57 {
		g = uint64(ones)<<it.k | w>>(ones+1)&it.mask
		it.br.pos += ones + 1 + it.k
	} else {
		q := it.br.unary()
		g = q<<it.k | it.br.bits(it.k)&it.mask
	}
	key := it.prev + 1 + int64(g)
	it.prev = key
	return uint32(key)
}

// bitReader reads bits LSB-first from b.
type bitReader struct {
	b   []byte
	pos uint
}

// window returns at least 57 bits starting at pos (zeros past the end).
func (r *bitReader) window() uint64 {
	i := r.pos >> 3
	var w uint64
	if int(i)+8 <= len(r.b) {
		w = binary.LittleEndian.Uint64(r.b[i:])
	} else {
		for j := 0; int(i)+j < len(r.b); j++ {
			w |= uint64(r.b[int(i)+j]) << (8 * j)
		}
	}
	return w >> (r.pos & 7)
}

// unary reads ones up to the next zero and returns their count.
func (r *bitReader) unary() uint64 {
	var q uint64
	for {
		ones := uint(bits.TrailingZeros64(^r.window()))
		if ones < 57 {
			r.pos += ones + 1
			return q + uint64(ones)
		}
		q += 56
		r.pos += 56
	}
}

// bits reads k <= 32 bits.
func (r *bitReader) bits(k uint) uint64 {
	if k == 0 {
		return 0
	}
	v := r.window()
	r.pos += k
	return v
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
// unary (q ones and a zero) and its k low bits, LSB first.
func encodeList(dst []byte, keys []uint32) []byte {
	n := len(keys)
	dst = binary.AppendUvarint(dst, uint64(n))
	mean := (uint64(keys[n-1]) + 1 - uint64(n)) / uint64(n)
	k := uint(0)
	if mean > 0 {
		k = uint(bits.Len64(mean) - 1)
	}
	dst = append(dst, byte(k))
	var acc uint64 // pending bits, fewer than 32 between keys
	var nb uint
	// flush moves whole bytes out of acc, for codes too long to add in one step.
	flush := func() {
		for nb >= 8 {
			dst = append(dst, byte(acc))
			acc >>= 8
			nb -= 8
		}
	}
	mask := uint64(1)<<k - 1
	prev := int64(-1)
	for _, key := range keys {
		g := uint64(int64(key) - prev - 1)
		prev = int64(key)
		q := g >> k
		if q+1+uint64(k) <= 32 {
			// The usual short code: q ones, a zero, k bits, added at once (nb < 32, so it fits).
			acc |= (1<<q - 1 | (g&mask)<<(q+1)) << nb
			nb += uint(q) + 1 + k
		} else {
			flush()
			for q >= 32 {
				acc |= (1<<32 - 1) << nb
				nb += 32
				flush()
				q -= 32
			}
			acc |= (1<<q - 1) << nb // q ones, then the zero already there
			nb += uint(q) + 1
			flush()
			acc |= (g & mask) << nb
			nb += k
		}
		if nb >= 32 {
			dst = binary.LittleEndian.AppendUint32(dst, uint32(acc))
			acc >>= 32
			nb -= 32
		}
	}
	for nb > 0 {
		dst = append(dst, byte(acc))
		acc >>= 8
		nb -= min(nb, 8)
	}
	return dst
}

// sorter sorts neighbour lists. Comparison sorts of a few dozen random keys spend their time
// on mispredicted branches; one counting pass on the top bits leaves the keys almost sorted,
// and an insertion sort then moves each only within its bucket. Neighbours are spread evenly
// over the key space, so about as many buckets as keys leave one or two keys in each; more
// buckets would cost more to count than they save.
type sorter struct {
	keyBits uint // every key is below 1 << keyBits
	tmp     []uint32
}

const maxSortBuckets = 256

func newSorter(keySpace uint64) *sorter {
	return &sorter{keyBits: uint(bits.Len64(max(keySpace, 2) - 1))}
}

// sortUnique sorts keys (each below the key space) and drops duplicates; the result may
// share memory with keys or with the sorter.
func (s *sorter) sortUnique(keys []uint32) []uint32 {
	if len(keys) >= maxSortBuckets {
		slices.Sort(keys)
		return slices.Compact(keys)
	}
	// The bucket count is the power of two at or above len(keys), capped by the key space.
	lb := min(uint(bits.Len(uint(len(keys)))), s.keyBits)
	nb := 1 << lb
	shift := s.keyBits - lb
	var pos [maxSortBuckets]uint8
	for _, k := range keys {
		pos[k>>shift]++
	}
	// Starts from counts, with the running sum in a register: summing in place would chain
	// every bucket's store to the next bucket's load.
	var sum uint8
	for i := range pos[:nb] {
		c := pos[i]
		pos[i] = sum
		sum += c
	}
	if cap(s.tmp) < len(keys) {
		s.tmp = make([]uint32, len(keys), 2*len(keys))
	}
	out := s.tmp[:len(keys)]
	for _, k := range keys {
		b := k >> shift
		out[pos[b]] = k
		pos[b]++
	}
	for i := 1; i < len(out); i++ {
		v, j := out[i], i
		for ; j > 0 && out[j-1] > v; j-- {
			out[j] = out[j-1]
		}
		out[j] = v
	}
	return slices.Compact(out)
}

// bitset is a plain bitmap.
type bitset []uint64

func newBitset(n uint64) bitset    { return make(bitset, (n+63)/64) }
func (b bitset) set(i uint32)      { b[i>>6] |= 1 << (i & 63) }
func (b bitset) has(i uint32) bool { return b[i>>6]&(1<<(i&63)) != 0 }

// hasAtomic is has for a bitset that other goroutines set with trySet.
func (b bitset) hasAtomic(i uint32) bool { return atomic.LoadUint64(&b[i>>6])&(1<<(i&63)) != 0 }

// trySet sets bit i atomically and reports whether this call set it (it was clear), so
// several goroutines can claim bits of one bitset.
func (b bitset) trySet(i uint32) bool {
	bit := uint64(1) << (i & 63)
	w := &b[i>>6]
	if atomic.LoadUint64(w)&bit != 0 {
		return false
	}
	return atomic.OrUint64(w, bit)&bit == 0
}

// next returns the first set bit at or after i; i must have one after it.
func (b bitset) next(i uint32) uint32 {
	w := i >> 6
	word := b[w] >> (i & 63)
	if word != 0 {
		return i + uint32(bits.TrailingZeros64(word))
	}
	for w++; b[w] == 0; w++ {
	}
	return w<<6 + uint32(bits.TrailingZeros64(b[w]))
}

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

// lookup returns rank(i) and whether bit i is set, reading the word once.
func (r ranker) lookup(i uint32) (uint32, bool) {
	w := r.b[i>>6]
	bit := uint64(1) << (i & 63)
	return r.cum[i>>6] + uint32(bits.OnesCount64(w&(bit-1))), w&bit != 0
}
