package hnsw_test

import (
	"context"
	"encoding/binary"
	"maps"
	"slices"
	"testing"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// rereadPages is a Reader that serves one set of pages to the scan and, once a new fence has
// been read, another set: the index as it stands when the scan reads a suspect's pages again.
type rereadPages struct {
	scan, reread pagescan.MemReader
	rereading    bool
}

func (p *rereadPages) Blocks(ctx context.Context) (uint32, error) { return p.scan.Blocks(ctx) }

func (p *rereadPages) Read(ctx context.Context, start, count uint32) ([][]byte, error) {
	if p.rereading {
		return p.reread.Read(ctx, start, count)
	}
	return p.scan.Read(ctx, start, count)
}

func setLSN(p []byte, lsn uint64) {
	binary.LittleEndian.PutUint32(p[0:], uint32(lsn>>32))
	binary.LittleEndian.PutUint32(p[4:], uint32(lsn))
}

func clonePages(m pagescan.MemReader) pagescan.MemReader {
	out := make(pagescan.MemReader, len(m))
	for i, p := range m {
		out[i] = slices.Clone(p)
	}
	return out
}

// firstList returns the neighbour tuple of the first live element of block, which must sit on
// the same page, and the element's level.
func firstList(t *testing.T, p []byte, block uint32) (hnsw.NeighborTuple, []byte, int) {
	t.Helper()
	h, _, _ := pagescan.ParseIndexPage(p, hnsw.PageID)
	elems, _ := items(t, p)
	for _, off := range elems {
		eb, _ := pagescan.Item(p, h, off)
		e, _ := hnsw.ParseElement(eb)
		if e.NHeap == 0 || e.Neighbor.Block != block {
			continue
		}
		nb, _ := pagescan.Item(p, h, int(e.Neighbor.Offset))
		nt, err := hnsw.ParseNeighborTuple(nb)
		if err != nil {
			t.Fatal(err)
		}
		return nt, nb, e.Level
	}
	t.Fatalf("no live element with its neighbour tuple on block %d", block)
	return hnsw.NeighborTuple{}, nil, 0
}

// TestFencedFaults points one neighbour slot of a real index at the item a new element would
// take on the last page: what a scan sees when it reads a list just linked to a new element
// after having read the element's page before the insert. Whether that counts as a fault
// depends on the fence: at once when every page involved is older than the fence; after a
// re-read that still shows it when the list's page is newer; never when the re-read shows the
// write completed or the pages keep changing, or when nothing can be read again.
func TestFencedFaults(t *testing.T) {
	b := setup(t)
	ix := b.build(t, 2000, 16, `WITH (m = 8, ef_construction = 32)`)
	clean := b.memPages(t, ix)
	var newest uint64
	for _, p := range clean {
		newest = max(newest, pagescan.PageLSN(p))
	}
	last := uint32(len(clean) - 1)
	lastElems, lastNeighbors := items(t, clean[last])
	next := hnsw.TID{Block: last, Offset: uint16(len(lastElems) + len(lastNeighbors) + 1)}
	damaged := clonePages(clean)
	nt, nb, _ := firstList(t, damaged[1], 1)
	for i := range nt.Count {
		if nt.Slot(i).Valid() {
			pagescan.EncodeTID(nb[4+i*pagescan.TIDSize:], next)
			break
		}
	}
	written := clonePages(damaged)
	setLSN(written[1], newest+100) // the list's page was written after the fence

	at := func(lsn uint64) *pagescan.Fence { return &pagescan.Fence{LSN: lsn, Logged: true} }
	dangling := map[string]int64{hnsw.FaultDanglingNeighbor: 1}
	for _, tc := range []struct {
		name           string
		scan, reread   pagescan.MemReader
		fence, refence *pagescan.Fence
		faults         map[string]int64
		unconfirmed    int64
	}{
		{name: "every page older than the fence: counted at once", scan: damaged, fence: at(newest), faults: dangling},
		{name: "list page newer, nothing can be read again: unconfirmed", scan: written, fence: at(newest), unconfirmed: 1},
		{name: "list page newer, the re-read still shows it: counted", scan: written, reread: written, fence: at(newest), refence: at(newest + 100), faults: dangling},
		{name: "list page newer, the re-read shows the write done: nothing", scan: written, reread: clean, fence: at(newest), refence: at(newest + 100)},
		{name: "list page newer, still newer on every re-read: unconfirmed", scan: written, reread: written, fence: at(newest), refence: at(newest), unconfirmed: 1},
		{name: "unlogged index: no page can be shown unchanged", scan: damaged, reread: damaged, fence: &pagescan.Fence{}, refence: &pagescan.Fence{}, unconfirmed: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &rereadPages{scan: tc.scan, reread: tc.reread}
			opts := hnsw.Options{Fence: tc.fence}
			rereads := 0
			if tc.refence != nil {
				opts.Refence = func(context.Context) (*pagescan.Fence, error) {
					r.rereading = true
					rereads++
					return tc.refence, nil
				}
			}
			rep, err := hnsw.Analyze(b.ctx, r, opts)
			if err != nil {
				t.Fatal(err)
			}
			if !maps.Equal(rep.Faults, tc.faults) || rep.Unconfirmed != tc.unconfirmed {
				t.Errorf("faults %v, unconfirmed %d; want %v, %d", rep.Faults, rep.Unconfirmed, tc.faults, tc.unconfirmed)
			}
			if tc.refence != nil && rereads == 0 {
				t.Error("the suspect was never read again")
			}
		})
	}
}

