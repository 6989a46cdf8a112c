package hnsw

import (
	"context"
	"fmt"
	"slices"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// A suspect is a fault seen on pages of which at least one was written while the scan ran:
// it may be a state that existed only between two WAL records (an insert writes its element,
// then each neighbour's page in a record of its own; VACUUM rewrites lists, then marks
// elements deleted). It counts only once the pages involved, read again together under a new
// fence, still show it.
type suspect struct {
	kind string
	elem TID // the element whose tuple or list shows the fault; unused for bad_entry_point
	ref  TID // dangling_neighbor: the neighbour it names
}

// edge is a neighbour of element index from that names key to, which holds no element.
type edge struct{ from, to uint32 }

// Bounds of the confirmation: a busy healthy index shows a handful of suspects per scan;
// more than maxSuspects means heavy damage or heavy writes, and the rest stay unconfirmed
// rather than cost a page read each.
const (
	maxSuspects   = 256
	confirmRounds = 3
)

func (a *analyzer) suspect(s suspect) {
	if len(a.suspects) >= maxSuspects {
		a.rep.Unconfirmed++
		return
	}
	a.suspects = append(a.suspects, s)
}

// danglingFaults counts neighbours that name no element: at once when the list and the
// named page were both read unchanged, as suspects otherwise.
func (a *analyzer) danglingFaults(edges []edge) {
	var unsure []edge
	for _, e := range edges {
		if a.flags[e.from]&flagChanged != 0 || a.blockChanged(e.to/maxItems) {
			unsure = append(unsure, e)
			continue
		}
		a.fault(FaultDanglingNeighbor)
	}
	if len(unsure) == 0 {
		return
	}
	// Element indexes follow the set bits of isElem: one pass names them.
	slices.SortFunc(unsure, func(x, y edge) int { return int(x.from) - int(y.from) })
	u, k := uint32(0), a.isElem.next(0) // k is the key of element index u
	for _, e := range unsure {
		for ; u < e.from; u++ {
			k = a.isElem.next(k + 1)
		}
		a.suspect(suspect{kind: FaultDanglingNeighbor, elem: keyTID(k), ref: keyTID(e.to)})
	}
}

// confirm reads the pages of every suspect again, all under one new fence per round, and
// counts as faults those the pages still show. A suspect whose pages changed again is tried
// in the next round; what is left after the last round is counted unconfirmed. Without
// Options.Refence nothing can be read again and every suspect is unconfirmed.
func (a *analyzer) confirm(ctx context.Context, r pagescan.Reader) error {
	pending := a.suspects
	a.suspects = nil
	if a.opts.Refence == nil {
		a.rep.Unconfirmed += int64(len(pending))
		return nil
	}
	for round := 0; round < confirmRounds && len(pending) > 0; round++ {
		f, err := a.opts.Refence(ctx)
		if err != nil {
			return fmt.Errorf("hnsw: fence for a re-read: %w", err)
		}
		n, err := r.Blocks(ctx)
		if err != nil {
			return err
		}
		pr := &rereader{ctx: ctx, r: r, fence: f, nblocks: n, pages: map[uint32][]byte{}}
		var again []suspect
		for _, s := range pending {
			holds, err := pr.recheck(s)
			if err != nil {
				return err
			}
			switch {
			case pr.moved:
				again = append(again, s)
			case holds:
				a.fault(s.kind)
			}
			pr.moved = false
		}
		pending = again
	}
	a.rep.Unconfirmed += int64(len(pending))
	return nil
}

// rereader reads pages again for confirm, each page once per round.
type rereader struct {
	ctx     context.Context
	r       pagescan.Reader
	fence   *pagescan.Fence
	nblocks uint32
	pages   map[uint32][]byte
	moved   bool // a page read for the current suspect changed after the fence
}

// page returns block b read again, and notes when it changed after the fence.
func (p *rereader) page(b uint32) ([]byte, error) {
	pg, ok := p.pages[b]
	if !ok {
		got, err := p.r.Read(p.ctx, b, 1)
		if err != nil {
			return nil, err
		}
		pg = append([]byte(nil), got[0]...)
		p.pages[b] = pg
	}
	if !p.fence.Holds(pg) {
		p.moved = true
	}
	return pg, nil
}

// item returns the item at t on its page read again, or nil when there is none.
func (p *rereader) item(t TID) ([]byte, error) {
	if !t.Valid() || t.Block >= p.nblocks {
		return nil, nil
	}
	pg, err := p.page(t.Block)
	if err != nil {
		return nil, err
	}
	h, _, err := pagescan.ParseIndexPage(pg, PageID)
	if err != nil || int(t.Offset) > pagescan.ItemCount(h) {
		return nil, nil
	}
	b, err := pagescan.Item(pg, h, int(t.Offset))
	if err != nil {
		return nil, nil
	}
	return b, nil
}

// recheck reports whether the pages read again still show s.
func (p *rereader) recheck(s suspect) (bool, error) {
	if s.kind == FaultBadEntryPoint {
		return p.entryPointBad()
	}
	b, err := p.item(s.elem)
	if err != nil || b == nil || b[0] != elementType {
		return false, err // the slot holds no element any more: the state has moved on
	}
	e, err := ParseElement(b)
	if err != nil || e.Deleted {
		return false, nil
	}
	if !e.Neighbor.Valid() {
		return s.kind == FaultMissingNeighbors, nil
	}
	nb, err := p.item(e.Neighbor)
	if err != nil {
		return false, err
	}
	if nb == nil || nb[0] != neighborType {
		return s.kind == FaultMissingNeighbors, nil
	}
	nt, err := ParseNeighborTuple(nb)
	if err != nil {
		return false, nil // a bad tuple is a fault of its own page, counted by the scan
	}
	switch s.kind {
	case FaultVersionMismatch:
		return nt.Version != e.Version, nil
	case FaultDanglingNeighbor:
		if nt.Version != e.Version || !listsSlot(nt, s.ref) {
			return false, nil
		}
		if s.ref.Block >= p.nblocks {
			return true, nil
		}
		rb, err := p.item(s.ref)
		if err != nil {
			return false, err
		}
		return rb == nil || rb[0] != elementType, nil
	}
	return false, nil
}

// entryPointBad reports whether the metapage, read again, names an entry point that is no
// element.
func (p *rereader) entryPointBad() (bool, error) {
	pg, err := p.page(0)
	if err != nil {
		return false, err
	}
	meta, err := ParseMeta(pg)
	if err != nil || !meta.EntryPoint.Valid() {
		return false, nil // a bad metapage is counted by the scan as bad_meta
	}
	b, err := p.item(meta.EntryPoint)
	if err != nil {
		return false, err
	}
	return b == nil || b[0] != elementType, nil
}

// listsSlot reports whether neighbour tuple nt names t in any slot.
func listsSlot(nt NeighborTuple, t TID) bool {
	for i := range nt.Count {
		if nt.Slot(i) == t {
			return true
		}
	}
	return false
}
