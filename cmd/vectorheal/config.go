package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/alecthomas/kingpin/v2"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/exporter-toolkit/web"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func registerConfigCheck(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c := app.Command("config", "Work with the configuration file.").Command("check",
		`Check a configuration file as serve does before it starts: unknown keys, wrong types and bad
values (with file and line), secrets that cannot be read (unset environment variables,
unreadable files), the runbook against the strategies of this binary, Alertmanager's
credentials, the receiver's credentials and the API tokens. Exits 1 when serve would refuse
to start or would never be ready; warnings alone exit 0.`)
	file := c.Arg("file", "Configuration file to check.").Required().String()
	webFile := c.Flag("web.config.file", "Also check this web configuration file (TLS, basic_auth_users) as serve would.").String()
	return c.FullCommand(), func(ctx context.Context, _ *slog.Logger) int {
		cfg, err := config.Load(*file)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		st, err := prepare(ctx, cfg)
		if err == nil {
			st.close()
		}
		if *webFile != "" {
			if werr := web.Validate(*webFile); werr != nil {
				err = errors.Join(err, fmt.Errorf("--web.config.file %s: %w", *webFile, werr))
			}
		}
		if st != nil {
			for _, w := range st.warnings {
				fmt.Fprintf(stderr, "%s: warning: %s\n", *file, w)
			}
			for _, r := range st.notReady {
				fmt.Fprintf(stderr, "%s: serve would never be ready: %s\n", *file, r)
			}
		}
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		if len(st.notReady) > 0 {
			return 1
		}
		fmt.Fprintf(stdout, "%s: OK\n", *file)
		return 0
	}
}

// startup is what serve resolves from its configuration before it serves anything: every
// secret read, the runbook loaded against the strategies of this binary, the clients built.
// 'config check' computes it with the same function, so a file the check passes is one serve
// starts with, and is ready with.
type startup struct {
	targets *targets.Set // pools are lazy: opening connects nowhere
	// stateDSN is the state store's DSN; empty without a state store, and then nothing below
	// is resolved (no healing, no receiver, no API).
	stateDSN     string
	strategies   *strategy.Registry
	loadRunbook  func() (*runbook.Runbook, error)
	runbook      *runbook.Runbook
	alertmanager *amclient.Client // nil without alertmanager.url
	webhook      webhookCredentials
	adminToken   string
	readToken    string
	// warnings are worth a look but change nothing; notReady are why /-/ready would answer
	// 503 for as long as serve runs.
	warnings []string
	notReady []string
}

// webhookCredentials are the receiver's, resolved.
type webhookCredentials struct {
	token, user, password string
	open                  bool // webhook.allow_unauthenticated
}

func (c webhookCredentials) any() bool { return c.token != "" || c.user != "" || c.open }

// prepare makes every check serve makes of cfg before it starts; the error joins all the
// problems found, each naming its key. A nil error leaves targets open for the caller to close.
func prepare(ctx context.Context, cfg *config.Config) (*startup, error) {
	st := &startup{}
	var errs []error
	fail := func(key string, err error) { errs = append(errs, fmt.Errorf("%s: %w", key, err)) }
	ts, err := targets.Open(ctx, cfg.Targets)
	if err != nil {
		errs = append(errs, err)
	}
	st.targets = ts
	// targets.Open resolved the read, repair and standby DSNs; migrate's is read by migrate
	// alone, but a config that names one it cannot resolve is wrong all the same.
	for _, t := range cfg.Targets {
		if t.MigrateDSN.IsSet() {
			if _, err := t.MigrateDSN.Resolve(); err != nil {
				errs = append(errs, fmt.Errorf("target %q: migrate_dsn: %w", t.Name, err))
			}
		}
	}
	if cfg.StateStore.DSN.IsSet() {
		st.prepareHealing(cfg, fail)
	} else {
		st.warnings = append(st.warnings, "no state_store: alerts are not received and nothing is repaired (the exporter runs alone)")
	}
	if len(errs) > 0 {
		st.close()
		return st, errors.Join(errs...)
	}
	return st, nil
}

