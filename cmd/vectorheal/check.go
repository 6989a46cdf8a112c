package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
)

// checkOptions are check's flags.
type checkOptions struct {
	dsn string
	// standbyDSN is a hot standby of dsn where the figures read from the index itself are
	// read, as the exporter reads them with targets[].standby.
	standbyDSN string
	replayWait time.Duration
	output     string
	timeout    time.Duration
	queries    int
	k          int
	noProbe    bool
	pageBatch  int
	// url of vectorheal serve's API and the target name there: check itself reads only the
	// database, so when the next automatic repair may run comes from the server.
	url    string
	target string
	server clientOptions // how to authenticate to the server at url
}

func registerCheck(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c := app.Command("check", `Measure every vector index of one database once and print a health report.

The figures are the exporter's (structure from the index pages when the role may read them,
recall probe, statistics); JSON field names are the metric names without the pgvector_ prefix.
With --url of a running 'vectorheal serve', each index also shows when its next automatic
repair may run and which rule (cooldown, budget, backoff, running_limit, window, circuit_open,
flapping) holds it back; that state lives in the server's state store, which check does not read.
Exits 1 when the database cannot be reached.`)
	o := &checkOptions{}
	c.Flag("dsn", "Database to check (libpq URL or key=value).").Required().StringVar(&o.dsn)
	c.Flag("standby-dsn", "A hot standby of --dsn's server: index pages and probes are read there once it has replayed the primary's position (statistics stay on --dsn), as 'serve' does with targets[].standby.").StringVar(&o.standbyDSN)
	c.Flag("standby.replay-wait", "How long to wait for --standby-dsn to replay the primary's position before reading the primary instead.").Default("30s").DurationVar(&o.replayWait)
	c.Flag("output", "Output format: text or json.").Short('o').Default("text").EnumVar(&o.output, "text", "json")
	c.Flag("format", "Alias of --output.").Hidden().EnumVar(&o.output, "text", "json")
	c.Flag("timeout", "Time budget of each measurement of one index (statement_timeout).").Default("1m").DurationVar(&o.timeout)
	c.Flag("probe.queries", "Query vectors sampled per index by the recall probe.").Default("10").IntVar(&o.queries)
	c.Flag("probe.k", "Neighbours compared by the recall probe (recall@k).").Default("10").IntVar(&o.k)
	c.Flag("no-probe", "Do not run the recall probe.").BoolVar(&o.noProbe)
	c.Flag("page-batch", "Index pages fetched per query.").Default("64").IntVar(&o.pageBatch)
	c.Flag("url", "Base URL of a running vectorheal server, asked when the next automatic repair of each index may run.").Envar("VECTORHEAL_URL").StringVar(&o.url)
	c.Flag("target", "Name of this database among the server's targets (default: matched by database name).").StringVar(&o.target)
	credentialFlags(c, &o.server)
	return c.FullCommand(), func(ctx context.Context, logger *slog.Logger) int {
		return runCheck(ctx, o, stdout, stderr)
	}
}

func runCheck(ctx context.Context, o *checkOptions, stdout, stderr io.Writer) int {
	if o.queries <= 0 || o.k <= 0 || o.pageBatch <= 0 || o.timeout <= 0 {
		fmt.Fprintln(stderr, "vectorheal check: --probe.queries, --probe.k, --page-batch and --timeout must be positive")
		return 2
	}
	pool, code := checkPool(ctx, "--dsn", o.dsn, stderr)
	if pool == nil {
		return code
	}
	defer pool.Close()
	var opts []exporter.ReportOption
	if o.standbyDSN != "" {
		standby, code := checkPool(ctx, "--standby-dsn", o.standbyDSN, stderr)
		if standby == nil {
			return code
		}
		defer standby.Close()
		opts = append(opts, exporter.ReadIndexesOnStandby(standby, o.replayWait))
	}
	chk := config.Check{Interval: o.timeout, Timeout: o.timeout}
	cfg := config.Exporter{
		Structure:         config.StructureCheck{Check: chk},
		Recall:            config.RecallCheck{Check: config.Check{Interval: o.timeout, Timeout: o.timeout, Disabled: o.noProbe}, Queries: o.queries, K: o.k},
		StatisticsTimeout: min(o.timeout, 30*time.Second),
		PageBatch:         o.pageBatch,
	}
	rep, err := exporter.Report(ctx, pool, cfg, opts...)
	if err != nil {
		fmt.Fprintf(stderr, "vectorheal check: %v\n", err)
		return 1
	}
	next := checkBudgets(ctx, o, rep)
	if o.output == "json" {
		err = next.writeJSON(stdout, rep)
	} else if err = rep.WriteText(stdout); err == nil {
		err = next.writeText(stdout, rep)
	}
	if err != nil {
		fmt.Fprintf(stderr, "vectorheal check: %v\n", err)
		return 1
	}
	return 0
}

// checkPool connects to the database of dsn (given as flag) and pings it; on failure it says
// why on stderr and returns the exit code (2 for a malformed DSN, 1 for an unreachable server).
func checkPool(ctx context.Context, flag, dsn string, stderr io.Writer) (*pgxpool.Pool, int) {
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		fmt.Fprintf(stderr, "vectorheal check: %s: %v\n", flag, err)
		return nil, 2
	}
	pc.MaxConns = 2
	pc.ConnConfig.RuntimeParams["application_name"] = "vectorheal"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		fmt.Fprintf(stderr, "vectorheal check: %s: %v\n", flag, err)
		return nil, 1
	}
	pingCtx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	if err := pool.Ping(pingCtx); err != nil {
		pool.Close()
		fmt.Fprintf(stderr, "vectorheal check: cannot reach database %s:%d/%s (%s): %v\n",
			pc.ConnConfig.Host, pc.ConnConfig.Port, pc.ConnConfig.Database, flag, err)
		return nil, 1
	}
	return pool, 0
}
