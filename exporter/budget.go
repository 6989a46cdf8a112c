package exporter

import (
	"context"
	"fmt"
	"log/slog"
	"math"
	"sync"
	"time"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
)

// The adaptive page budget (exporter.structure.adaptive) follows the application's latency as
// the database itself records it: the statements that use a vector distance operator, from
// pg_stat_statements, with vectorheal's probes (probeMarker) left out (statementsSQL, the
// statements of pgvector_query_*). Of the statements that ended in a window it takes the mean
// execution time plus twice their standard deviation (tailLatency). Why this signal:
//   - it is the latency of the queries that compete with the scan for the same index's
//     buffers, I/O and CPU, and of no others: a batch job's long statements elsewhere in the
//     database would move it without the scan being the cause;
//   - a scan shows in the application's tail first: measured with cmd/vectorheal-bench
//     (docs/BENCHMARKS.md), scans at 5,000 pages/s raised the queries' p50 by 2 to 47 % and
//     their p99 1.7 to 23 times, so a mean moves little while the tail suffers.
//     pg_stat_statements keeps no percentiles, but its per-entry standard deviation gives the
//     window's, and a few slow statements raise it far more than the mean;
//   - it costs one read of a shared-memory view per window, adds no query load, and counts
//     every application statement, where timing a search of vectorheal's own would add load to
//     measure load and judge on a handful of searches;
//   - vectorheal's own statements cannot move it: the page and heap reads use no distance
//     operator and every probe starts with the marker.
// It is execution time on the server, so a client's network or pool waits are not in it; they
// are not what a page scan changes either.
//
// Without the signal (pg_stat_statements not installed, a role without pg_read_all_stats that
// sees only its own statements, or fewer than minWindowCalls statements before the scan) the
// scan keeps exporter.structure.max_pages_per_second: the fixed budget of old.

// minWindowCalls is the fewest statements a window is judged on: with fewer, one or two slow
// statements decide, and a standard deviation of a few is mostly noise. A window with fewer
// is extended until it has them (10 statements a second fill a window of 5 s).
const minWindowCalls = 50

// baselineWindows is how many adjust intervals the latency before a scan is measured over at
// most, waiting for minWindowCalls statements.
const baselineWindows = 3

// tailLatency returns, for the statements that ended between prev and st, their mean
// execution time plus twice its standard deviation, in seconds: a tail the window's
// statements seldom exceed. ok is false with fewer than minWindowCalls of them, or when the
// totals went back (pg_stat_statements_reset, entries evicted).
func (st statementTotals) tailLatency(prev statementTotals) (latency float64, ok bool) {
	calls, secs, squares := st.calls-prev.calls, st.seconds-prev.seconds, st.squares-prev.squares
	if calls < minWindowCalls || secs < 0 || squares < 0 {
		return 0, false
	}
	mean := secs / calls
	// Rounding of the cumulative sums can leave a variance a hair below 0.
	variance := max(0, squares/calls-mean*mean)
	return mean + 2*math.Sqrt(variance), true
}

// scanBudget is what the structure scans of one target report of their page budget
// (vectorheal_structure_scan_budget_pages_per_second, _backoffs_total). With several scans
// of a target at once, the gauge is the latest rate any of them set. It has its own lock: a
// scan writes it while the target's state is read.
type scanBudget struct {
	mu       sync.Mutex
	logger   *slog.Logger
	rate     float64 // pages per second; 0 before the first paced scan
	backoffs float64
	noSignal string // why the last adaptive scan kept the fixed budget, "" when it adapted
	judged   bool   // whether an adaptive scan has looked for its signal yet
}

// set notes the rate a scan reads at now. A nil b notes nothing.
func (b *scanBudget) set(rate float64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate = rate
}

// decided notes a decision of an adaptive budget.
func (b *scanBudget) decided(ix catalog.Index, d pagescan.Decision, latency, baseline, rate float64) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.rate = rate
	if d == pagescan.BackOff {
		b.backoffs++
	}
	if d != pagescan.Hold && b.logger != nil {
		b.logger.Debug("structure scan page budget", "index", ix.String(), "decision", d.String(),
			"pages_per_second", rate, "latency_seconds", latency, "baseline_seconds", baseline)
	}
}

