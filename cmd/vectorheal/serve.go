package main

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	versioncollector "github.com/prometheus/client_golang/prometheus/collectors/version"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/exporter-toolkit/web"
	webflag "github.com/prometheus/exporter-toolkit/web/kingpinflag"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/api"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/webhook"
)

// serveOptions are serve's flags.
type serveOptions struct {
	configFile *string
	// web holds exporter-toolkit's flags: listen addresses (repeatable), systemd socket
	// activation, the web configuration file.
	web *web.FlagConfig
	// listenSet says --web.listen-address was given; otherwise listen_address of the config
	// file applies.
	listenSet bool
	noMigrate bool
}

func registerServe(app *kingpin.Application) (string, action) {
	c := app.Command("serve", `Run vectorheal: the exporter (/metrics), the Alertmanager receiver
(/webhook/alertmanager), the JSON API (/api/v1/) and the repair workers, in one process.

Endpoints: /metrics, /-/healthy (the process runs), /-/ready (state store migrated, components
started). SIGTERM or SIGINT shuts down cleanly and exits 0.`)
	o := &serveOptions{configFile: configFlag(c)}
	// The default shown is listen_address's default; a config file that sets listen_address
	// is followed unless the flag is given.
	o.web = webflag.AddFlags(c, ":9877")
	c.GetFlag("web.listen-address").IsSetByUser(&o.listenSet).
		Help("Address to listen on; repeat the flag for several (e.g. :9877, [::1]:9877, vsock://:9877). Without it, listen_address of the configuration file (default :9877).")
	c.Flag("no-migrate", "Do not apply state store migrations at start (run 'vectorheal migrate' yourself).").
		BoolVar(&o.noMigrate)
	return c.FullCommand(), func(ctx context.Context, logger *slog.Logger) int {
		cfg, ok := loadConfig(*o.configFile, logger)
		if !ok {
			return 1
		}
		if err := serve(ctx, cfg, o, logger); err != nil {
			logger.Error("serve failed", "err", err)
			return 1
		}
		return 0
	}
}

// server holds what serve wires together.
type server struct {
	cfg      *config.Config
	logger   *slog.Logger
	registry *prometheus.Registry
	targets  *targets.Set
	state    *pgxpool.Pool // nil when no state store is configured
	healing  *healing      // nil when no state store is configured
	ready    atomic.Bool
}

// serve runs until ctx ends, then shuts down within a grace period.
func serve(ctx context.Context, cfg *config.Config, o *serveOptions, logger *slog.Logger) error {
	s := &server{cfg: cfg, logger: logger, registry: prometheus.NewRegistry()}
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("vectorheal"),
	)

	ts, err := targets.Open(ctx, cfg.Targets)
	if err != nil {
		return err
	}
	defer ts.Close()
	s.targets = ts

	if cfg.StateStore.DSN.IsSet() {
		dsn, err := cfg.StateStore.DSN.Resolve()
		if err != nil {
			return errors.Join(errors.New("state_store.dsn"), err)
		}
		pool, err := store.Open(ctx, dsn, cfg.StateStore.Schema, 10)
		if err != nil {
			return err
		}
		defer pool.Close()
		s.state = pool
		if !o.noMigrate {
			if _, err := store.Migrate(ctx, pool, cfg.StateStore.Schema, logger); err != nil {
				return err
			}
		}
	} else {
		logger.Warn("no state_store configured: alerts are not received and nothing is repaired")
	}

	// The exporter reads with each target's read_dsn, the repair workers use its repair_dsn.
	exp := exporter.New(ts.Reading(), cfg.Exporter, logger.With("component", "exporter"), exporter.WithStateStore(s.state))
	s.registry.MustRegister(exp)

	var wg sync.WaitGroup
	runCtx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		wg.Wait()
	}()
	wg.Go(func() { exp.Run(runCtx) })

	if s.state != nil {
		h, stop, err := s.startHealing(ctx)
		if err != nil {
			return err
		}
		s.healing = h
		defer func() {
			stopCtx, done := context.WithTimeout(context.WithoutCancel(ctx), stopTimeout)
			defer done()
			stop(stopCtx)
		}()
	}

	flags := *o.web
	if !o.listenSet {
		flags.WebListenAddresses = &[]string{cfg.ListenAddress}
	}
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- web.ListenAndServe(srv, &flags, logger) }()
	s.ready.Store(true)
	logger.Info("vectorheal started", "addresses", *flags.WebListenAddresses, "systemd_socket", *flags.WebSystemdSocket,
		"targets", len(cfg.Targets))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	logger.Info("shutting down")
	shutdownCtx, done := context.WithTimeout(context.Background(), 30*time.Second)
	defer done()
	if err := srv.Shutdown(shutdownCtx); err != nil {
		return err
	}
	if err := <-errc; err != nil && !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// routes returns the HTTP handler of every endpoint.
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelError),
		EnableOpenMetrics: true,
	}))
	r.Get("/-/healthy", func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Healthy.\n"))
	})
	r.Get("/-/ready", func(w http.ResponseWriter, _ *http.Request) {
		if !s.ready.Load() {
			http.Error(w, "Not ready.", http.StatusServiceUnavailable)
			return
		}
		_, _ = w.Write([]byte("Ready.\n"))
	})
	if s.healing != nil {
		// Both handlers route on the full path, so they are handed it unchanged.
		if s.healing.webhook != nil {
			r.Handle(webhook.Path, s.healing.webhook)
		}
		r.Handle(api.Prefix+"/*", s.healing.api)
		// Reloading changes what gets repaired, so it takes the API token like every change.
		r.With(api.RequireToken(s.healing.token)).Post("/-/reload", s.healing.serveReload)
	}
	return r
}