// TestDuplicateNeighbors lists one neighbour twice on one layer, as pgvector up to 0.8.6 can
// when an insert races a vacuum: on a layer-0 element and on the upper layer of an element
// above layer 0. Each counts once, no fault is reported, and a real build, whose upper-layer
// elements list many neighbours on two layers, counts none.
func TestDuplicateNeighbors(t *testing.T) {
	b := setup(t)
	pages, clean := b.builtPages(t)
	if clean.DuplicateNeighborElements != 0 || len(clean.LayerElements) < 2 {
		t.Fatalf("as built: %d duplicate-neighbour elements over %v elements per layer, want 0 over two layers or more",
			clean.DuplicateNeighborElements, clean.LayerElements)
	}
	// duplicate copies the first valid slot of layer l into the layer's next slot in the list
	// of the first element of the given level found on a page of its own list.
	duplicate := func(level, l int) bool {
		for block := uint32(1); block < uint32(len(pages)); block++ {
			p := pages[block]
			h, _, _ := pagescan.ParseIndexPage(p, hnsw.PageID)
			elems, _ := items(t, p)
			for _, off := range elems {
				eb, _ := pagescan.Item(p, h, off)
				e, _ := hnsw.ParseElement(eb)
				if e.NHeap == 0 || e.Level != level || e.Neighbor.Block != block {
					continue
				}
				nb, _ := pagescan.Item(p, h, int(e.Neighbor.Offset))
				nt, _ := hnsw.ParseNeighborTuple(nb)
				start, n := hnsw.LayerSlots(level, l, 8)
				if n < 2 || !nt.Slot(start).Valid() || !nt.Slot(start+1).Valid() {
					continue
				}
				copy(nb[4+(start+1)*pagescan.TIDSize:], nb[4+start*pagescan.TIDSize:4+(start+1)*pagescan.TIDSize])
				return true
			}
		}
		return false
	}
	if !duplicate(0, 0) || !duplicate(1, 1) {
		t.Fatal("found no element to patch")
	}
	rep, err := hnsw.Analyze(b.ctx, pages, hnsw.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if rep.DuplicateNeighborElements != 2 || len(rep.Faults) != 0 {
		t.Errorf("duplicate-neighbour elements %d, faults %v; want 2 and none", rep.DuplicateNeighborElements, rep.Faults)
	}
}
