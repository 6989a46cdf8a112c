// Command vectorheal-soak runs vectorheal for tens of minutes against the decay pgvector
// indexes meet in production, next to an identical database that only autovacuum tends. One
// private PostgreSQL holds two databases with the same data ("tended" and "untended"); both
// receive the same seeded churn and the same decay mechanisms; vectorheal, with the shipped
// rules and runbook (timings shortened), watches and heals only "tended". It samples recall,
// latency, size and dead tuples of every index of both twins over time, records every repair
// and alert, and writes a CSV, a summary with the acceptance criteria and an SVG plot.
// `make soak` runs it; docs/BENCHMARKS.md has the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"github.com/vectorheal/vectorheal/internal/benchdoc"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"
)

// options are the soak's flags.
type options struct {
	vectorheal     string
	root           string
	out            string
	writeDocs      bool
	keep           bool
	duration       time.Duration
	quiet          time.Duration
	sampleEvery    time.Duration
	rows           int
	dims           int
	seed           uint64
	churnRate      float64
	driftRate      float64
	eventsSpread   float64
	eventsCenters  int
	qps            float64
	probeQueries   int
	snapshotEvery  time.Duration
	snapshotHold   time.Duration
	avCostDelay    int
	avCostLimit    int
	recallAtBuild  float64
	docsPath       string
	plotPath       string
	commandForDocs string
}

