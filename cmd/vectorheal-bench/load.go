package main

import (
	"bytes"
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
)

// topKSQL is the application's query: the k nearest rows to a query vector through the index.
const topKSQL = `SELECT id FROM items ORDER BY v <-> $1::vector LIMIT $2`

// phaseResult is what one query load phase measured.
type phaseResult struct {
	lat      []time.Duration // from each query's scheduled start to its last row
	errors   int
	analyses int // analyses completed during the phase
	analysis time.Duration
}

func (r phaseResult) quantile(q float64) time.Duration {
	if len(r.lat) == 0 {
		return 0
	}
	return r.lat[max(0, int(math.Ceil(q*float64(len(r.lat))))-1)]
}

// queryLoad runs o.pairs pairs of phases of a steady top-k query load, one phase without and
// one with structure analyses running back to back, alternating which comes first, and prints
// the p99 of each phase and the ratio of each pair. With a standby, each pair of the analysis
// on the primary has a twin with the analysis reading the standby, the two alternating which
// comes first, so that both meet the same machine.
func (b *bench) queryLoad(ctx context.Context) error {
	queries := queryVectors(2000, b.o.dim)
	qps := b.o.qps
	if qps == 0 {
		capacity, err := b.capacity(ctx, queries, 5*time.Second)
		if err != nil {
			return err
		}
		qps = capacity * b.o.loadShare
		b.printf("query capacity with %d clients back to back: %.0f queries/s; load set to %.0f%% of it\n", b.o.clients, capacity, 100*b.o.loadShare)
	}
	budget, err := b.budget(ctx)
	if err != nil {
		return err
	}
	heapBatch := "default"
	if b.o.heapBatch > 0 {
		heapBatch = strconv.Itoa(b.o.heapBatch)
	}
	b.printf("\n## Query p99 with and without a concurrent analysis (%d clients, %.0f queries/s, top-%d, page budget %s, heap batch %s, analysing process nice %d)\n\n",
		b.o.clients, qps, b.o.k, budget, heapBatch, b.o.analyserNice)
	if b.standby != nil {
		b.printf("Reading on the standby: the exporter's structure scan with the index read on the standby, no page budget; statistics read on the primary.\n\n")
	}
	if b.o.control {
		b.printf("Control: pairs of two phases without an analysis (its \"with\" phase has none), the ratio a pair shows when nothing differs.\n\n")
	}
	b.printf("| reads on | pair | first | p50 without | p99 without | p50 with | p99 with | p99 ratio | analyses (mean) | errors | load average |\n")
	b.printf("|---|---|---|---|---|---|---|---|---|---|---|\n")
	sites := []string{"primary"}
	if b.standby != nil {
		sites = []string{"standby", "primary"}
	}
	if b.o.control {
		sites = append(sites, "control")
	}
	ratios := map[string][]float64{}
	// All latencies of a site's phases without and with, for a p99 over all its pairs: one
	// disturbed phase moves it less than it moves that pair's ratio.
	pooled := map[string]*[2]phaseResult{}
	for _, site := range sites {
		pooled[site] = &[2]phaseResult{}
	}
	for i := range b.o.pairs {
		order := slices.Clone(sites)
		if i%2 == 1 {
			slices.Reverse(order)
		}
		for _, site := range order {
			r, without, with, err := b.pair(ctx, queries, qps, i, site)
			if err != nil {
				return err
			}
			ratios[site] = append(ratios[site], r)
			pooled[site][0].lat = append(pooled[site][0].lat, without.lat...)
			pooled[site][1].lat = append(pooled[site][1].lat, with.lat...)
		}
	}
	b.printf("\n")
	for _, site := range sites {
		lo, med, hi := spread(ratios[site])
		what := "p99 with / without analysis reading on the " + site
		if site == "control" {
			what = "p99 ratio of the control pairs (no analysis in either phase)"
		}
		without, with := pooled[site][0], pooled[site][1]
		slices.Sort(without.lat)
		slices.Sort(with.lat)
		b.printf("%s: min %.2f, median %.2f, max %.2f over %d pairs; over all their phases, p99 %s without and %s with (%.2f)\n",
			what, lo, med, hi, len(ratios[site]), ms(without.quantile(0.99)), ms(with.quantile(0.99)),
			with.quantile(0.99).Seconds()/without.quantile(0.99).Seconds())
	}
	return nil
}

