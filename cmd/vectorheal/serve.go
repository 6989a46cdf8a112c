package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"strings"
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
	"github.com/vectorheal/vectorheal/internal/shard"
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
	// shard, totalShards and shardBy split measuring among replicas (internal/shard).
	shard       string
	totalShards int
	shardBy     string
}

func registerServe(app *kingpin.Application) (string, action) {
	c := app.Command("serve", `Run vectorheal: the exporter (/metrics), the Alertmanager receiver
(/webhook/alertmanager), the JSON API (/api/v1/) and the repair workers, in one process.

Endpoints: /metrics, /-/healthy (the process runs), /-/ready (started, and the receiver can
accept alerts: it has credentials and the state store answers; 503 with the reason otherwise).
The probes need no credentials whatever --web.config.file says; its basic_auth_users guard
/metrics and may read the API; the receiver and the API check vectorheal's own tokens
(docs/operations.md, "Authentication"). SIGTERM or SIGINT shuts down cleanly and exits 0.`)
	o := &serveOptions{configFile: configFlag(c)}
	// The default shown is listen_address's default; a config file that sets listen_address
	// is followed unless the flag is given.
	o.web = webflag.AddFlags(c, ":9877")
	c.GetFlag("web.listen-address").IsSetByUser(&o.listenSet).
		Help("Address to listen on; repeat the flag for several (e.g. :9877, [::1]:9877, vsock://:9877). Without it, listen_address of the configuration file (default :9877).")
	c.Flag("no-migrate", "Do not apply state store migrations at start (run 'vectorheal migrate' yourself).").
		BoolVar(&o.noMigrate)
	c.Flag("exporter.shard", "This replica's shard of the indexes to measure, from 0, or auto: the ordinal at the end of the hostname, as a StatefulSet names its pods (vectorheal-0, vectorheal-1, ...). Each index is measured by the one shard its (target, database, index) hashes to.").
		Default("0").Envar("VECTORHEAL_SHARD").StringVar(&o.shard)
	c.Flag("exporter.total-shards", "How many shards share the measuring (1: this replica measures every index). Every replica must be given the same number.").
		Default("1").Envar("VECTORHEAL_TOTAL_SHARDS").IntVar(&o.totalShards)
	c.Flag("exporter.shard-by", "What a shard owns whole: index (each index goes to the shard its (target, database, index) hashes to; every shard connects to every target) or target (each target goes, with all its indexes, to the shard its name hashes to; a shard never connects to the others' targets). Every replica must be given the same value. Repairs are not sharded either way.").
		Default(string(shard.ByIndex)).Envar("VECTORHEAL_SHARD_BY").StringVar(&o.shardBy)
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
	start    *startup
	web      *webServer
	targets  *targets.Set
	state    *pgxpool.Pool // nil when no state store is configured
	healing  *healing      // nil when no state store is configured
	ready    atomic.Bool
}

// serve runs until ctx ends, then shuts down within a grace period.
func serve(ctx context.Context, cfg *config.Config, o *serveOptions, logger *slog.Logger) error {
	flags := *o.web
	if !o.listenSet {
		flags.WebListenAddresses = &[]string{cfg.ListenAddress}
	}
	ws, err := newWebServer(flags, logger)
	if err != nil {
		return err
	}
	sh, err := o.parseShard()
	if err != nil {
		return err
	}
	// The checks 'config check' makes, made by the same function.
	st, err := prepare(ctx, cfg)
	if err != nil {
		return err
	}
	defer st.close()
	for _, w := range st.warnings {
		logger.Warn(w)
	}
	for _, r := range st.notReady {
		logger.Error("not ready: "+r, "endpoint", "/-/ready")
	}
	s := &server{cfg: cfg, logger: logger, registry: prometheus.NewRegistry(), start: st, web: ws, targets: st.targets}
	s.registry.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		versioncollector.NewCollector("vectorheal"),
	)

	if st.stateDSN != "" {
		if s.state, err = openStateStore(ctx, st.stateDSN, cfg.StateStore.Schema, !o.noMigrate, logger); err != nil {
			return err
		}
		defer s.state.Close()
	}

	// The exporter reads with each target's read_dsn, the repair workers use its repair_dsn.
	// Sharded by target, the exporter leaves out the targets of other shards, but the engine
	// is handed every target: a repair goes to whichever replica receives the alert or wins
	// it in the state store, so any replica must be able to repair any target. Pools connect
	// lazily, so a target this replica neither measures nor repairs costs no connection.
	exp := exporter.New(s.targets.Reading(), cfg.Exporter, logger.With("component", "exporter"), exporter.WithStateStore(s.state), exporter.WithShard(sh))
	if sh.Total > 1 {
		logger.Info("measuring one shard of the indexes", "shard", sh.Index, "total_shards", sh.Total, "shard_by", sh.Granularity())
	}
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

	return s.serveHTTP(ctx, flags)
}

