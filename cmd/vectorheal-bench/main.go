// Command vectorheal-bench measures what vectorheal's HNSW structure analysis costs on an index
// of production size: the analysis time against merely fetching the same pages, the analysis
// state per element, and the effect of a concurrent analysis on the p99 latency of an
// application's top-k queries. It keeps a private PostgreSQL cluster with the data set in a
// directory between runs, because building an index of a million elements takes long; the
// first run creates it. `make bench-scale` runs it; docs/BENCHMARKS.md has the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"syscall"
	"time"
)

// options are the benchmark's flags.
type options struct {
	dir        string
	dsn        string
	rows, dim  int
	runs       int
	batch      int
	cpuprofile string
	workers    int

	pairs         int
	phase         time.Duration
	clients       int
	qps           float64
	loadShare     float64
	k             int
	pagesPerSec   float64
	skipAnalysis  bool
	skipLoad      bool
	analysisLimit time.Duration
	analyzeLoop   bool
	heapBatch     int
	analyserNice  int

	adaptive       bool
	minPagesPerSec float64
	latencyFactor  float64
	adjustInterval time.Duration

	standby    bool
	standbyDSN string // of the analysing process: read the index on this standby
	pin        bool
	control    bool
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vectorheal-bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	o.register(fs)
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: vectorheal-bench [flags]

Builds (once, kept in -dir) a table of -rows random -dim-dimensional vectors with an HNSW
index (pgvector's defaults), then measures the structure analysis against fetching the same
pages, and the p99 latency of a steady top-k query load with and without a concurrent
analysis, alternating, in the same run. With -standby, the same query load on the primary
also runs against an analysis reading a streaming replica, in the same run. Prints Markdown
tables.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	pinGiven := false
	fs.Visit(func(f *flag.Flag) { pinGiven = pinGiven || f.Name == "pin" })
	if !pinGiven && o.standby && runtime.NumCPU() >= 2 {
		_, err := exec.LookPath("taskset")
		o.pin = err == nil
	}
	if err := o.check(); err != nil {
		fmt.Fprintf(stderr, "vectorheal-bench: %v\n", err)
		return 2
	}
	if o.dir == "" {
		o.dir = filepath.Join(os.TempDir(), fmt.Sprintf("vectorheal-bench-%dx%d", o.rows, o.dim))
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	b := &bench{o: o, out: stdout}
	if o.analyzeLoop && o.dsn == "" {
		fmt.Fprintln(stderr, "vectorheal-bench: -analyze-loop needs -dsn")
		return 2
	}
	err := b.run(ctx)
	b.close()
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stderr, "vectorheal-bench: interrupted")
		return 1
	default:
		fmt.Fprintf(stderr, "vectorheal-bench: %v\n", err)
		return 1
	}
}

func (o options) check() error {
	switch {
	case o.rows < 1000:
		return fmt.Errorf("-rows %d: at least 1000", o.rows)
	case o.dim < 1 || o.dim > 2000:
		return fmt.Errorf("-dim %d: between 1 and 2000 (HNSW's limit for vector)", o.dim)
	case o.workers < 0 || o.workers > 8:
		return fmt.Errorf("-build-workers %d: between 0 and 8", o.workers)
	case o.runs < 1:
		return fmt.Errorf("-runs %d: at least 1", o.runs)
	case o.batch < 1:
		return fmt.Errorf("-page-batch %d: at least 1", o.batch)
	case o.pairs < 1:
		return fmt.Errorf("-pairs %d: at least 1", o.pairs)
	case o.phase < time.Second:
		return fmt.Errorf("-phase %s: at least 1s", o.phase)
	case o.clients < 1:
		return fmt.Errorf("-clients %d: at least 1", o.clients)
	case o.qps < 0:
		return fmt.Errorf("-qps %g: not negative", o.qps)
	case o.loadShare <= 0 || o.loadShare > 1:
		return fmt.Errorf("-load-share %g: above 0 and at most 1", o.loadShare)
	case o.k < 1:
		return fmt.Errorf("-k %d: at least 1", o.k)
	case o.adaptive && o.pagesPerSec <= 0:
		return fmt.Errorf("-adaptive: needs -max-pages-per-second above 0, the ceiling")
	case o.minPagesPerSec < 0 || (o.pagesPerSec > 0 && o.minPagesPerSec > o.pagesPerSec):
		return fmt.Errorf("-min-pages-per-second %g: between 0 and -max-pages-per-second", o.minPagesPerSec)
	case o.latencyFactor <= 1:
		return fmt.Errorf("-latency-factor %g: above 1", o.latencyFactor)
	case o.adjustInterval < 100*time.Millisecond:
		return fmt.Errorf("-adjust-interval %s: at least 100ms", o.adjustInterval)
	case o.heapBatch < 0:
		return fmt.Errorf("-heap-batch %d: not negative", o.heapBatch)
	case o.analyserNice < 0 || o.analyserNice > 19:
		return fmt.Errorf("-analyser-nice %d: between 0 and 19", o.analyserNice)
	case o.pagesPerSec < 0:
		return fmt.Errorf("-max-pages-per-second %g: not negative", o.pagesPerSec)
	case o.standby && o.dsn != "":
		return errors.New("-standby: makes a replica of the private cluster, not of -dsn")
	case o.standby && o.skipLoad:
		return errors.New("-standby: measures under the query load, not with -skip-load")
	case o.pin && o.dsn != "":
		return errors.New("-pin: pins the private cluster's server, not that of -dsn")
	}
	return nil
}