// budget describes the page budget of the analysis on the primary, and checks that an
// adaptive one has its signal.
func (b *bench) budget(ctx context.Context) (string, error) {
	if !b.o.adaptive {
		if b.o.pagesPerSec > 0 {
			return fmt.Sprintf("%.0f pages/s", b.o.pagesPerSec), nil
		}
		return "none", nil
	}
	// Without pg_stat_statements the exporter's scan would keep the ceiling without a word.
	var has bool
	if err := b.pool.QueryRow(ctx, `SELECT to_regclass('pg_stat_statements') IS NOT NULL`).Scan(&has); err != nil || !has {
		return "", fmt.Errorf("-adaptive needs pg_stat_statements in the database (installed: %v, %v)", has, err)
	}
	floor := b.o.minPagesPerSec
	if floor == 0 {
		floor = b.o.pagesPerSec / 10
	}
	return fmt.Sprintf("adaptive, %.0f to %.0f pages/s, latency factor %g, judged every %s (the exporter's scan; a baseline of at least that long before each)",
		floor, b.o.pagesPerSec, b.o.latencyFactor, b.o.adjustInterval), nil
}

// pair runs pair i, a phase without and one with the analysis reading on site ("primary" or
// "standby"; "control" runs no analysis in either), prints its row and returns its p99 ratio
// and the two phases.
func (b *bench) pair(ctx context.Context, queries []string, qps float64, i int, site string) (ratio float64, without, with phaseResult, err error) {
	withFirst := i%2 == 1
	for _, analysing := range []bool{withFirst, !withFirst} {
		r, err := b.loadPhase(ctx, queries, qps, analysing && site != "control", site == "standby")
		if err != nil {
			return 0, without, with, err
		}
		if analysing {
			with = r
		} else {
			without = r
		}
	}
	ratio = with.quantile(0.99).Seconds() / without.quantile(0.99).Seconds()
	first := "without"
	if withFirst {
		first = "with"
	}
	mean := "—"
	if with.analyses > 0 {
		mean = fmt.Sprintf("%.1f s", with.analysis.Seconds()/float64(with.analyses))
	}
	b.printf("| %s | %d | %s | %s | %s | %s | %s | %.2f | %d (%s) | %d | %s |\n", site, i+1, first,
		ms(without.quantile(0.5)), ms(without.quantile(0.99)), ms(with.quantile(0.5)), ms(with.quantile(0.99)),
		ratio, with.analyses, mean, without.errors+with.errors, loadAverage())
	return ratio, without, with, nil
}

func ms(d time.Duration) string { return fmt.Sprintf("%.2f ms", float64(d)/1e6) }

// queryVectors returns n random vectors of dim dimensions drawn like the table's rows, as
// pgvector text.
func queryVectors(n, dim int) []string {
	rng := rand.New(rand.NewPCG(1, 2))
	out := make([]string, n)
	var sb strings.Builder
	for i := range out {
		sb.Reset()
		sb.WriteByte('[')
		for j := range dim {
			if j > 0 {
				sb.WriteByte(',')
			}
			sb.WriteString(strconv.FormatFloat(rng.Float64(), 'f', 6, 32))
		}
		sb.WriteByte(']')
		out[i] = sb.String()
	}
	return out
}

func (b *bench) query(ctx context.Context, vec string) error {
	rows, err := b.pool.Query(ctx, topKSQL, vec, b.o.k)
	if err != nil {
		return err
	}
	n := 0
	for rows.Next() {
		n++
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return err
	}
	if n != b.o.k {
		return fmt.Errorf("top-%d query returned %d rows", b.o.k, n)
	}
	return nil
}

