package pagescan

import "math"

// Budget is an adaptive page budget: additive increase, multiplicative decrease (AIMD)
// between Min and Max pages per second, driven by the application's latency against a
// baseline taken before the scan. It is pure logic: the caller measures the latency and
// applies the rate (a Tuner of a Pacer). It is not safe for concurrent use.
//
// Halving on a slow window and adding back a tenth of the range per calm one is TCP's answer
// to the same question (how hard may I push a shared resource I cannot see): the scan yields
// fast when the application suffers and takes its share back slowly, so one noisy window
// costs a little scan time, not the application's tail.
type Budget struct {
	min, max, factor float64
	rate             float64
	baseline         float64 // seconds per statement; 0 until SetBaseline
	backoffs         int
}

// Decision is what one observation of the latency made of the budget.
type Decision int

const (
	// Hold keeps the rate: no baseline or no latency to judge, or a latency between calm and
	// slow, or a rate already at its bound.
	Hold Decision = iota
	// BackOff halved the rate (not below Min): the latency was above baseline × factor.
	BackOff
	// Recover added a tenth of Max−Min to the rate (not above Max): the latency was calm.
	Recover
)

func (d Decision) String() string {
	switch d {
	case BackOff:
		return "back off"
	case Recover:
		return "recover"
	default:
		return "hold"
	}
}

// NewBudget returns a Budget at max pages per second that backs off towards min when the
// latency rises above the baseline times factor. The caller validates 0 < min <= max and
// factor > 1.
func NewBudget(min, max, factor float64) *Budget {
	return &Budget{min: min, max: max, factor: factor, rate: max}
}

// StartAt sets the rate, within Min and Max, for a budget that should not start at Max: one that
// goes on from where an earlier scan left off. A rate that is not positive is ignored.
func (b *Budget) StartAt(rate float64) {
	if rate > 0 && !math.IsInf(rate, 0) {
		b.rate = min(b.max, max(b.min, rate))
	}
}

// Rate is the budget in pages per second.
func (b *Budget) Rate() float64 { return b.rate }

// Backoffs is how many times the budget was lowered.
func (b *Budget) Backoffs() int { return b.backoffs }

// Baseline is the latency, in seconds, the budget compares with; 0 before SetBaseline.
func (b *Budget) Baseline() float64 { return b.baseline }

// SetBaseline sets the application's latency without the scan, in seconds per statement.
// Without one (or with one that is not positive) every observation holds the rate.
func (b *Budget) SetBaseline(latency float64) {
	if latency > 0 && !math.IsInf(latency, 0) {
		b.baseline = latency
	}
}

// calm is the latency under which the budget grows again: halfway between the baseline and
// the back-off threshold. Between the two it holds, so that a latency hovering near the
// threshold does not make the rate saw up and down on every window.
func (b *Budget) calm() float64 { return b.baseline * (1 + (b.factor-1)/2) }

// Observe takes the application's latency of the last window, in seconds per statement, and
// returns what it did to the rate. A latency that is not a positive number holds.
func (b *Budget) Observe(latency float64) Decision {
	if b.baseline <= 0 || !(latency > 0) || math.IsInf(latency, 0) {
		return Hold
	}
	switch {
	case latency > b.baseline*b.factor:
		if b.rate <= b.min {
			return Hold
		}
		b.rate = max(b.min, b.rate/2)
		b.backoffs++
		return BackOff
	case latency <= b.calm():
		if b.rate >= b.max {
			return Hold
		}
		b.rate = min(b.max, b.rate+(b.max-b.min)/10)
		return Recover
	default:
		return Hold
	}
}
