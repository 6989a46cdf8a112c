// Package heapwatch measures the heap a piece of work holds at its peak, for the benchmarks that
// report bytes of analysis state per element.
package heapwatch

import (
	"runtime"
	"runtime/debug"
	"sync/atomic"
	"time"
)

// Peak runs fn with a tight GC target and returns the highest heap in use above the
// starting point, sampled every millisecond: the graph plus the pages and rows in flight.
func Peak(fn func()) uint64 {
	old := debug.SetGCPercent(10)
	defer debug.SetGCPercent(old)
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	base := ms.HeapAlloc
	var peak atomic.Uint64
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		var m runtime.MemStats
		for {
			select {
			case <-done:
				return
			case <-time.After(time.Millisecond):
			}
			runtime.ReadMemStats(&m)
			if m.HeapAlloc > base && m.HeapAlloc-base > peak.Load() {
				peak.Store(m.HeapAlloc - base)
			}
		}
	}()
	fn()
	close(done)
	<-stopped
	return peak.Load()
}