// prepareHealing resolves what the receiver, the engine and the API need.
func (st *startup) prepareHealing(cfg *config.Config, fail func(key string, err error)) {
	var err error
	if st.stateDSN, err = cfg.StateStore.DSN.Resolve(); err != nil {
		fail("state_store.dsn", err)
	} else if _, err := pgxpool.ParseConfig(st.stateDSN); err != nil {
		fail("state_store.dsn", err)
	}
	if st.strategies, err = strategy.Default(strategy.Options{}); err != nil {
		fail("strategies", err)
	} else {
		reg, path := st.strategies, cfg.Remediation.Runbook
		st.loadRunbook = func() (*runbook.Runbook, error) {
			if path == "" {
				return &runbook.Runbook{}, nil
			}
			return runbook.Load(path, reg, exporter.FigureNames())
		}
		if st.runbook, err = st.loadRunbook(); err != nil {
			fail("remediation.runbook", err)
		} else if path == "" {
			st.warnings = append(st.warnings, "no remediation.runbook: alerts are recorded but nothing is repaired")
		}
	}
	if cfg.Alertmanager.URL != "" {
		if st.alertmanager, err = amclient.New(cfg.Alertmanager); err != nil {
			fail("alertmanager", err)
		}
	} else {
		st.warnings = append(st.warnings, "no alertmanager.url: repairs run without checking silences and inhibitions first, and pause/resume are unavailable")
	}
	st.prepareCredentials(cfg, fail)
}

// prepareCredentials resolves the receiver's credentials and the API tokens, and refuses a
// token that serves two roles: the webhook's token must never be an API token.
func (st *startup) prepareCredentials(cfg *config.Config, fail func(key string, err error)) {
	var err error
	w := &st.webhook
	w.open = cfg.Webhook.AllowUnauthenticated
	if w.token, err = cfg.Webhook.BearerToken.Resolve(); err != nil {
		fail("webhook.bearer_token", err)
	}
	if ba := cfg.Webhook.BasicAuth; ba != nil {
		w.user = ba.Username
		if w.password, err = ba.Password.Resolve(); err != nil {
			fail("webhook.basic_auth.password", err)
		}
	}
	if st.adminToken, err = cfg.Remediation.APIToken.Resolve(); err != nil {
		fail("remediation.api_token", err)
	}
	if st.readToken, err = cfg.Remediation.APIReadToken.Resolve(); err != nil {
		fail("remediation.api_read_token", err)
	}
	same := func(a, b string) bool { return a != "" && a == b }
	switch {
	case same(st.adminToken, w.token):
		fail("remediation.api_token", errors.New("is the webhook's bearer_token: give the API its own token, so a sender of alerts cannot change anything"))
	case same(st.readToken, w.token):
		fail("remediation.api_read_token", errors.New("is the webhook's bearer_token: give the API its own token"))
	case same(st.readToken, st.adminToken):
		fail("remediation.api_read_token", errors.New("is the admin token (remediation.api_token): a read token must differ"))
	}
	switch {
	case !w.any():
		st.notReady = append(st.notReady, "the webhook receiver has no credentials: set webhook.bearer_token or webhook.basic_auth (or webhook.allow_unauthenticated behind mTLS)")
	case w.open && w.token == "" && w.user == "":
		st.warnings = append(st.warnings, "webhook.allow_unauthenticated: anyone who reaches the receiver can queue repairs")
	}
	if st.adminToken == "" {
		st.warnings = append(st.warnings, "no remediation.api_token: the API's calls that change something (repair, approve, cancel, pause, resume, /-/reload) answer 403")
	}
	if st.adminToken == "" && st.readToken == "" {
		st.warnings = append(st.warnings, "no remediation.api_read_token nor api_token: the API can be read only by basic_auth_users of --web.config.file")
	}
}

// close releases what prepare opened.
func (st *startup) close() {
	if st.targets != nil {
		st.targets.Close()
	}
}

// configFlag adds --config.file, the flag of the Prometheus ecosystem every subcommand that
// reads the configuration takes, and --config, its earlier name, kept working but hidden.
func configFlag(c *kingpin.CmdClause) *string {
	path := c.Flag("config.file", "Path of the vectorheal configuration file (see docs/configuration.md).").
		Short('c').Default("vectorheal.yml").String()
	c.Flag("config", "Alias of --config.file.").Hidden().StringVar(path)
	return path
}

// loadConfig loads and validates the config, logging the error on failure.
func loadConfig(path string, logger *slog.Logger) (*config.Config, bool) {
	cfg, err := config.Load(path)
	if err != nil {
		logger.Error("invalid configuration", "err", err)
		return nil, false
	}
	return cfg, true
}
