package exporter

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
)

// TestAcquireBoundsConcurrency: a check needs a slot of its target and one of the process;
// a waiting check gives up when its context ends, and keeps no slot.
func TestAcquireBoundsConcurrency(t *testing.T) {
	e := &Exporter{global: newSlots(2)}
	a := &target{slots: newSlots(1)}
	b := &target{slots: newSlots(2)}
	c := &target{slots: newSlots(2)}
	ctx := context.Background()
	now := time.Now()
	tryAcquire := func(tg *target) (func(), bool) {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		return e.acquire(ctx, tg, now)
	}

	relA, ok := tryAcquire(a)
	if !ok {
		t.Fatal("first check of a did not start")
	}
	if _, ok := tryAcquire(a); ok {
		t.Fatal("a second check of a started beyond its target limit of 1")
	}
	relB, ok := tryAcquire(b)
	if !ok {
		t.Fatal("first check of b did not start")
	}
	if _, ok := tryAcquire(c); ok {
		t.Fatal("a third check started beyond the global limit of 2")
	}
	if c.slots.free != 2 || len(c.slots.waiting) != 0 {
		t.Fatalf("a check that gave up kept its target slot or its place: %d free, %d waiting", c.slots.free, len(c.slots.waiting))
	}
	relA()
	relC, ok := tryAcquire(c)
	if !ok {
		t.Fatal("check of c did not start after a slot was released")
	}
	relB()
	relC()
	if e.global.free != 2 || a.slots.free != 1 || b.slots.free != 2 || c.slots.free != 2 {
		t.Fatal("slots leaked")
	}
}

// TestSlotsServeLongestDueFirst: with every slot taken, freed slots go to the waiting checks
// in the order they became due, whatever order they started waiting in; one that gives up
// is passed over.
func TestSlotsServeLongestDueFirst(t *testing.T) {
	s := newSlots(1)
	ctx := context.Background()
	if !s.acquire(ctx, time.Now()) {
		t.Fatal("first acquire failed")
	}
	base := time.Now()
	dues := []time.Duration{5, 1, 4, 2, 3} // minutes before base; arrival order
	order := make(chan time.Duration, len(dues))
	gaveUp, cancel := context.WithCancel(ctx)
	for _, d := range dues {
		wctx := ctx
		if d == 4 {
			wctx = gaveUp
		}
		go func() {
			if s.acquire(wctx, base.Add(-d*time.Minute)) {
				order <- d
				s.release()
			}
		}()
	}
	for { // all five waiting
		s.mu.Lock()
		n := len(s.waiting)
		s.mu.Unlock()
		if n == len(dues) {
			break
		}
		time.Sleep(time.Millisecond)
	}
	cancel()
	for { // the one that gave up has left the queue
		s.mu.Lock()
		n := len(s.waiting)
		s.mu.Unlock()
		if n == len(dues)-1 {
			break
		}
		time.Sleep(time.Millisecond)
	}
	s.release()
	var got []time.Duration
	for range len(dues) - 1 {
		got = append(got, <-order)
	}
	want := []time.Duration{5, 3, 2, 1}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("slots granted to checks due %v minutes ago, in that order; want %v", got, want)
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for { // the last one gives its slot back after it reported
		s.mu.Lock()
		free, waiting := s.free, len(s.waiting)
		s.mu.Unlock()
		if free == 1 && waiting == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after all: %d free, %d waiting; want 1 and 0", free, waiting)
		}
		time.Sleep(time.Millisecond)
	}
}

// TestScheduleSpread: first runs are spread over a quarter of the interval and later runs
// over ±10 % of it.
func TestScheduleSpread(t *testing.T) {
	now := time.Now()
	ix := &index{jobs: map[string]*job{}}
	first := map[time.Duration]bool{}
	for i := range 50 {
		ix.jobs = map[string]*job{}
		d := ix.job(kindRecall, now, time.Minute).next.Sub(now)
		if d < 0 || d >= 15*time.Second {
			t.Fatalf("run %d: first run after %s, want within [0, 15s)", i, d)
		}
		first[d] = true
	}
	if len(first) < 10 {
		t.Errorf("first runs not spread: %d distinct delays of 50", len(first))
	}
	tg := &target{}
	for range 50 {
		j := &job{running: true}
		tg.finish(j, time.Minute)
		d := time.Until(j.next)
		if j.running || d < 53*time.Second || d > 66*time.Second {
			t.Fatalf("next run after %s (running %v), want 54s..66s", d, j.running)
		}
	}
}

// TestHistogram accumulates probe latencies into cumulative classic buckets and into native
// buckets.
func TestHistogram(t *testing.T) {
	h := newHistogram(config.DetailLatencyBuckets())
	for b, n := range h.cumulative() {
		if n != 0 {
			t.Fatalf("empty histogram has %d observations at or below %g", n, b)
		}
	}
	for _, v := range []float64{0.0001, 0.003, 0.003, 0.2, 7} {
		h.observe(v)
	}
	c := h.cumulative()
	if h.count != 5 || c[0.0005] != 1 || c[0.0025] != 1 || c[0.005] != 3 || c[0.25] != 4 || c[5] != 4 {
		t.Errorf("count %d, buckets %v", h.count, c)
	}
	if h.sum < 7.2061 || h.sum > 7.2062 {
		t.Errorf("sum %v", h.sum)
	}
	// Native buckets: (2^((i-1)/8), 2^(i/8)]. 0.003 is 2^-8.38, so bucket ceil(-67.07) = -67.
	if h.native[-67] != 2 || h.native[nativeIndex(7)] != 1 || len(h.native) != 4 || h.zero != 0 {
		t.Errorf("native buckets %v, zero %d", h.native, h.zero)
	}
	for _, v := range []float64{0.25, 1, 4} { // powers of two sit on their bucket's upper bound
		if i := nativeIndex(v); math.Exp2(float64(i)/8) != v {
			t.Errorf("native bucket of %v is %d, upper bound %v", v, i, math.Exp2(float64(i)/8))
		}
	}
	if nativeIndex(1.0001) != 1 || nativeIndex(0.9999) != 0 {
		t.Errorf("native buckets around 1: %d, %d; want 1 and 0", nativeIndex(1.0001), nativeIndex(0.9999))
	}
}
