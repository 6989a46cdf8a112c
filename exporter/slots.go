package exporter

import (
	"container/heap"
	"context"
	"sync"
	"time"
)

// slots bounds how many background checks run at once, and hands a freed slot to the waiting
// check that has been due the longest: with more due checks than slots (a large fleet, or a
// slow scan of a big index holding one), the most stale figures are refreshed first, so no
// index waits behind others round after round.
type slots struct {
	mu      sync.Mutex
	free    int
	seq     uint64 // orders waiters due at the same instant by arrival
	waiting waiters
}

func newSlots(n int) *slots { return &slots{free: max(n, 1)} }

// waiter is a check waiting for a slot; ready is closed when the slot is handed to it.
type waiter struct {
	due   time.Time
	seq   uint64
	ready chan struct{}
	at    int // position in the heap; -1 once granted or gone
}

// acquire takes a slot, waiting behind the checks due earlier than due; it returns false when
// ctx ends first.
func (s *slots) acquire(ctx context.Context, due time.Time) bool {
	s.mu.Lock()
	if s.free > 0 && len(s.waiting) == 0 {
		s.free--
		s.mu.Unlock()
		return true
	}
	s.seq++
	w := &waiter{due: due, seq: s.seq, ready: make(chan struct{})}
	heap.Push(&s.waiting, w)
	s.mu.Unlock()
	select {
	case <-w.ready:
		return true
	case <-ctx.Done():
	}
	s.mu.Lock()
	granted := w.at < 0
	if !granted {
		heap.Remove(&s.waiting, w.at)
	}
	s.mu.Unlock()
	if granted {
		s.release() // handed over while giving up: pass it on
	}
	return false
}

// release gives a slot back: to the waiter due the longest, else to the pool.
func (s *slots) release() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.waiting) > 0 {
		w := heap.Pop(&s.waiting).(*waiter)
		close(w.ready)
		return
	}
	s.free++
}

// waiters is a min-heap of waiters by due time, then arrival.
type waiters []*waiter

func (h waiters) Len() int { return len(h) }
func (h waiters) Less(i, j int) bool {
	if !h[i].due.Equal(h[j].due) {
		return h[i].due.Before(h[j].due)
	}
	return h[i].seq < h[j].seq
}
func (h waiters) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].at, h[j].at = i, j
}
func (h *waiters) Push(x any) {
	w := x.(*waiter)
	w.at = len(*h)
	*h = append(*h, w)
}
func (h *waiters) Pop() any {
	old := *h
	w := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	w.at = -1
	return w
}
