package hnsw

import (
	"encoding/binary"
	"fmt"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// On-disk constants of pgvector 0.8 (src/hnsw.h).
const (
	PageID        = 0xFF90
	metaMagic     = 0xA953A953
	metaVersion   = 1
	heapTIDSlots  = 10
	elementType   = 1
	neighborType  = 2
	elementHeader = 72 // bytes before the value
	// maxItems bounds the line pointers of an HNSW page: every item is at least 80 bytes (an
	// element tuple with the smallest value, MAXALIGNed) plus its 4-byte line pointer. Element
	// offsets above it cannot exist, so it spaces the keys of the graph's TIDs.
	maxItems = (pagescan.PageSize - pagescan.HeaderSize - pagescan.SpecialSize) / (4 + 80)
)

// Meta is the HNSW metapage.
type Meta struct {
	Dimensions     int
	M              int
	EfConstruction int
	EntryPoint     TID
	EntryLevel     int
	InsertPage     uint32
}

// ParseMeta decodes block 0 of an HNSW index.
func ParseMeta(p []byte) (Meta, error) {
	c, err := pagescan.MetapageContent(p, PageID, metaMagic, metaVersion)
	if err != nil {
		return Meta{}, err
	}
	m := Meta{
		Dimensions:     int(binary.LittleEndian.Uint32(c[8:])),
		M:              int(binary.LittleEndian.Uint16(c[12:])),
		EfConstruction: int(binary.LittleEndian.Uint16(c[14:])),
		EntryPoint:     TID{Block: binary.LittleEndian.Uint32(c[16:]), Offset: binary.LittleEndian.Uint16(c[20:])},
		EntryLevel:     int(int16(binary.LittleEndian.Uint16(c[22:]))),
		InsertPage:     binary.LittleEndian.Uint32(c[24:]),
	}
	// pgvector allows m in 2..100; anything else cannot lay out neighbour tuples.
	if m.M < 2 || m.M > 100 {
		return m, fmt.Errorf("%w: metapage m=%d", pagescan.ErrBadPage, m.M)
	}
	return m, nil
}

// Element is the fixed part of an element tuple.
type Element struct {
	Level    int
	Deleted  bool
	Version  uint8
	HeapTIDs [heapTIDSlots]TID
	NHeap    int // valid heap TIDs, from slot 0 up to the first invalid one
	Neighbor TID // the element's neighbour tuple
}

// ParseElement decodes an element tuple (item type 1).
func ParseElement(b []byte) (Element, error) {
	if len(b) < elementHeader+4 || b[0] != elementType {
		return Element{}, fmt.Errorf("%w: not an element tuple (%d bytes)", pagescan.ErrBadPage, len(b))
	}
	e := Element{Level: int(b[1]), Deleted: b[2] != 0, Version: b[3]}
	for i := range heapTIDSlots {
		e.HeapTIDs[i] = pagescan.DecodeTID(b[4+i*pagescan.TIDSize:])
	}
	for e.NHeap < heapTIDSlots && e.HeapTIDs[e.NHeap].Valid() {
		e.NHeap++
	}
	e.Neighbor = pagescan.DecodeTID(b[64:])
	return e, nil
}

// NeighborTuple is a neighbour tuple (item type 2); Slots holds the raw TIDs, top layer first.
type NeighborTuple struct {
	Version uint8
	Count   int
	slots   []byte
}

// ParseNeighborTuple decodes a neighbour tuple, checking that its slots fit in b.
func ParseNeighborTuple(b []byte) (NeighborTuple, error) {
	if len(b) < 4 || b[0] != neighborType {
		return NeighborTuple{}, fmt.Errorf("%w: not a neighbour tuple (%d bytes)", pagescan.ErrBadPage, len(b))
	}
	n := NeighborTuple{Version: b[1], Count: int(binary.LittleEndian.Uint16(b[2:]))}
	if 4+n.Count*pagescan.TIDSize > len(b) {
		return NeighborTuple{}, fmt.Errorf("%w: neighbour tuple of %d slots in %d bytes", pagescan.ErrBadPage, n.Count, len(b))
	}
	n.slots = b[4 : 4+n.Count*pagescan.TIDSize]
	return n, nil
}

// Slot returns neighbour slot i (0-based).
func (n NeighborTuple) Slot(i int) TID { return pagescan.DecodeTID(n.slots[i*pagescan.TIDSize:]) }

// LayerSlots returns the first slot and the number of slots of layer l in the neighbour tuple
// of an element of level level with parameter m: layers run from the top down, m slots each,
// except layer 0, which has 2m.
func LayerSlots(level, l, m int) (start, n int) {
	if l == 0 {
		return level * m, 2 * m
	}
	return (level - l) * m, m
}
