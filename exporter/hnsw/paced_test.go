package hnsw_test

import (
	"context"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

type countingHeap struct{ calls, tids int }

func (c *countingHeap) DeadTIDs(_ context.Context, tids []hnsw.TID) (int64, error) {
	c.calls++
	c.tids += len(tids)
	return 0, nil
}

// TestPacedHeapCountsBlocks: a batch of 100 TIDs on 50 heap blocks costs 50 pages of the
// budget, so at 1000 pages/s the third batch waits for the 100 pages of the first two.
func TestPacedHeapCountsBlocks(t *testing.T) {
	inner := &countingHeap{}
	h := hnsw.PacedHeap(inner, pagescan.NewPacer(1000))
	tids := make([]hnsw.TID, 100)
	for i := range tids {
		tids[i] = hnsw.TID{Block: uint32(i % 50), Offset: uint16(1 + i/50)}
	}
	start := time.Now()
	for range 3 {
		if _, err := h.DeadTIDs(context.Background(), tids); err != nil {
			t.Fatal(err)
		}
	}
	if took := time.Since(start); took < 100*time.Millisecond {
		t.Errorf("three batches of 50 blocks at 1000 pages/s took %v, less than 100ms", took)
	}
	if inner.calls != 3 || inner.tids != 300 {
		t.Errorf("checker saw %d calls of %d TIDs, want 3 of 300", inner.calls, inner.tids)
	}
	if hnsw.PacedHeap(inner, nil) != hnsw.HeapChecker(inner) {
		t.Error("PacedHeap without a pacer is not the checker itself")
	}
}
