// Command vectorheal keeps pgvector indexes healthy: it exports index health to Prometheus,
// receives Alertmanager's webhooks and runs the repairs a runbook maps them to.
package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/alecthomas/kingpin/v2"
	"github.com/prometheus/common/promslog"
	promslogflag "github.com/prometheus/common/promslog/flag"
	"github.com/prometheus/common/version"
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// action is a subcommand's body; it returns the process exit code.
type action func(ctx context.Context, logger *slog.Logger) int

// run parses args, sets up logging and signals, and runs the chosen subcommand.
func run(args []string, stdout, stderr io.Writer) int {
	app, actions, logCfg := newApp(stdout, stderr)
	cmd, err := app.Parse(args)
	if err != nil {
		fmt.Fprintf(stderr, "vectorheal: %v (see vectorheal --help)\n", err)
		return 2
	}
	logger := slog.New(logOnce(promslog.New(logCfg).Handler()))
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	return actions[cmd](ctx, logger)
}

// newApp declares every subcommand and flag; the actions are keyed by full command name.
func newApp(stdout, stderr io.Writer) (*kingpin.Application, map[string]action, *promslog.Config) {
	app := kingpin.New("vectorheal", `Self-healing for pgvector indexes on PostgreSQL, the Prometheus way.

vectorheal exports the health of HNSW and IVFFlat indexes (read from the index pages), drift,
recall and latency on /metrics; Prometheus rules detect decay; Alertmanager sends webhooks;
a YAML runbook maps each alert to repairs (reindex, vacuum, retrain, tune, analyze, SQL) run with
validation, rollback, per-index locks, cooldowns and history. Pause healing with a silence.

Start with: vectorheal serve --config.file vectorheal.yml`)
	app.UsageWriter(stdout)
	app.ErrorWriter(stderr)
	app.Version(version.Print("vectorheal"))
	app.HelpFlag.Short('h')
	logCfg := &promslog.Config{Writer: stderr}
	promslogflag.AddFlags(app, logCfg)

	actions := map[string]action{}
	add := func(name string, a action) { actions[name] = a }
	add(registerServe(app))
	add(registerMigrate(app, stdout))
	add(registerConfigCheck(app, stdout, stderr))
	add(registerCheck(app, stdout, stderr))
	add(registerRunbookValidate(app, stdout, stderr))
	add(registerRunbookTest(app, stdout, stderr))
	add(registerStatus(app, stdout, stderr))
	add(registerIssues(app, stdout, stderr))
	add(registerRepairs(app, stdout, stderr))
	add(registerRepair(app, stdout, stderr))
	add(registerApprove(app, stdout, stderr))
	add(registerCancel(app, stdout, stderr))
	add(registerResetCircuit(app, stdout, stderr))
	add(registerRequestCheck(app, stdout, stderr))
	add(registerPause(app, stdout, stderr))
	add(registerResume(app, stdout, stderr))
	add(registerPauses(app, stdout, stderr))
	add(registerVersion(app, stdout))
	return app, actions, logCfg
}

func registerVersion(app *kingpin.Application, stdout io.Writer) (string, action) {
	c := app.Command("version", "Print version and build information.")
	return c.FullCommand(), func(context.Context, *slog.Logger) int {
		fmt.Fprintln(stdout, version.Print("vectorheal"))
		return 0
	}
}
