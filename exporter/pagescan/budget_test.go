package pagescan_test

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
)

// TestBudgetFollowsLatency feeds a budget of 100 to 1000 pages/s (factor 2, baseline 10 ms) a
// scripted latency: it halves on every slow window down to the floor, holds between calm and
// slow, and climbs back by a tenth of the range per calm window up to the ceiling.
func TestBudgetFollowsLatency(t *testing.T) {
	b := pagescan.NewBudget(100, 1000, 2)
	if d := b.Observe(0.5); d != pagescan.Hold || b.Rate() != 1000 {
		t.Fatalf("without a baseline: %v at %g, want hold at 1000", d, b.Rate())
	}
	b.SetBaseline(0.010)
	steps := []struct {
		latency float64
		want    pagescan.Decision
		rate    float64
	}{
		{0.010, pagescan.Hold, 1000},     // calm at the ceiling
		{0.021, pagescan.BackOff, 500},   // above 2 × baseline
		{0.018, pagescan.Hold, 500},      // between calm (15 ms) and slow (20 ms)
		{0.020, pagescan.Hold, 500},      // at the threshold is not above it
		{0.100, pagescan.BackOff, 250},   //
		{0.100, pagescan.BackOff, 125},   //
		{0.100, pagescan.BackOff, 100},   // not below the floor
		{0.100, pagescan.Hold, 100},      // at the floor: nothing lowered, not counted
		{math.NaN(), pagescan.Hold, 100}, // no statement in the window
		{0, pagescan.Hold, 100},          //
		{0.015, pagescan.Recover, 190},   // calm: + (1000 − 100) / 10
		{0.012, pagescan.Recover, 280},   //
		{0.050, pagescan.BackOff, 140},   // slow again: halved at once
	}
	for i, s := range steps {
		if d := b.Observe(s.latency); d != s.want || b.Rate() != s.rate {
			t.Fatalf("step %d, latency %g: %v at %g pages/s, want %v at %g", i, s.latency, d, b.Rate(), s.want, s.rate)
		}
	}
	if b.Backoffs() != 5 {
		t.Errorf("%d back-offs, want 5", b.Backoffs())
	}
	for range 20 {
		b.Observe(0.005)
	}
	if b.Rate() != 1000 {
		t.Errorf("after 20 calm windows: %g pages/s, want the ceiling 1000", b.Rate())
	}
}

// TestBudgetStartsWhereAskedWithinBounds: StartAt clamps to the floor and the ceiling and
// ignores a rate that is none.
func TestBudgetStartsWhereAskedWithinBounds(t *testing.T) {
	for _, c := range []struct{ start, want float64 }{
		{50, 50}, {5, 10}, {500, 100}, {0, 100}, {-1, 100}, {math.NaN(), 100}, {math.Inf(1), 100},
	} {
		b := pagescan.NewBudget(10, 100, 2)
		b.StartAt(c.start)
		if b.Rate() != c.want {
			t.Errorf("StartAt(%g): %g pages/s, want %g", c.start, b.Rate(), c.want)
		}
	}
}

// TestBudgetIgnoresBadBaseline: a baseline that is no latency leaves the budget holding.
func TestBudgetIgnoresBadBaseline(t *testing.T) {
	for _, base := range []float64{0, -1, math.NaN(), math.Inf(1)} {
		b := pagescan.NewBudget(10, 100, 1.5)
		b.SetBaseline(base)
		if d := b.Observe(10); d != pagescan.Hold || b.Rate() != 100 {
			t.Errorf("baseline %g: %v at %g, want hold at 100", base, d, b.Rate())
		}
	}
}

// scriptedTuner returns the next of its rates at each call.
type scriptedTuner struct {
	rates []float64
	calls int
	seen  []float64
	err   error
}

func (s *scriptedTuner) Tune(_ context.Context, rate float64) (float64, error) {
	s.seen = append(s.seen, rate)
	if s.err != nil {
		return 0, s.err
	}
	r := s.rates[min(s.calls, len(s.rates)-1)]
	s.calls++
	return r, nil
}

// TestTunedPacerAsksBeforeEachGrant: with no interval, every grant after the first asks the
// tuner, which sees the rate it set before.
func TestTunedPacerAsksBeforeEachGrant(t *testing.T) {
	tu := &scriptedTuner{rates: []float64{1e6, 2e6, 3e6}}
	p := pagescan.NewTunedPacer(1e5, tu, 0)
	ctx := context.Background()
	for range 4 {
		if err := p.Wait(ctx, 1); err != nil {
			t.Fatal(err)
		}
	}
	if want := []float64{1e5, 1e6, 2e6}; len(tu.seen) != 3 || tu.seen[0] != want[0] || tu.seen[1] != want[1] || tu.seen[2] != want[2] {
		t.Errorf("tuner saw rates %v, want %v", tu.seen, want)
	}
	if p.Rate() != 3e6 {
		t.Errorf("rate %g, want 3e6", p.Rate())
	}
}

// TestTunedPacerStopsOnTunerError: a tuner that cannot read its signal stops the scan.
func TestTunedPacerStopsOnTunerError(t *testing.T) {
	bad := errors.New("signal lost")
	p := pagescan.NewTunedPacer(1e6, &scriptedTuner{err: bad}, 0)
	ctx := context.Background()
	if err := p.Wait(ctx, 1); err != nil {
		t.Fatal(err) // the first grant starts the clock
	}
	if err := p.Wait(ctx, 1); !errors.Is(err, bad) {
		t.Fatalf("Wait = %v, want the tuner's error", err)
	}
}
