package hnsw

import (
	"context"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// TID is a heap or index item pointer.
type TID = pagescan.TID

// HeapChecker tells which heap TIDs no longer point at a live row.
type HeapChecker interface {
	// DeadTIDs returns how many of tids have no live row behind them.
	DeadTIDs(ctx context.Context, tids []TID) (dead int64, err error)
}

// Options tune Analyze.
type Options struct {
	// Heap classifies heap TIDs as live or dead. Nil: every heap TID is counted live.
	Heap HeapChecker
	// Batch is the number of pages read per Reader.Read call; 0 means pagescan.DefaultBatch.
	Batch int
	// HeapBatch is the number of heap TIDs handed to Heap per call; 0 means 4096.
	HeapBatch int
	// ListLimit is how many orphan and unreachable elements Analyze names in the report
	// (Report.OrphanElements, Report.UnreachableElements); 0 names none.
	ListLimit int
	// Fence is the WAL position read before the scan's first page (pagescan.ReadFence). A
	// fault that involves a page written after it is read again before it counts. Nil: the
	// pages are one state (copied from a stopped cluster or built by a test), taken as read.
	Fence *pagescan.Fence
	// Refence reads a new fence, in the session of the Reader, before the pages of suspect
	// faults are read again. Nil: suspects cannot be confirmed and are counted in
	// Report.Unconfirmed.
	Refence func(ctx context.Context) (*pagescan.Fence, error)
}

// Fault kinds counted in Report.Faults.
const (
	FaultBadPage          = "bad_page"          // page header, special area or page id invalid
	FaultBadMeta          = "bad_meta"          // metapage magic, version or fields invalid
	FaultBadTuple         = "bad_tuple"         // item too short, unknown type, level out of range
	FaultVersionMismatch  = "version_mismatch"  // neighbour tuple version differs from its element's
	FaultMissingNeighbors = "missing_neighbors" // element's neighbour TID points at no neighbour tuple
	FaultDanglingNeighbor = "dangling_neighbor" // neighbour slot points at no element tuple
	FaultBadEntryPoint    = "bad_entry_point"   // metapage entry point is not an element tuple
	FaultChain            = "chain"             // page chain from block 1 broken, looping or missing pages
)

// Report is the structure of one HNSW index.
type Report struct {
	Dimensions, M, EfConstruction int
	EntryPoint                    TID
	EntryLevel                    int
	Pages                         uint32

	ElementsLive, ElementsBeingDeleted, ElementsDeleted int64
	HeapTIDsLive, HeapTIDsDead                          int64
	// HeapTIDsExact is false when Options.Heap is nil (all counted live) or reported
	// ErrHeapInexact (HeapTIDsDead is then an upper bound).
	HeapTIDsExact bool

	// LayerElements[l] is the number of live elements present on layer l, that is whose level
	// is >= l. LayerElements[0] == ElementsLive.
	LayerElements []int64
	// Unreachable is the number of live elements not reached from the entry point; Orphans the
	// number of live elements other than the entry point with no live in-neighbour.
	Unreachable, Orphans int64

	ConnectivityRatio, EntryPointQuality, FragmentationRatio float64
	// NeighborFill[l] is used neighbour slots / available slots on layer l over live elements.
	NeighborFill []float64
	// Faults counts structural faults by kind (the Fault* constants): only faults of one
	// consistent state of the index (see Options.Fence).
	Faults map[string]int64
	// Unconfirmed counts faults seen on pages written while the scan ran that a re-read did
	// not settle: states a write passes through, or faults the re-read could not pin down.
	// They are never counted in Faults.
	Unconfirmed int64
	// PagesChanged is the number of pages whose LSN was past Options.Fence when read.
	PagesChanged int64
	// Unsettled is the number of live elements, on pages written while the scan ran, that
	// the walk did not reach: their in-links may sit on pages read before the write. They are
	// counted neither as unreachable nor, when no live element was seen to list them, as
	// orphans.
	Unsettled int64
	// DuplicateNeighborElements is the number of live elements that list one neighbour twice
	// on one layer (pgvector up to 0.8.6: an insert racing a vacuum writes an edge the vacuum
	// just added). Read from one page image each: exact. A rebuild removes them; VACUUM
	// does not.
	DuplicateNeighborElements int64
	// StateBytes is the memory the analysis held for the graph at its peak (per-element
	// arrays, neighbour lists, bitsets, walk queue), excluding pages in flight.
	StateBytes int64
	// OrphanElements and UnreachableElements name the first Options.ListLimit such elements
	// in block order.
	OrphanElements, UnreachableElements []TID
}

// Analyze streams the pages of an HNSW index from r and returns its structure.
func Analyze(ctx context.Context, r pagescan.Reader, opts Options) (*Report, error) {
	return analyze(ctx, r, opts)
}