// register defines the tool's flags on fs, each setting its field of o.
func (o *options) register(fs *flag.FlagSet) {
	fs.StringVar(&o.dir, "dir", "", "directory of the private PostgreSQL cluster holding the data set, kept between runs (default: vectorheal-bench-<rows>x<dim> in the system's temporary directory)")
	fs.StringVar(&o.dsn, "dsn", "", "use this database (superuser, pgvector and pageinspect installed) instead of a private cluster")
	fs.IntVar(&o.rows, "rows", 1000000, "rows of the table, one HNSW element each")
	fs.IntVar(&o.dim, "dim", 32, "dimensions of the vectors")
	fs.IntVar(&o.workers, "build-workers", 0, "parallel workers of the index build (max_parallel_maintenance_workers); pgvector 0.6.0-0.8.1 have a buffer overflow in parallel HNSW builds (CVE-2026-3172), harmless on this private data set")
	fs.IntVar(&o.runs, "runs", 5, "pairs of fetch and analysis measured (analysis time against fetch time)")
	fs.IntVar(&o.batch, "page-batch", 64, "index pages fetched per query (exporter.page_batch)")
	fs.StringVar(&o.cpuprofile, "cpuprofile", "", "write a CPU profile of the analysis runs to this file")
	fs.IntVar(&o.pairs, "pairs", 5, "pairs of query load phases, one without and one with a concurrent analysis")
	fs.DurationVar(&o.phase, "phase", 20*time.Second, "length of one query load phase")
	fs.IntVar(&o.clients, "clients", 4, "concurrent query clients")
	fs.Float64Var(&o.qps, "qps", 0, "query rate over all clients; 0 sets it to -load-share of the rate measured with clients querying back to back")
	fs.Float64Var(&o.loadShare, "load-share", 0.5, "share of the measured query capacity used as the rate when -qps is 0")
	fs.IntVar(&o.k, "k", 10, "neighbours each query asks for")
	fs.Float64Var(&o.pagesPerSec, "max-pages-per-second", 0, "page budget of the concurrent analysis (exporter.structure.max_pages_per_second); 0 is none")
	fs.BoolVar(&o.skipAnalysis, "skip-analysis", false, "skip the analysis against fetch measurement")
	fs.BoolVar(&o.skipLoad, "skip-load", false, "skip the query load measurement")
	fs.DurationVar(&o.analysisLimit, "analysis-timeout", 10*time.Minute, "timeout of one analysis (exporter.structure.timeout)")
	fs.IntVar(&o.heapBatch, "heap-batch", 0, "heap TIDs per query of the concurrent analysis's heap check (hnsw.Options.HeapBatch); 0 is the analysis's default")
	fs.IntVar(&o.analyserNice, "analyser-nice", 0, "run the concurrent analysis's process at this nice value (1-19; 0 leaves it as is): with 19 its own CPU barely competes with the database, as for an exporter on a host of its own, so what remains of the queries' slowdown is the server's work serving pages and heap checks")
	fs.BoolVar(&o.adaptive, "adaptive", false, "the concurrent analysis is the exporter's structure scan with an adaptive page budget (exporter.structure.adaptive) under -max-pages-per-second, the ceiling; -heap-batch does not apply")
	fs.Float64Var(&o.minPagesPerSec, "min-pages-per-second", 0, "floor of the adaptive budget (exporter.structure.min_pages_per_second); 0 is a tenth of the ceiling")
	fs.Float64Var(&o.latencyFactor, "latency-factor", 2, "the adaptive budget halves above the queries' latency before the scan times this (exporter.structure.latency_factor)")
	fs.DurationVar(&o.adjustInterval, "adjust-interval", 5*time.Second, "how often the adaptive budget is judged, and its baseline window before each scan (exporter.structure.adjust_interval)")
	fs.BoolVar(&o.standby, "standby", false, "also start a streaming replica of the private cluster (pg_basebackup -R) and measure, pair for pair alternately with the analysis the other flags configure on the primary, the exporter's structure scan reading the index on the standby (no page budget; statistics still read on the primary) while the queries run on the primary")
	fs.BoolVar(&o.pin, "pin", false, "pin the primary server and the query clients to the first half of the CPUs, and the standby and the analysing process to the second half, as a model of separate hosts (taskset(1); default: on with -standby when at least 2 CPUs and taskset are there)")
	fs.BoolVar(&o.control, "control", false, "also run control pairs, alternating with the others, whose two phases both run without an analysis: the spread of the p99 ratio when nothing differs, to read the other ratios against")
	fs.StringVar(&o.standbyDSN, "standby-dsn", "", "internal, with -analyze-loop: read the index on this standby of -dsn")
	fs.BoolVar(&o.analyzeLoop, "analyze-loop", false, "internal: analyse the index of -dsn back to back until interrupted, then print the count (the process the query load phases start)")
}