// current is the rate noted last, 0 for a nil b or before the first paced scan.
func (b *scanBudget) current() float64 {
	if b == nil {
		return 0
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.rate
}

// signal notes whether an adaptive scan found its signal (why == "") or kept the fixed budget,
// and logs when that changes.
func (b *scanBudget) signal(why string) {
	if b == nil {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if (why != b.noSignal || !b.judged) && b.logger != nil {
		if why == "" {
			b.logger.Info("structure scans adapt their page budget to the application's latency")
		} else {
			b.logger.Info("structure scans keep the fixed page budget", "why", why)
		}
	}
	b.noSignal, b.judged = why, true
}

// emit sends the target's page budget once a paced scan has run; back-offs with an adaptive
// budget only.
func (b *scanBudget) emit(m emitter, target string, adaptive bool) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.rate <= 0 {
		return
	}
	m.gauge("vectorheal_structure_scan_budget_pages_per_second", b.rate, target)
	if adaptive {
		m.counter("vectorheal_structure_scan_backoffs_total", b.backoffs, target)
	}
}

// measureBaseline measures the application's latency before a scan on q (the server the scan
// reads on): windows of every until one holds minWindowCalls statements, baselineWindows at
// most. why says, when there is none (latency 0), why. Each read is bounded by readTimeout
// (none when 0): it runs outside the scan's transaction and its statement_timeout.
func measureBaseline(ctx context.Context, q catalog.Querier, every, readTimeout time.Duration) (latency float64, why string, err error) {
	read := func() (statementTotals, bool, error) {
		ctx := ctx
		if readTimeout > 0 {
			var cancel context.CancelFunc
			ctx, cancel = context.WithTimeout(ctx, readTimeout)
			defer cancel()
		}
		return readStatements(ctx, q)
	}
	start, has, err := read()
	if err != nil {
		// Not fatal to the scan: the budget falls back to the fixed rate.
		return 0, fmt.Sprintf("application latency unreadable: %v", err), nil
	}
	if !has {
		return 0, "pg_stat_statements is not installed in the database", nil
	}
	for range baselineWindows {
		t := time.NewTimer(every)
		select {
		case <-ctx.Done():
			t.Stop()
			return 0, "", ctx.Err()
		case <-t.C:
		}
		cur, _, err := read()
		if err != nil {
			return 0, fmt.Sprintf("application latency unreadable: %v", err), nil
		}
		if latency, ok := cur.tailLatency(start); ok {
			return latency, "", nil
		}
	}
	return 0, fmt.Sprintf("fewer than %d application statements with a vector operator in %s (or a role without pg_read_all_stats)",
		minWindowCalls, baselineWindows*every), nil
}

// latencyTuner is the pagescan.Tuner of an adaptive scan: each window it reads the
// application's latency on the scan's own transaction and lets a pagescan.Budget decide the
// rate. It runs between the scan's reads, on the scan's goroutine.
type latencyTuner struct {
	q      catalog.Querier
	ix     catalog.Index
	budget *pagescan.Budget
	last   statementTotals // the start of the current window
	report *scanBudget
}

func (l *latencyTuner) Tune(ctx context.Context, rate float64) (float64, error) {
	cur, _, err := readStatements(ctx, l.q)
	if err != nil {
		return 0, err // the transaction is aborted: the scan cannot go on
	}
	latency, ok := cur.tailLatency(l.last)
	if !ok {
		if cur.calls < l.last.calls || cur.seconds < l.last.seconds {
			l.last = cur // the totals went back: start the window again
		}
		return rate, nil // too few statements: the window grows until it holds enough
	}
	l.last = cur
	d := l.budget.Observe(latency)
	l.report.decided(l.ix, d, latency, l.budget.Baseline(), l.budget.Rate())
	return l.budget.Rate(), nil
}

// newScanPacer returns the pacer of one scan of ix on q, the scan's transaction: nil without a
// budget, a fixed one, or with exporter.structure.adaptive and a baseline (the application's
// latency before the scan, 0 when none could be measured) one the application's latency tunes.
func newScanPacer(ctx context.Context, q catalog.Querier, ix catalog.Index, sc config.StructureCheck, baseline float64, report *scanBudget) (*pagescan.Pacer, error) {
	if !(sc.MaxPagesPerSecond > 0) {
		return nil, nil
	}
	if !sc.Adaptive || baseline <= 0 {
		report.set(sc.MaxPagesPerSecond)
		return pagescan.NewPacer(sc.MaxPagesPerSecond), nil
	}
	// The first window starts with the scan, on its transaction.
	start, _, err := readStatements(ctx, q)
	if err != nil {
		return nil, err
	}
	b := pagescan.NewBudget(sc.Floor(), sc.MaxPagesPerSecond, sc.LatencyFactor)
	b.SetBaseline(baseline)
	// A scan starts where the target's previous scan left off, not at the ceiling: no window is
	// judged before the first adjust_interval has passed, and a scan that starts at a ceiling
	// its predecessor had to leave hits the application for that long (docs/BENCHMARKS.md).
	// One that left off low climbs back in at most 10 calm windows.
	b.StartAt(report.current())
	report.set(b.Rate())
	tu := &latencyTuner{q: q, ix: ix, budget: b, last: start, report: report}
	return pagescan.NewTunedPacer(b.Rate(), tu, sc.AdjustInterval), nil
}