// capacity measures the query rate of o.clients clients querying back to back for d.
func (b *bench) capacity(ctx context.Context, queries []string, d time.Duration) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var mu sync.Mutex
	var n int
	var firstErr error
	var wg sync.WaitGroup
	start := time.Now()
	for c := range b.o.clients {
		wg.Go(func() {
			for j := c; ctx.Err() == nil; j += b.o.clients {
				err := b.query(ctx, queries[j%len(queries)])
				mu.Lock()
				switch {
				case err == nil:
					n++
				case ctx.Err() == nil && firstErr == nil:
					firstErr = err
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return 0, fmt.Errorf("query load: %w", firstErr)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// analyzeLoop analyses the index back to back until ctx ends (the parent's interrupt) and
// prints how many analyses completed and their total time.
func (b *bench) analyzeLoop(ctx context.Context) error {
	scan := func(ctx context.Context) error {
		if b.o.adaptive {
			return b.adaptiveScan(ctx)
		}
		_, err := b.analyze(ctx, true, b.o.pagesPerSec)
		return err
	}
	if b.o.standbyDSN != "" {
		sb, err := pgxpool.New(ctx, b.o.standbyDSN)
		if err != nil {
			return fmt.Errorf("connect the standby: %w", err)
		}
		defer sb.Close()
		scan = func(ctx context.Context) error { return b.standbyScan(ctx, sb) }
	}
	var n int
	var total time.Duration
	for ctx.Err() == nil {
		t := time.Now()
		err := scan(ctx)
		switch {
		case err == nil:
			n++
			total += time.Since(t)
		case ctx.Err() == nil:
			return err
		}
	}
	b.printf("analyses %d seconds %g\n", n, total.Seconds())
	return nil
}

// loadPhase runs the query load at qps for o.phase, each client on its own fixed schedule.
// A query's latency counts from when it was due, not when it was sent, so that a stall
// delays the queries behind it as it would an application's (no coordinated omission). With
// analysing, structure analyses run back to back over the whole phase, reading the index on
// the primary or, with onStandby, on the standby.
func (b *bench) loadPhase(ctx context.Context, queries []string, qps float64, analysing, onStandby bool) (phaseResult, error) {
	var res phaseResult
	var mu sync.Mutex
	start := time.Now()
	end := start.Add(b.o.phase)
	var analyser *exec.Cmd
	var analyses bytes.Buffer
	if analysing {
		// The analysis runs in a process of its own, as the exporter does: in this one, its
		// goroutines and garbage collection would delay the clients' goroutines, which the
		// application's queries, in their own processes, do not suffer.
		args := []string{os.Args[0], "-analyze-loop", "-dsn", b.dsn, "-page-batch", strconv.Itoa(b.o.batch),
			"-analysis-timeout", b.o.analysisLimit.String()}
		switch {
		case onStandby:
			args = append(args, "-standby-dsn", b.standbyDSN)
		case b.o.adaptive:
			args = append(args, "-max-pages-per-second", strconv.FormatFloat(b.o.pagesPerSec, 'f', -1, 64),
				"-adaptive", "-min-pages-per-second", strconv.FormatFloat(b.o.minPagesPerSec, 'f', -1, 64),
				"-latency-factor", strconv.FormatFloat(b.o.latencyFactor, 'f', -1, 64), "-adjust-interval", b.o.adjustInterval.String())
		default:
			args = append(args, "-max-pages-per-second", strconv.FormatFloat(b.o.pagesPerSec, 'f', -1, 64),
				"-heap-batch", strconv.Itoa(b.o.heapBatch))
		}
		// nice(1) and taskset(1) rather than setting the started process: Linux keeps a nice
		// value and CPUs per thread, and the Go runtime has started its threads by then.
		if b.o.analyserNice > 0 {
			args = append([]string{"nice", "-n", strconv.Itoa(b.o.analyserNice)}, args...)
		}
		if b.pinned != "" {
			args = append([]string{"taskset", "-c", b.pinned}, args...)
		}
		analyser = exec.Command(args[0], args[1:]...)
		analyser.Stdout = &analyses
		analyser.Stderr = os.Stderr
		if err := analyser.Start(); err != nil {
			return res, fmt.Errorf("start the analysing process: %w", err)
		}
	}
	interval := time.Duration(float64(time.Second) * float64(b.o.clients) / qps)
	var clients sync.WaitGroup
	for c := range b.o.clients {
		clients.Go(func() {
			due := start.Add(interval * time.Duration(c) / time.Duration(b.o.clients))
			for j := c; due.Before(end) && ctx.Err() == nil; j += b.o.clients {
				time.Sleep(time.Until(due))
				err := b.query(ctx, queries[j%len(queries)])
				lat := time.Since(due)
				mu.Lock()
				if err != nil {
					res.errors++
				} else {
					res.lat = append(res.lat, lat)
				}
				mu.Unlock()
				due = due.Add(interval)
			}
		})
	}
	clients.Wait()
	if analyser != nil {
		_ = analyser.Process.Signal(os.Interrupt)
		if err := analyser.Wait(); err != nil {
			return res, fmt.Errorf("analysing process: %w", err)
		}
		var secs float64
		if _, err := fmt.Sscanf(analyses.String(), "analyses %d seconds %g", &res.analyses, &secs); err != nil {
			return res, fmt.Errorf("analysing process printed %q: %w", analyses.String(), err)
		}
		res.analysis = time.Duration(secs * float64(time.Second))
	}
	if err := ctx.Err(); err != nil {
		return res, err
	}
	slices.Sort(res.lat)
	return res, nil
}
