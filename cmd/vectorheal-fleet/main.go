// Command vectorheal-fleet measures the exporter on a fleet: a thousand vector indexes over
// fifty databases of one private PostgreSQL, measured by three shards of `vectorheal serve`
// and, in the same run, by one unsharded process. It samples every process's /metrics and
// /proc over time (coverage, staleness, series, scrape time and size, memory, CPU), then kills
// one shard, restarts it and times until its indexes are measured again. `make bench-fleet`
// runs it; docs/BENCHMARKS.md has the results.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vectorheal/vectorheal/internal/benchdoc"
	"github.com/vectorheal/vectorheal/internal/shard"
)

// options are the benchmark's flags.
type options struct {
	vectorheal   string
	databases    int
	indexes      int
	large        int
	largeMin     int
	largeMax     int
	smallMin     int
	smallMax     int
	ivfflatShare float64
	dims         int
	buildWorkers int
	shards       int
	shardBy      string
	killShard    int
	interval     time.Duration
	poll         time.Duration
	duration     time.Duration
	down         time.Duration
	writeDocs    bool
	docsPath     string
	keep         bool

	commandForDocs string
}

const usage = `Usage: vectorheal-fleet [flags]

Fleet benchmark: how the exporter measures many indexes, sharded and unsharded.

What a run does:
  1. Starts a private PostgreSQL with pgvector (temporary directory, free port) and builds the
     fleet: -indexes vector indexes over -databases databases, one table of -dims-dimensional
     random vectors per index. The first database gets -indexes/-databases small tables
     (-small-min to -small-max rows), about -ivfflat-share of them IVFFlat (lists =
     max(4, rows/1000)), the others HNSW (m 16, ef_construction 64, L2 or cosine); the other
     databases are copies of it (CREATE DATABASE ... TEMPLATE). Then -large databases, spread
     evenly, get a large table (-large-min to -large-max rows, alternately HNSW and IVFFlat)
     in place of their last small one.
  2. Starts, at the same moment, -shards processes of the real binary (-vectorheal) with
     --exporter.shard N --exporter.total-shards -shards --exporter.shard-by -shard-by, and
     one unsharded process, all on
     the same fleet: one target per database, exporter only (no state store, so nothing is
     repaired), structure and recall checks and discovery every -interval, drift off, every
     other setting at its default.
  3. Every -poll scrapes each process's /metrics (timed, sized, parsed) and reads its RSS
     (VmRSS, with its private part RssAnon and its file-backed part RssFile) and CPU time
     from /proc/<pid>, for -duration.
  4. Kills shard -kill-shard with SIGKILL, restarts it -down later and polls until every one
     of its indexes is measured again (at most three intervals).
  5. Prints a table: coverage (each index measured by exactly one shard, and within one
     interval of the start), staleness (age of each index's last recall probe at each poll),
     series per healthy HNSW and IVFFlat index, scrape time and size, RSS, private RSS and
     CPU of each process, and their ratios to the unsharded process; with -write-docs also
     into the fleet section of -docs.

An index's measurement is seen on /metrics: the structure figures appear once its first page
scan is done, and pgvector_probe_latency_seconds_count grows with every recall probe, so the
poll after a change bounds when the probe ran. Ages are upper bounds, at the resolution of
-poll.

Ctrl-C stops the run and removes everything it started.

Flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vectorheal-fleet", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var o options
	fs.StringVar(&o.vectorheal, "vectorheal", "bin/vectorheal", "path of the vectorheal binary (make build)")
	fs.IntVar(&o.databases, "databases", 50, "databases of the fleet, one target each")
	fs.IntVar(&o.indexes, "indexes", 1000, "vector indexes of the fleet, one table each, the same number in every database")
	fs.IntVar(&o.large, "large", 5, "indexes among them with -large-min to -large-max rows, in as many databases")
	fs.IntVar(&o.largeMin, "large-min", 20000, "rows of the smallest large index")
	fs.IntVar(&o.largeMax, "large-max", 50000, "rows of the largest large index")
	fs.IntVar(&o.smallMin, "small-min", 2000, "fewest rows of the other indexes (below about 2,000 rows of 32 dimensions the planner prefers a sequential scan to an HNSW index, and the recall probe then measures nothing of it)")
	fs.IntVar(&o.smallMax, "small-max", 3000, "most rows of the other indexes")
	fs.Float64Var(&o.ivfflatShare, "ivfflat-share", 0.3, "share of the indexes that are IVFFlat, the rest HNSW")
	fs.IntVar(&o.dims, "dims", 32, "dimensions of the vectors")
	fs.IntVar(&o.buildWorkers, "build-workers", 2, "tables built at once")
	fs.IntVar(&o.shards, "shards", 3, "shards measuring the fleet (--exporter.total-shards), next to one unsharded process")
	fs.StringVar(&o.shardBy, "shard-by", "index", "what each shard owns whole (--exporter.shard-by): index or target")
	fs.IntVar(&o.killShard, "kill-shard", 1, "shard killed and restarted after -duration (-1: none)")
	fs.DurationVar(&o.interval, "interval", 2*time.Minute, "exporter.structure.interval, exporter.recall.interval and exporter.discovery_interval of every process (5m shipped)")
	fs.DurationVar(&o.poll, "poll", 5*time.Second, "time between two scrapes of every process (the resolution of ages)")
	fs.DurationVar(&o.duration, "duration", 12*time.Minute, "how long all processes are observed before the shard is killed")
	fs.DurationVar(&o.down, "down", 15*time.Second, "how long the killed shard stays down")
	fs.BoolVar(&o.writeDocs, "write-docs", false, "also write the table into the fleet section of -docs")
	fs.StringVar(&o.docsPath, "docs", "docs/BENCHMARKS.md", "document whose fleet section -write-docs replaces")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory (configurations, logs of the processes) at exit")
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
		fmt.Fprintf(stderr, "vectorheal-fleet: %v\n", err)
		return 2
	}
	o.commandForDocs = benchdoc.MakeCommand("bench-fleet", "FLEET_FLAGS", args, "vectorheal")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	log := slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
	err := runFleet(ctx, log, o, stdout)
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stdout, "stopped; everything the benchmark started is stopped and removed")
		return 130
	default:
		fmt.Fprintf(stderr, "vectorheal-fleet: %v\n", err)
		return 1
	}
}

func (o options) validate() error {
	switch {
	case o.databases < 1 || o.indexes < o.databases || o.indexes%o.databases != 0:
		return errors.New("-databases must be at least 1 and -indexes a multiple of it")
	case o.large > o.databases:
		return errors.New("-large must be at most -databases: a database holds at most one large index")
	case o.large < 0:
		return errors.New("-large must not be negative")
	case o.smallMin < 10 || o.smallMax < o.smallMin || o.largeMin < 10 || o.largeMax < o.largeMin:
		return errors.New("row counts must be at least 10, each -max at least its -min")
	case o.ivfflatShare < 0 || o.ivfflatShare > 1:
		return errors.New("-ivfflat-share must be in [0, 1]")
	case o.dims < 2 || o.dims > 2000:
		return errors.New("-dims must be in [2, 2000]")
	case o.buildWorkers < 1:
		return errors.New("-build-workers must be at least 1")
	case o.shards < 2:
		return errors.New("-shards must be at least 2")
	case o.shardBy != string(shard.ByIndex) && o.shardBy != string(shard.ByTarget):
		return fmt.Errorf("-shard-by %q: must be %s or %s", o.shardBy, shard.ByIndex, shard.ByTarget)
	case o.killShard < -1 || o.killShard >= o.shards:
		return errors.New("-kill-shard must be -1 or a shard from 0 to -shards-1")
	case o.interval < 5*time.Second:
		return errors.New("-interval must be at least 5s")
	case o.poll < time.Second || o.poll > o.interval/2:
		return errors.New("-poll must be at least 1s and at most half of -interval")
	case o.duration < 2*o.interval:
		return errors.New("-duration must be at least two intervals: staleness is sampled after the first one")
	case o.down < 0:
		return errors.New("-down must not be negative")
	}
	return nil
}
