// Package hnsw reads the pages of a pgvector HNSW index and measures its graph: element
// states, heap TIDs, layers, reachability from the entry point, orphans, neighbour-slot fill,
// fragmentation and structural faults.
//
// Analyze streams the pages in batches and keeps no page. Per element it keeps its state and
// level (2 bytes), the offset of its neighbour list (4 bytes) and the list itself: the union of
// its neighbours over all layers as a Rice-coded sorted set (about 2 bytes per neighbour), plus
// three bits per possible item position of each page. A corrupt page, tuple or pointer is
// counted in Report.Faults and the analysis goes on.
//
// Definitions:
//
//   - Live element: heaptids[0] valid. Being deleted: no valid heap TID and not marked deleted
//     (between VACUUM passes). Deleted: marked deleted (slot free for reuse).
//   - HeapTIDsLive/Dead: valid heap TIDs of all elements; a TID is dead when Options.Heap says
//     no live row sits behind it. SQLHeap is exact with superuser; without, it cannot follow
//     HOT chains and Report.HeapTIDsExact is false (dead is then an upper bound).
//   - LayerElements[l]: live elements whose level is >= l (every element is on layer 0 and on
//     each layer up to its level), so LayerElements[0] == ElementsLive and the counts are
//     non-increasing.
//   - Edges: every valid slot of an element's neighbour tuple, on any layer, provided the
//     tuple's version equals the element's (otherwise pgvector ignores the tuple too).
//   - Unreachable: live elements not reached by a walk over these edges from the
//     metapage's entry point (the walk passes through elements in any state, as a search
//     does). ConnectivityRatio = (ElementsLive - Unreachable) / ElementsLive, 1 when empty.
//   - Orphans: live elements, other than the entry point, that no live element lists as a
//     neighbour on any layer.
//   - NeighborFill[l]: used slots / available slots of layer l over live elements (m slots per
//     layer above 0, 2m on layer 0).
//   - EntryPointQuality: 0 when the entry point is missing, not live or its neighbour tuple
//     is unusable; 1 for an empty graph; otherwise
//     (min(level, top)+1)/(top+1) × (0.5 if level differs from the metapage's entry level) ×
//     min(1, used/wanted), where level is the entry point's level, top the highest level of
//     any live element, used the entry point's used slots on its layers 0..min(level, top)
//     and wanted the sum over those layers of min(slots of the layer, LayerElements[l]-1),
//     the most neighbours the layer could give it. 1.0 means a live entry point on the top
//     layer with full neighbour lists.
//   - Faults on a busy index: with Options.Fence, a fault counts only when every page that
//     shows it was unchanged since the fence (one state of the index) or, read again under a
//     new fence (Options.Refence), still shows it; the rest are Report.Unconfirmed. Live
//     elements on pages written during the scan that the walk did not reach are
//     Report.Unsettled, neither unreachable nor orphans.
//   - DuplicateNeighborElements: live elements that list one neighbour twice on one layer.
//   - FragmentationRatio: space no live row needs over the space of all element and neighbour
//     tuples (line pointer lengths): (bytes of deleted and being-deleted elements with their
//     neighbour tuples + bytes of live elements with theirs × HeapTIDsDead / all heap TIDs)
//     / bytes of all element and neighbour tuples. Free space on pages is not counted.
package hnsw
