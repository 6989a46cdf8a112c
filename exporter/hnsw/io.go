package hnsw

import (
	"context"
	"errors"
	"fmt"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// prefetch is the number of fetched batches that may wait for decoding.
const prefetch = 3

// pageBatch is one Reader.Read result.
type pageBatch struct {
	start uint32
	pages [][]byte
	err   error
}

// fetcher makes every database call of one Analyze from a single goroutine, so that the
// Reader and the HeapChecker may share a connection or transaction, while the caller decodes
// the previous batch: decoding then costs little wall time beyond the fetch.
type fetcher struct {
	pages chan pageBatch
	heap  chan []TID
	free  chan []TID // heap buffers handed back for reuse
	done  chan heapResult
}

type heapResult struct {
	dead    int64
	inexact bool // the checker could not classify every TID exactly
	err     error
}

// startFetcher reads blocks [1, n) of r in batches and classifies the heap TID batches sent
// on f.heap, until ctx ends. The caller must drain f.pages, then close f.heap and read f.done.
func startFetcher(ctx context.Context, r pagescan.Reader, n uint32, batch int, heap HeapChecker) *fetcher {
	f := &fetcher{
		// Up to prefetch batches wait decoded, so a slow stretch of decoding does not stall
		// the fetch (and the reverse); each batch is Options.Batch pages.
		pages: make(chan pageBatch, prefetch),
		heap:  make(chan []TID),
		free:  make(chan []TID, 2),
		done:  make(chan heapResult, 1),
	}
	go f.run(ctx, r, n, batch, heap)
	return f
}

func (f *fetcher) run(ctx context.Context, r pagescan.Reader, n uint32, batch int, heap HeapChecker) {
	var res heapResult
	classify := func(tids []TID) {
		if res.err == nil && heap != nil {
			d, err := heap.DeadTIDs(ctx, tids)
			switch {
			case errors.Is(err, ErrHeapInexact):
				res.inexact = true
			case err != nil:
				res.err = fmt.Errorf("hnsw: classify heap TIDs: %w", err)
			}
			res.dead += d
		}
		select {
		case f.free <- tids[:0]:
		default:
		}
	}
	heapOpen := true
	for start := uint32(1); start < n; {
		cnt := min(n-start, uint32(batch))
		pages, err := r.Read(ctx, start, cnt)
		b := pageBatch{start: start, pages: pages, err: err}
	send:
		for {
			select {
			case f.pages <- b:
				break send
			case tids, ok := <-f.heap:
				if !ok {
					heapOpen = false
					continue
				}
				classify(tids)
			case <-ctx.Done():
				close(f.pages)
				f.done <- heapResult{err: ctx.Err()}
				return
			}
		}
		if err != nil {
			break
		}
		start += cnt
	}
	close(f.pages)
	for heapOpen {
		select {
		case tids, ok := <-f.heap:
			if !ok {
				heapOpen = false
				continue
			}
			classify(tids)
		case <-ctx.Done():
			f.done <- heapResult{err: ctx.Err()}
			return
		}
	}
	f.done <- res
}
