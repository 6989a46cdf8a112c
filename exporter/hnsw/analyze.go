package hnsw

import (
	"context"
	"errors"
	"fmt"
	"math/bits"
	"runtime"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// Element flags kept per element.
const (
	flagLive = 1 << iota
	flagBeingDeleted
	flagDeleted
	// flagChanged: the element's page or its neighbour tuple's page was written while the
	// scan ran (its LSN passed the fence), so what the scan saw of it may be half of a change.
	flagChanged
)

// pageElem is an element of the page being decoded.
type pageElem struct {
	e   Element
	idx uint32
	key uint32
}

// pendingElem is an element whose neighbour tuple lies on a later page.
type pendingElem struct {
	idx     uint32
	key     uint32
	version uint8
	level   uint8
	live    bool
}

// analyzer holds the state of one Analyze call. Per element it keeps 6 bytes plus the encoded
// neighbour list; per TID key (maxItems per block) three bits.
type analyzer struct {
	opts    Options
	meta    Meta
	nblocks uint32
	rep     *Report

	isElem    bitset // by key: an element tuple sits there
	hasLiveIn bitset // by key: a live element lists it as a neighbour; later the walk's visited set
	next      []uint32
	flags     []uint8  // by element index
	levels    []uint8  // by element index
	lists     []uint32 // by element index: offset in pool or noList
	pool      pool

	pending   map[uint32]pendingElem // by neighbour tuple key
	unclaimed map[uint32][]byte      // neighbour tuples whose element was not seen yet, by key

	epKey      uint32
	epIdx      int64 // -1 until the entry point element is seen
	epUsed     []int64
	liveLevels []int64 // live elements by level
	slotsUsed  []int64 // by layer, over live elements
	slotsAvail []int64

	heapBuf                        []TID
	heapTotal                      int64
	bytesLive, bytesGone, bytesAll int64

	// changed marks, by block, pages written while the scan ran (LSN past Options.Fence).
	changed  bitset
	suspects []suspect // faults that involve changed pages, to be read again
	layer    []uint32  // scratch: one layer's neighbour keys

	keys  []uint32 // scratch
	sort  *sorter
	elems []pageElem
	ntups [maxItems + 1][]byte
	fetch *fetcher
}

func (a *analyzer) fault(kind string) { a.rep.Faults[kind]++ }

// faultIf counts a fault of kind that the pages show, when none of the pages involved changed
// during the scan (unsure false); otherwise it keeps it as a suspect to read again.
func (a *analyzer) faultIf(unsure bool, s suspect) {
	if !unsure {
		a.fault(s.kind)
		return
	}
	a.suspect(s)
}

// blockChanged reports whether block b was written during the scan, or lies past the blocks
// the scan knew of (a page added since).
func (a *analyzer) blockChanged(b uint32) bool { return b >= a.nblocks || a.changed.has(b) }

func key(t TID) uint32 { return t.Block*maxItems + uint32(t.Offset) - 1 }

func keyTID(k uint32) TID { return TID{Block: k / maxItems, Offset: uint16(k%maxItems) + 1} }

// validKey reports whether t can name an element of this index.
func (a *analyzer) validKey(t TID) bool {
	return t.Block >= 1 && t.Block < a.nblocks && t.Offset >= 1 && t.Offset <= maxItems
}

// analyze reads the index's pages once and computes its report: meta page, data pages in
// batches (with the fence), heap chains, graph, figures, confirmation of suspected faults.
func analyze(ctx context.Context, r pagescan.Reader, opts Options) (*Report, error) {
	rep := &Report{Faults: map[string]int64{}, EntryPoint: pagescan.InvalidTID, EntryLevel: -1}
	n, err := r.Blocks(ctx)
	if err != nil {
		return nil, err
	}
	rep.Pages = n
	if n == 0 {
		return nil, fmt.Errorf("hnsw: relation has no pages")
	}
	if uint64(n)*maxItems >= 1<<32 {
		return nil, fmt.Errorf("hnsw: %d blocks are more than the analysis can key", n)
	}
	meta0, err := r.Read(ctx, 0, 1)
	if err != nil {
		return nil, err
	}
	meta, err := ParseMeta(meta0[0])
	if err != nil {
		if errors.Is(err, pagescan.ErrBadPage) {
			rep.Faults[FaultBadMeta]++
			return rep, nil
		}
		return nil, err
	}
	rep.Dimensions, rep.M, rep.EfConstruction = meta.Dimensions, meta.M, meta.EfConstruction
	rep.EntryPoint, rep.EntryLevel = meta.EntryPoint, meta.EntryLevel
	if opts.Batch <= 0 {
		opts.Batch = pagescan.DefaultBatch
	}
	if opts.HeapBatch <= 0 {
		opts.HeapBatch = 4096
	}
	a := newAnalyzer(opts, meta, n, rep, meta0[0])
	ctx, cancel := context.WithCancel(ctx)
	defer cancel() // stops the fetcher when decoding ends early
	a.fetch = startFetcher(ctx, r, n, opts.Batch, opts.Heap)
	for b := range a.fetch.pages {
		if b.err != nil {
			return nil, b.err
		}
		for i, p := range b.pages {
			a.page(b.start+uint32(i), p)
		}
		a.flushHeap(ctx, false)
	}
	a.flushHeap(ctx, true)
	close(a.fetch.heap)
	res := <-a.fetch.done
	if res.err != nil {
		return nil, res.err
	}
	rep.HeapTIDsDead = res.dead
	rep.HeapTIDsExact = opts.Heap != nil && !res.inexact
	for k, pe := range a.pending {
		// The element's neighbour tuple was not on its page when that page was read.
		a.faultIf(a.blockChanged(pe.key/maxItems) || a.blockChanged(k/maxItems),
			suspect{kind: FaultMissingNeighbors, elem: keyTID(pe.key)})
	}
	a.chain()
	a.graph()
	a.figures()
	if err := a.confirm(ctx, r); err != nil {
		return nil, err
	}
	return rep, nil
}

// newAnalyzer returns the analyzer of an index of n blocks whose meta page, metaPage, reads
// as meta; rep receives the report.
func newAnalyzer(opts Options, meta Meta, n uint32, rep *Report, metaPage []byte) *analyzer {
	a := &analyzer{
		opts: opts, meta: meta, nblocks: n, rep: rep,
		isElem:    newBitset(uint64(n) * maxItems),
		changed:   newBitset(uint64(n)),
		hasLiveIn: newBitset(uint64(n) * maxItems),
		next:      make([]uint32, n),
		pending:   map[uint32]pendingElem{},
		unclaimed: map[uint32][]byte{},
		epIdx:     -1,
		sort:      newSorter(uint64(n) * maxItems),
	}
	a.next[0] = pagescan.InvalidBlock
	if !opts.Fence.Holds(metaPage) {
		a.changed.set(0)
		rep.PagesChanged++
	}
	if meta.EntryPoint.Valid() {
		if a.validKey(meta.EntryPoint) {
			a.epKey = key(meta.EntryPoint)
		} else {
			// Past the blocks the scan knew of: an element added since may be the new entry.
			a.faultIf(meta.EntryPoint.Block >= n, suspect{kind: FaultBadEntryPoint})
		}
	}
	return a
}

// page decodes one data page. A page that cannot be decoded is a fault and is skipped. It
// stays one function: one pass over the page's line pointers, each item checked against the
// page's bounds before it is decoded, with the checks beside the reads they guard.
func (a *analyzer) page(block uint32, p []byte) {
	a.next[block] = pagescan.InvalidBlock
	if !a.opts.Fence.Holds(p) {
		a.changed.set(block)
		a.rep.PagesChanged++
	}
	if pagescan.IsNew(p) {
		a.next[block] = block // marks a new page: not expected on the chain
		return
	}
	h, sp, err := pagescan.ParseIndexPage(p, PageID)
	if err != nil {
		a.fault(FaultBadPage)
		return
	}
	a.next[block] = sp.NextBlock
	elems := a.elems[:0]
	defer func() { a.elems = elems[:0] }()
	ntups := &a.ntups
	clear(ntups[:])
	for off := 1; off <= pagescan.ItemCount(h); off++ {
		lp, err := pagescan.LinePointer(p, h, off)
		if err != nil || lp.Flags == pagescan.LPUnused || lp.Flags == pagescan.LPDead {
			continue
		}
		b, err := pagescan.Item(p, h, off)
		if err != nil || off > maxItems {
			a.fault(FaultBadTuple)
			continue
		}
		switch b[0] {
		case elementType:
			e, err := ParseElement(b)
			if err != nil {
				a.fault(FaultBadTuple)
				continue
			}
			k := key(TID{Block: block, Offset: uint16(off)})
			idx := uint32(len(a.flags))
			a.isElem.set(k)
			a.addElement(e, k, len(b))
			elems = append(elems, pageElem{e: e, idx: idx, key: k})
		case neighborType:
			ntups[off] = b
			a.bytesAll += int64(len(b))
		default:
			a.fault(FaultBadTuple)
		}
	}
	for _, el := range elems {
		nt := el.e.Neighbor
		pe := pendingElem{idx: el.idx, key: el.key, version: el.e.Version, level: uint8(el.e.Level), live: el.e.NHeap > 0}
		switch {
		case !nt.Valid() || !a.validKey(nt):
			if !el.e.Deleted {
				// A neighbour tuple on a page added since the scan began is not a fault.
				a.faultIf(nt.Valid() && nt.Block >= a.nblocks && nt.Offset <= maxItems,
					suspect{kind: FaultMissingNeighbors, elem: keyTID(el.key)})
			}
		case nt.Block == block:
			b := ntups[nt.Offset]
			if b == nil {
				a.fault(FaultMissingNeighbors)
				continue
			}
			ntups[nt.Offset] = nil
			a.neighbors(pe, b, el.e.Deleted, block)
		case nt.Block > block:
			a.pending[key(nt)] = pe
		default:
			b, ok := a.unclaimed[key(nt)]
			if !ok {
				a.faultIf(a.blockChanged(block) || a.blockChanged(nt.Block),
					suspect{kind: FaultMissingNeighbors, elem: keyTID(el.key)})
				continue
			}
			delete(a.unclaimed, key(nt))
			a.neighbors(pe, b, el.e.Deleted, nt.Block)
		}
	}
	for off, b := range ntups {
		if b == nil {
			continue
		}
		k := key(TID{Block: block, Offset: uint16(off)})
		if pe, ok := a.pending[k]; ok {
			delete(a.pending, k)
			a.neighbors(pe, b, a.flags[pe.idx]&flagDeleted != 0, block)
			continue
		}
		a.unclaimed[k] = append([]byte(nil), b...)
	}
}

// addElement records an element's state, heap TIDs and space.
func (a *analyzer) addElement(e Element, k uint32, size int) {
	var f uint8
	switch {
	case e.Deleted:
		f = flagDeleted
		a.rep.ElementsDeleted++
	case e.NHeap == 0:
		f = flagBeingDeleted
		a.rep.ElementsBeingDeleted++
	default:
		f = flagLive
		a.rep.ElementsLive++
		for len(a.liveLevels) <= e.Level {
			a.liveLevels = append(a.liveLevels, 0)
		}
		a.liveLevels[e.Level]++
	}
	if a.changed.has(k / maxItems) {
		f |= flagChanged
	}
	if k == a.epKey && a.meta.EntryPoint.Valid() {
		a.epIdx = int64(len(a.flags))
	}
	a.flags = append(a.flags, f)
	a.levels = append(a.levels, uint8(e.Level))
	a.lists = append(a.lists, noList)
	a.bytesAll += int64(size)
	if f&flagLive != 0 {
		a.bytesLive += int64(size)
	} else {
		a.bytesGone += int64(size)
	}
	for i := range e.NHeap {
		a.heapBuf = append(a.heapBuf, e.HeapTIDs[i])
	}
	a.heapTotal += int64(e.NHeap)
}

// neighbors decodes the neighbour tuple b of element pe, read on block ntBlock, and stores its
// neighbour list. It stays one function: each neighbour TID is judged (empty, beyond the
// index, on a page changed during the scan, a duplicate) where it is read, in the order the
// layers are laid out.
func (a *analyzer) neighbors(pe pendingElem, b []byte, deleted bool, ntBlock uint32) {
	if a.changed.has(ntBlock) {
		a.flags[pe.idx] |= flagChanged
	}
	live := a.flags[pe.idx]&flagLive != 0
	// The neighbour tuple's space belongs to its element for the fragmentation ratio.
	if live {
		a.bytesLive += int64(len(b))
	} else {
		a.bytesGone += int64(len(b))
	}
	nt, err := ParseNeighborTuple(b)
	if err != nil {
		a.fault(FaultBadTuple)
		return
	}
	if nt.Version != pe.version {
		// Element and neighbour tuple on two pages read at two moments may be a change
		// seen half done (an insert reusing a deleted slot writes both).
		a.faultIf(a.flags[pe.idx]&flagChanged != 0, suspect{kind: FaultVersionMismatch, elem: keyTID(pe.key)})
		return
	}
	level, m := int(pe.level), a.meta.M
	if nt.Count != (level+2)*m {
		a.fault(FaultBadTuple)
		return
	}
	if deleted {
		return // a deleted element's slots are cleared; it has no edges
	}
	ep := int64(pe.idx) == a.epIdx
	if ep {
		a.epUsed = make([]int64, level+1)
	}
	keys := a.keys[:0]
	dup := false
	for l := level; l >= 0; l-- {
		start, cnt := LayerSlots(level, l, m)
		used := int64(0)
		first := len(keys)
		for i := start; i < start+cnt; i++ {
			t := nt.Slot(i)
			if !t.Valid() {
				continue
			}
			used++
			if !a.validKey(t) {
				// A neighbour on a page added since the scan began is not a fault.
				a.faultIf(t.Block >= a.nblocks && t.Offset <= maxItems,
					suspect{kind: FaultDanglingNeighbor, elem: keyTID(pe.key), ref: t})
				continue
			}
			k := key(t)
			if k == pe.key {
				continue
			}
			keys = append(keys, k)
			if live {
				a.hasLiveIn.set(k)
			}
		}
		if level > 0 && live && !dup {
			dup = a.duplicates(keys[first:])
		}
		if live {
			for len(a.slotsUsed) <= l {
				a.slotsUsed = append(a.slotsUsed, 0)
				a.slotsAvail = append(a.slotsAvail, 0)
			}
			a.slotsUsed[l] += used
			a.slotsAvail[l] += int64(cnt)
		}
		if ep {
			a.epUsed[l] = used
		}
	}
	if len(keys) > 0 {
		n := len(keys)
		u := a.sort.sortUnique(keys)
		// On layer 0 alone, a neighbour listed twice is one the union lists once.
		if level == 0 && live && len(u) < n {
			dup = true
		}
		a.lists[pe.idx] = a.pool.add(u)
	}
	if dup {
		a.rep.DuplicateNeighborElements++
	}
	a.keys = keys
}

// duplicates reports whether one layer's neighbour keys name an element twice. Only elements
// above layer 0 need it (their union over layers may list a neighbour once per layer); the
// few slots of a layer are sorted in scratch space.
func (a *analyzer) duplicates(layer []uint32) bool {
	a.layer = append(a.layer[:0], layer...)
	slices.Sort(a.layer)
	for i := 1; i < len(a.layer); i++ {
		if a.layer[i] == a.layer[i-1] {
			return true
		}
	}
	return false
}

// flushHeap hands collected heap TIDs to the fetcher once a batch is full (or at the end).
func (a *analyzer) flushHeap(ctx context.Context, final bool) {
	if len(a.heapBuf) == 0 || (!final && len(a.heapBuf) < a.opts.HeapBatch) {
		return
	}
	if a.opts.Heap == nil {
		a.heapBuf = a.heapBuf[:0] // only counted
		return
	}
	select {
	case a.fetch.heap <- a.heapBuf:
	case <-ctx.Done():
		return
	}
	select {
	case a.heapBuf = <-a.fetch.free:
	default:
		a.heapBuf = make([]TID, 0, a.opts.HeapBatch)
	}
}

// chain checks that the data pages form one chain from block 1 that holds every initialised
// page once.
func (a *analyzer) chain() {
	if a.nblocks <= 1 {
		return
	}
	seen := newBitset(uint64(a.nblocks))
	for b := uint32(1); b < a.nblocks; {
		if seen.has(b) {
			a.fault(FaultChain) // loop
			break
		}
		seen.set(b)
		nb := a.next[b]
		if nb == b || nb == pagescan.InvalidBlock || nb >= a.nblocks {
			// A page added after Blocks() was read may link past the end: not a fault.
			break
		}
		b = nb
	}
	for b := uint32(1); b < a.nblocks; b++ {
		if !seen.has(b) && a.next[b] != b {
			// pgvector links a new page to the chain in the record that creates it: a page
			// off the chain that was written during the scan was appended after its
			// predecessor was read. Its predecessor's link is not kept, so it stays unconfirmed.
			if a.changed.has(b) {
				a.rep.Unconfirmed++
				continue
			}
			a.fault(FaultChain)
		}
	}
}

// graph walks the edges from the entry point over every layer and counts unreachable elements,
// orphans and dangling neighbours.
func (a *analyzer) graph() {
	rk := newRanker(a.isElem)
	nel := uint32(len(a.flags))
	// Orphans first: hasLiveIn is then free to serve as the walk's visited set, by key, which
	// spares the walk a rank lookup for every neighbour it has already reached.
	var orphans int64
	var k uint32
	for u := range nel {
		k = a.isElem.next(k) // element keys are the set bits of isElem, in order
		// An element written during the scan may have in-links on pages read before: it is
		// counted neither as an orphan nor as unreachable (Report.Unsettled).
		if a.flags[u]&(flagLive|flagChanged) == flagLive && !a.hasLiveIn.has(k) && int64(u) != a.epIdx {
			orphans++
			if len(a.rep.OrphanElements) < a.opts.ListLimit {
				a.rep.OrphanElements = append(a.rep.OrphanElements, keyTID(k))
			}
		}
		k++
	}
	visited := a.hasLiveIn
	clear(visited)
	var dangling []edge
	if a.epIdx >= 0 {
		var held int
		dangling, held = a.walk(rk, visited, uint32(a.epIdx), a.epKey)
		a.rep.StateBytes += int64(held)
	} else if a.meta.EntryPoint.Valid() && a.rep.Faults[FaultBadEntryPoint] == 0 {
		a.faultIf(a.blockChanged(0) || a.blockChanged(a.meta.EntryPoint.Block), suspect{kind: FaultBadEntryPoint})
	}
	var reached int64
	k = 0
	for u := range nel {
		k = a.isElem.next(k)
		seen := visited.has(k)
		if !seen && a.lists[u] != noList {
			// Lists of reached elements were checked during the walk.
			for it := a.pool.list(a.lists[u]); it.more(); {
				if n := it.next(); !a.isElem.has(n) {
					dangling = append(dangling, edge{from: u, to: n})
				}
			}
		}
		switch f := a.flags[u]; {
		case f&flagLive == 0:
		case seen:
			reached++
		case f&flagChanged != 0:
			a.rep.Unsettled++
		case len(a.rep.UnreachableElements) < a.opts.ListLimit:
			a.rep.UnreachableElements = append(a.rep.UnreachableElements, keyTID(k))
		}
		k++
	}
	a.rep.StateBytes += int64(cap(a.flags)+cap(a.levels)) + 4*int64(cap(a.lists)) + int64(a.pool.bytes()) +
		8*int64(len(a.isElem)+len(a.hasLiveIn)) + 4*int64(len(rk.cum)+len(a.next))
	a.rep.Unreachable = a.rep.ElementsLive - reached - a.rep.Unsettled
	a.rep.Orphans = orphans
	a.danglingFaults(dangling)
}

// walk marks in visited (by key) every element reachable from ep (index epIdx, key epKey) and
// returns the dangling neighbours met and the bytes its work list held. Reachability needs no
// order, so rather than a breadth-first queue in random order the walk keeps the elements
// still to expand as a bitset by index and sweeps it in index order, which reads the pool
// front to back: an element reached ahead of the sweep is expanded in the same sweep, one
// behind it in the next, and a few sweeps reach everything. Each CPU sweeps its own range of
// the bitset (the walk runs after the last page arrived, when the database no longer needs
// them); sweeps repeat until one finds nothing to do anywhere.
func (a *analyzer) walk(rk ranker, visited bitset, epIdx, epKey uint32) (dangling []edge, held int) {
	frontier := newBitset(uint64(len(a.flags)))
	visited.set(epKey)
	frontier.set(epIdx)
	workers := max(1, min(runtime.GOMAXPROCS(0), 4, len(frontier)/4)) // a worker costs microseconds
	per := (len(frontier) + workers - 1) / workers
	dangs := make([][]edge, workers)
	busy := make([]bool, workers)
	for more := true; more; {
		var wg sync.WaitGroup
		for w := range workers {
			wg.Go(func() { busy[w] = a.sweep(rk, visited, frontier, w*per, min((w+1)*per, len(frontier)), &dangs[w]) })
		}
		wg.Wait()
		more = slices.Contains(busy, true)
	}
	for _, d := range dangs {
		dangling = append(dangling, d...)
	}
	return dangling, 8 * len(frontier)
}

// sweep expands, in index order, the elements of frontier words [from, to) and those that get
// added there meanwhile; it reports whether it expanded any.
func (a *analyzer) sweep(rk ranker, visited, frontier bitset, from, to int, dangling *[]edge) bool {
	busy := false
	for w := from; w < to; w++ {
		for {
			word := atomic.LoadUint64(&frontier[w])
			if word == 0 {
				break
			}
			busy = true
			bit := bits.TrailingZeros64(word)
			atomic.AndUint64(&frontier[w], ^(uint64(1) << bit))
			u := uint32(w)<<6 | uint32(bit)
			if a.lists[u] == noList {
				continue
			}
			for it := a.pool.list(a.lists[u]); it.more(); {
				k := it.next()
				// Most neighbours were reached before: one bit tells, without a rank.
				// Keys that are no element are never marked, so each of their edges counts.
				if visited.hasAtomic(k) {
					continue
				}
				v, ok := rk.lookup(k)
				if !ok {
					*dangling = append(*dangling, edge{from: u, to: k})
				} else if visited.trySet(k) {
					atomic.OrUint64(&frontier[v>>6], uint64(1)<<(v&63))
				}
			}
		}
	}
	return busy
}

// figures derives the ratios.
func (a *analyzer) figures() {
	rep := a.rep
	rep.HeapTIDsLive = a.heapTotal - rep.HeapTIDsDead
	top := len(a.liveLevels) - 1
	rep.LayerElements = make([]int64, top+1)
	var sum int64
	for l := top; l >= 0; l-- {
		sum += a.liveLevels[l]
		rep.LayerElements[l] = sum
	}
	rep.NeighborFill = make([]float64, len(rep.LayerElements))
	for l := range rep.NeighborFill {
		if l < len(a.slotsAvail) && a.slotsAvail[l] > 0 {
			rep.NeighborFill[l] = float64(a.slotsUsed[l]) / float64(a.slotsAvail[l])
		}
	}
	rep.ConnectivityRatio = 1
	if rep.ElementsLive > 0 {
		rep.ConnectivityRatio = float64(rep.ElementsLive-rep.Unreachable) / float64(rep.ElementsLive)
	}
	rep.EntryPointQuality = a.entryPointQuality()
	if a.bytesAll > 0 {
		gone := float64(a.bytesGone)
		if a.heapTotal > 0 {
			gone += float64(a.bytesLive) * float64(rep.HeapTIDsDead) / float64(a.heapTotal)
		}
		rep.FragmentationRatio = gone / float64(a.bytesAll)
	}
}

// entryPointQuality implements the formula in the package documentation.
func (a *analyzer) entryPointQuality() float64 {
	rep := a.rep
	if rep.ElementsLive == 0 {
		return 1 // an empty graph has nothing to enter
	}
	if a.epIdx < 0 || a.flags[a.epIdx]&flagLive == 0 || a.epUsed == nil {
		return 0
	}
	top := len(rep.LayerElements) - 1
	level := int(a.levels[a.epIdx])
	q := float64(min(level, top)+1) / float64(top+1)
	if level != rep.EntryLevel {
		q *= 0.5
	}
	var used, want int64
	for l := 0; l <= min(level, top); l++ {
		_, slots := LayerSlots(level, l, a.meta.M)
		used += a.epUsed[l]
		want += min(int64(slots), rep.LayerElements[l]-1)
	}
	if want > 0 {
		q *= min(1, float64(used)/float64(want))
	}
	return q
}