const usage = `Usage: vectorheal-soak [flags]

Soak benchmark: vectorheal tending one database against autovacuum alone tending its twin.

What a run does:
  1. Starts a private PostgreSQL with pgvector and creates the databases "tended",
     "untended" and "vectorheal_state" (vectorheal's state store, kept apart so the twins
     carry the same load).
  2. Loads seeded data into the tended twin: table docs (-rows clustered vectors of
     -dims dimensions, an HNSW index with cosine distance, rows grouped into documents of 20
     chunks and 4 categories for filtered queries) and table events (-rows/5 vectors, an
     IVFFlat index with L2 distance, lists = rows/1000), builds both indexes and copies the
     database to the untended twin (CREATE DATABASE ... TEMPLATE), so both twins start from
     the same index, byte for byte. hnsw.ef_search and ivfflat.probes
     are set per database to the smallest value giving recall@10 >= -recall-at-build on the
     fresh index, as an operator would, identically in both twins.
  3. Throttles autovacuum on both tables of both twins (-av-cost-delay, -av-cost-limit), so
     a vacuum of the index takes as long, relative to the churn, as on a large index.
  4. Starts Prometheus with rules/, Alertmanager with deploy/alertmanager/alertmanager.yml and
     vectorheal serve with deploy/runbook.yml, all with intervals shortened in copies of those
     files, watching only "tended". "untended" is not watched at all.
  5. Runs an application workload (-qps top-10 queries per second per index and twin, a third
     of the docs queries filtered by category) for the whole run, then a quiet period (-quiet,
     no churn), then -duration of churn applied identically to both twins: re-embeddings,
     deletes + inserts, re-ingest of whole documents (docs, -churn-rate rows per second),
     inserts from a drifting distribution (events, -drift-rate rows per second), and a session
     holding an old snapshot for -snapshot-hold, -snapshot-every after the previous one,
     in both twins.
  6. Every -sample-interval, per index and twin: recall@10 at a new session's settings against
     exact search, short results, the application's p50/p99 since the last sample, index size,
     live and dead tuples. Alerts come from Prometheus, repairs from vectorheal's state store.
  7. Writes into -out: samples.csv, events.txt, summary.md (table and acceptance criteria,
     each pass or FAIL with its numbers) and soak.svg; with -write-docs also the plot to
     -plot and the generated part of -docs (between the soak markers).

Ctrl-C stops the run and removes everything it started (the output directory stays).

Flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vectorheal-soak", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.vectorheal, "vectorheal", "bin/vectorheal", "path of the vectorheal binary (make build)")
	fs.StringVar(&o.root, "root", ".", "repository root holding rules/ and deploy/")
	fs.StringVar(&o.out, "out", "soak-out", "directory for samples.csv, events.txt, summary.md and soak.svg")
	fs.BoolVar(&o.writeDocs, "write-docs", false, "also write the plot to -plot and the table into the soak section of -docs")
	fs.StringVar(&o.docsPath, "docs", "docs/BENCHMARKS.md", "document whose soak section -write-docs replaces")
	fs.StringVar(&o.plotPath, "plot", "docs/soak.svg", "where -write-docs writes the plot")
	fs.BoolVar(&o.keep, "keep", false, "keep the stack's work directory (configs, logs) at exit")
	fs.DurationVar(&o.duration, "duration", 30*time.Minute, "duration of the churn period")
	fs.DurationVar(&o.quiet, "quiet", 3*time.Minute, "quiet period before the churn: queries only, no writes")
	fs.DurationVar(&o.sampleEvery, "sample-interval", 30*time.Second, "time between two samples of every index of both twins")
	fs.IntVar(&o.rows, "rows", 50000, "rows of table docs (HNSW); table events (IVFFlat) starts with a fifth")
	fs.IntVar(&o.dims, "dims", 48, "dimensions of the vectors")
	fs.Uint64Var(&o.seed, "seed", 1, "seed of the data, the churn and the queries (identical in both twins)")
	fs.Float64Var(&o.churnRate, "churn-rate", 40, "rows of docs changed per second: half re-embedded, a quarter deleted and re-inserted, a quarter re-ingested as whole documents")
	fs.Float64Var(&o.driftRate, "drift-rate", 10, "rows inserted into events per second, from a distribution whose centre moves over the churn period")
	fs.Float64Var(&o.eventsSpread, "events-spread", 0.05, "standard deviation of the events vectors around their centres (per dimension, centres in [-1,1]); tight clusters are what a few probed lists serve well, until new data arrives between them")
	fs.IntVar(&o.eventsCenters, "events-clusters", 20, "clusters of the events vectors (the new data drifts from the first towards the mean of all, where the lists trained on them meet)")
	fs.Float64Var(&o.qps, "qps", 10, "application queries per second per index and twin")
	fs.IntVar(&o.probeQueries, "probe-queries", 30, "query vectors per index and sample for recall@10")
	fs.DurationVar(&o.snapshotEvery, "snapshot-every", 10*time.Minute, "pause between two old-snapshot sessions, the first after half of it (0: none)")
	fs.DurationVar(&o.snapshotHold, "snapshot-hold", 3*time.Minute, "how long the old-snapshot session holds its snapshot")
	fs.IntVar(&o.avCostDelay, "av-cost-delay", 100, "autovacuum_vacuum_cost_delay (ms) of both tables in both twins; PostgreSQL's default is 2")
	fs.IntVar(&o.avCostLimit, "av-cost-limit", 10, "autovacuum_vacuum_cost_limit of both tables in both twins; PostgreSQL's default is 200")
	fs.Float64Var(&o.recallAtBuild, "recall-at-build", 0.95, "recall@10 the search settings are tuned to on the fresh indexes")
	fs.Usage = func() {
		fmt.Fprint(stderr, usage)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if err := o.validate(); err != nil {
		fmt.Fprintf(stderr, "vectorheal-soak: %v\n", err)
		return 2
	}
	o.commandForDocs = benchdoc.MakeCommand("soak", "SOAK_FLAGS", args, "vectorheal", "root")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := runSoak(ctx, log, o, stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stdout, "stopped; everything the soak started is stopped and removed")
		return 130
	default:
		fmt.Fprintf(stderr, "vectorheal-soak: %v\n", err)
		return 1
	}
}

func (o options) validate() error {
	switch {
	case o.duration <= 0 || o.quiet < 0:
		return errors.New("-duration must be positive and -quiet not negative")
	case o.sampleEvery < time.Second:
		return errors.New("-sample-interval must be at least 1s")
	case o.rows < 5000:
		return errors.New("-rows must be at least 5000")
	case o.dims < 2 || o.dims > 2000:
		return errors.New("-dims must be in [2, 2000]")
	case o.churnRate < 0 || o.driftRate < 0 || o.qps <= 0:
		return errors.New("-churn-rate and -drift-rate must not be negative, -qps must be positive")
	case o.eventsSpread <= 0 || o.eventsCenters < 1:
		return errors.New("-events-spread must be positive and -events-clusters at least 1")
	case o.probeQueries < 1:
		return errors.New("-probe-queries must be at least 1")
	case o.avCostDelay < 0 || o.avCostDelay > 100 || o.avCostLimit < 1 || o.avCostLimit > 10000:
		return errors.New("-av-cost-delay must be in [0, 100] and -av-cost-limit in [1, 10000]")
	}
	return nil
}