// parseShard reads this replica's shard from --exporter.shard, --exporter.total-shards and
// --exporter.shard-by.
func (o *serveOptions) parseShard() (shard.Shard, error) {
	host, _ := os.Hostname()
	sh, err := shard.Parse(o.shard, o.totalShards, host)
	if err != nil {
		return shard.Shard{}, fmt.Errorf("--exporter.shard: %w", err)
	}
	if sh.By, err = shard.ParseBy(o.shardBy); err != nil {
		return shard.Shard{}, fmt.Errorf("--exporter.shard-by: %w", err)
	}
	return sh, nil
}

// openStateStore connects to the state store and, with migrate, brings its schema up to date.
func openStateStore(ctx context.Context, dsn, schema string, migrate bool, logger *slog.Logger) (*pgxpool.Pool, error) {
	pool, err := store.Open(ctx, dsn, schema, 10)
	if err != nil {
		return nil, err
	}
	if migrate {
		if _, err := store.Migrate(ctx, pool, schema, logger); err != nil {
			pool.Close()
			return nil, err
		}
	}
	return pool, nil
}

// serveHTTP serves the routes until ctx ends, then shuts the server down, giving requests in
// flight 30 s.
func (s *server) serveHTTP(ctx context.Context, flags web.FlagConfig) error {
	srv := &http.Server{Handler: s.routes(), ReadHeaderTimeout: 10 * time.Second}
	errc := make(chan error, 1)
	go func() { errc <- s.web.serve(srv) }()
	s.ready.Store(true)
	s.logger.Info("vectorheal started", "addresses", *flags.WebListenAddresses, "systemd_socket", *flags.WebSystemdSocket,
		"targets", len(s.cfg.Targets))

	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	s.logger.Info("shutting down")
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

// Probe paths: unauthenticated whatever the web configuration, as a kubelet or a load
// balancer sends no credentials.
const (
	healthyPath = "/-/healthy"
	readyPath   = "/-/ready"
	reloadPath  = "/-/reload"
)

// routes returns the HTTP handler of every endpoint, behind the web configuration's checks.
func (s *server) routes() http.Handler {
	r := chi.NewRouter()
	r.Handle("/metrics", promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{
		ErrorLog:          slog.NewLogLogger(s.logger.Handler(), slog.LevelError),
		EnableOpenMetrics: true,
	}))
	r.Get(healthyPath, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("Healthy.\n"))
	})
	r.Get(readyPath, s.serveReady)
	if s.healing != nil {
		// Both handlers route on the full path, so they are handed it unchanged.
		if s.healing.webhook != nil {
			r.Handle(webhook.Path, s.healing.webhook)
		}
		r.Handle(api.Prefix+"/*", s.healing.api)
		// Reloading changes what gets repaired, so it takes the admin token like every change.
		r.With(api.RequireAdmin(s.healing.access)).Post(reloadPath, s.healing.serveReload)
	}
	return s.web.handler(r, ownAuth)
}

// ownAuth says which paths the web configuration's basic auth leaves alone: the probes, and
// the paths that check vectorheal's own credentials (the receiver's, the API's tokens).
func ownAuth(path string) bool {
	switch {
	case path == healthyPath, path == readyPath, path == reloadPath, path == webhook.Path:
		return true
	}
	return strings.HasPrefix(path, api.Prefix+"/")
}

// serveReady answers 200 once serve has started and while the receiver can accept alerts;
// 503 with the reasons otherwise (no receiver credentials, the state store unreachable). A
// process without a state store (the exporter alone) is ready once started.
func (s *server) serveReady(w http.ResponseWriter, r *http.Request) {
	reasons := s.notReady(r.Context())
	if len(reasons) > 0 {
		http.Error(w, "Not ready: "+strings.Join(reasons, "; "), http.StatusServiceUnavailable)
		return
	}
	_, _ = w.Write([]byte("Ready.\n"))
}

func (s *server) notReady(ctx context.Context) []string {
	if !s.ready.Load() {
		return []string{"starting"}
	}
	reasons := append([]string(nil), s.start.notReady...)
	if s.state != nil {
		ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
		defer cancel()
		if err := s.state.Ping(ctx); err != nil {
			reasons = append(reasons, "the state store does not answer, so alerts cannot be recorded: "+err.Error())
		}
	}
	return reasons
}
