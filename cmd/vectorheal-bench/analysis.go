package main

import (
	"context"
	"fmt"
	"os"
	"runtime/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/exporter/hnsw"
	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/heapwatch"
)

// readOnly runs fn in a read-only transaction whose statements stop after timeout, as the
// exporter runs its structure scan.
func (b *bench) readOnly(ctx context.Context, timeout time.Duration, fn func(tx pgx.Tx) error) error {
	ctx, cancel := context.WithTimeout(ctx, timeout+2*time.Second)
	defer cancel()
	tx, err := b.pool.BeginTx(ctx, pgx.TxOptions{AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("begin read-only transaction: %w", err)
	}
	defer func() { _ = tx.Rollback(context.WithoutCancel(ctx)) }()
	if _, err := tx.Exec(ctx, `SELECT set_config('statement_timeout', $1, true)`, strconv.FormatInt(timeout.Milliseconds(), 10)); err != nil {
		return fmt.Errorf("set statement_timeout: %w", err)
	}
	return fn(tx)
}

// fetch reads every page of the index with the exporter's reader and does nothing with them.
func (b *bench) fetch(ctx context.Context) error {
	return b.readOnly(ctx, b.o.analysisLimit, func(tx pgx.Tx) error {
		r := pagescan.NewSQLReader(tx, b.ix.OID, b.o.batch, pagescan.RawPageFunc)
		return pagescan.Scan(ctx, r, b.o.batch, func(uint32, []byte) error { return nil })
	})
}

// analyze runs the structure analysis as the exporter's scan does: the same reader in a
// read-only transaction, index and heap pages paced together when pagesPerSec > 0; with heap, dead heap TIDs are classified
// against the table too (the exporter always does; the comparison with the fetch leaves it
// out, so that both read the same pages and nothing else).
func (b *bench) analyze(ctx context.Context, heap bool, pagesPerSec float64) (*hnsw.Report, error) {
	var rep *hnsw.Report
	err := b.readOnly(ctx, b.o.analysisLimit, func(tx pgx.Tx) error {
		pacer := pagescan.NewPacer(pagesPerSec)
		r := pagescan.Paced(pagescan.NewSQLReader(tx, b.ix.OID, b.o.batch, pagescan.RawPageFunc), pacer)
		opts := hnsw.Options{Batch: b.o.batch, HeapBatch: b.o.heapBatch}
		if heap {
			opts.Heap = hnsw.PacedHeap(hnsw.SQLHeap(tx, b.ix), pacer)
		}
		var err error
		rep, err = hnsw.Analyze(ctx, r, opts)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("analyze %s: %w", b.ix, err)
	}
	return rep, nil
}

// adaptiveScan runs the exporter's own structure scan of the data set's database
// (exporter.Report, the recall probe off) with the adaptive page budget of the options, so
// that what is measured is the code the exporter runs: the baseline before the scan, then the
// budget tuned by the queries' latency in pg_stat_statements.
func (b *bench) adaptiveScan(ctx context.Context) error {
	_, err := b.exporterScan(ctx, config.StructureCheck{MaxPagesPerSecond: b.o.pagesPerSec, Adaptive: true,
		MinPagesPerSecond: b.o.minPagesPerSec, LatencyFactor: b.o.latencyFactor, AdjustInterval: b.o.adjustInterval})
	return err
}

// exporterScan runs the exporter's own structure scan (exporter.Report, the recall probe off)
// of the data set's database with the page budget of sc and the report's options, and fails
// when the scan of an index failed.
func (b *bench) exporterScan(ctx context.Context, sc config.StructureCheck, opts ...exporter.ReportOption) (*exporter.DatabaseReport, error) {
	limit := b.o.analysisLimit
	sc.Check = config.Check{Interval: limit, Timeout: limit}
	cfg := config.Exporter{
		PageBatch:         b.o.batch,
		StatisticsTimeout: 30 * time.Second,
		PageReaderSchema:  config.DefaultPageReaderSchema,
		Structure:         sc,
		Recall:            config.RecallCheck{Check: config.Check{Disabled: true}},
	}
	rep, err := exporter.Report(ctx, b.pool, cfg, opts...)
	if err != nil {
		return nil, fmt.Errorf("structure scan: %w", err)
	}
	for _, ix := range rep.Indexes {
		if len(ix.Errors) > 0 {
			return nil, fmt.Errorf("structure scan of %s: %s", ix.Indexrelname, strings.Join(ix.Errors, "; "))
		}
	}
	return rep, nil
}

// analysisVsFetch measures, o.runs times, the fetch of all pages and the analysis of the same
// pages back to back on a warm buffer cache, alternating which goes first, and prints the
// ratio of each pair, their spread, and the analysis state per element.
func (b *bench) analysisVsFetch(ctx context.Context) error {
	if err := b.fetch(ctx); err != nil { // warm the caches for both
		return err
	}
	if b.o.cpuprofile != "" {
		f, err := os.Create(b.o.cpuprofile)
		if err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return fmt.Errorf("cpu profile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	b.printf("## Analysis against fetch (%d pages per query, heap check off)\n\n", b.o.batch)
	b.printf("| run | first | fetch | analysis | ratio | state B/element | load average |\n|---|---|---|---|---|---|---|\n")
	var ratios []float64
	var rep *hnsw.Report
	for i := range b.o.runs {
		var tf, ta time.Duration
		measureFetch := func() error {
			t := time.Now()
			err := b.fetch(ctx)
			tf = time.Since(t)
			return err
		}
		measureAnalysis := func() error {
			t := time.Now()
			var err error
			rep, err = b.analyze(ctx, false, 0)
			ta = time.Since(t)
			return err
		}
		first, steps := "fetch", []func() error{measureFetch, measureAnalysis}
		if i%2 == 1 {
			first, steps = "analysis", []func() error{measureAnalysis, measureFetch}
		}
		for _, s := range steps {
			if err := s(); err != nil {
				return err
			}
		}
		r := ta.Seconds() / tf.Seconds()
		ratios = append(ratios, r)
		b.printf("| %d | %s | %.3f s | %.3f s | %.2f | %.1f | %s |\n", i+1, first, tf.Seconds(), ta.Seconds(), r,
			float64(rep.StateBytes)/float64(elements(rep)), loadAverage())
	}
	if b.o.cpuprofile != "" {
		pprof.StopCPUProfile()
	}
	lo, med, hi := spread(ratios)
	b.printf("\nratio analysis / fetch: min %.2f, median %.2f, max %.2f over %d runs\n", lo, med, hi, len(ratios))
	peak := heapwatch.Peak(func() { _, _ = b.analyze(ctx, false, 0) })
	el := elements(rep)
	b.printf("elements %d, pages %d, layers %v, unreachable %d, orphans %d, faults %v\n", el, rep.Pages, rep.LayerElements,
		rep.Unreachable, rep.Orphans, rep.Faults)
	b.printf("analysis state %.1f B/element (Report.StateBytes %d); peak heap above the start %.1f B/element\n\n",
		float64(rep.StateBytes)/float64(el), rep.StateBytes, float64(peak)/float64(el))
	return nil
}

func elements(rep *hnsw.Report) int64 {
	return rep.ElementsLive + rep.ElementsBeingDeleted + rep.ElementsDeleted
}

// spread returns the minimum, median and maximum of xs.
func spread(xs []float64) (lo, med, hi float64) {
	s := slices.Clone(xs)
	slices.Sort(s)
	n := len(s)
	med = s[n/2]
	if n%2 == 0 {
		med = (s[n/2-1] + s[n/2]) / 2
	}
	return s[0], med, s[n-1]
}

// loadAverage is the one-minute load average of the machine, to read the runs by: the cores
// are shared.
func loadAverage() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	for i, c := range b {
		if c == ' ' {
			return string(b[:i])
		}
	}
	return "?"
}
