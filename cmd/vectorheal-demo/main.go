// Command vectorheal-demo shows vectorheal healing pgvector indexes end to end. It starts a
// private stack — PostgreSQL with pgvector (or the database named by VECTORHEAL_DEMO_DSN),
// Prometheus with vectorheal's rules, Alertmanager with its shipped configuration and
// `vectorheal serve` — loads a clustered dataset, runs a query workload, injects faults one by
// one and prints the timeline of each: alert firing, repair, validation, resolved. Ctrl-C
// stops and removes everything it started. `make demo` runs it.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"
)

// options are the demo's flags.
type options struct {
	vectorheal string
	root       string
	dir        string
	dsn        string
	rows       int
	exit       bool
	keep       bool
	faultWait  time.Duration
}

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("vectorheal-demo", flag.ContinueOnError)
	fs.SetOutput(stderr)
	o := options{}
	fs.StringVar(&o.vectorheal, "vectorheal", "bin/vectorheal", "path of the vectorheal binary (make build)")
	fs.StringVar(&o.root, "root", ".", "repository root holding rules/ and deploy/")
	fs.StringVar(&o.dir, "dir", "", "work directory for the stack's files (default: a new temporary directory, removed at exit)")
	fs.IntVar(&o.rows, "rows", 20000, "rows of the HNSW table (the IVFFlat table gets a tenth)")
	fs.BoolVar(&o.exit, "exit", false, "exit when every fault is healed instead of waiting for Ctrl-C")
	fs.BoolVar(&o.keep, "keep", false, "keep the work directory at exit")
	fs.DurationVar(&o.faultWait, "fault-timeout", 4*time.Minute, "how long to wait for one fault to be healed")
	fs.Usage = func() {
		fmt.Fprintf(stderr, `Usage: vectorheal-demo [flags]

Starts PostgreSQL + pgvector, Prometheus, Alertmanager and vectorheal on free local ports,
injects faults into pgvector indexes and shows them being healed.

Set VECTORHEAL_DEMO_DSN=postgres://... to use your own database (pgvector installed, a role
that may create tables and, for the structural metrics, superuser) instead of a private
PostgreSQL. The demo then creates tables vectorheal_demo_docs and vectorheal_demo_events and
the schema vectorheal_demo (its state store), sets hnsw.ef_search and ivfflat.probes of that
database, and undoes all of it at exit. It refuses a database that already has them.

Flags:
`)
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return 2
	}
	o.dsn = os.Getenv("VECTORHEAL_DEMO_DSN")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	d := &demo{o: o, out: stdout}
	err := d.run(ctx)
	d.cleanup()
	switch {
	case err == nil:
		return 0
	case errors.Is(err, context.Canceled):
		fmt.Fprintln(stdout, "\nstopped; everything the demo started is stopped and removed")
		return 0
	default:
		fmt.Fprintf(stderr, "vectorheal-demo: %v\n", err)
		return 1
	}
}

func absPath(p string) (string, error) {
	a, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(a); err != nil {
		return "", err
	}
	return a, nil
}
