package exporter

import (
	"context"
	"math"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/config"
)

// TestAcquireBoundsConcurrency: a check needs a slot of its target and one of the global
// semaphore; a waiting check gives up when its context ends.
func TestAcquireBoundsConcurrency(t *testing.T) {
	e := &Exporter{global: make(chan struct{}, 2)}
	a := &target{sem: make(chan struct{}, 1)}
	b := &target{sem: make(chan struct{}, 2)}
	c := &target{sem: make(chan struct{}, 2)}
	ctx := context.Background()
	tryAcquire := func(tg *target) (func(), bool) {
		ctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		defer cancel()
		return e.acquire(ctx, tg)
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
	if len(c.sem) != 0 {
		t.Fatal("a check that gave up kept its target slot")
	}
	relA()
	relC, ok := tryAcquire(c)
	if !ok {
		t.Fatal("check of c did not start after a slot was released")
	}
	relB()
	relC()
	if len(e.global) != 0 || len(a.sem)+len(b.sem)+len(c.sem) != 0 {
		t.Fatal("slots leaked")
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
