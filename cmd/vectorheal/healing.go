package main

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/api"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/webhook"
)

// healing is the receiving and repairing half of serve: the webhook, the engine, the runbook
// and the API.
type healing struct {
	engine  *engine.Engine
	runbook *runbook.Holder
	reload  func() error
	webhook http.Handler
	api     http.Handler
	access  api.Access // guards POST /-/reload too
	logger  *slog.Logger
}

// startHealing builds the engine, the webhook receiver and the API on the state store and
// starts the repair workers (unless remediation.disabled). What it needs of the configuration
// was resolved and checked by prepare. The returned stop waits for running repairs up to
// ctx's end, then cancels them (the next start rolls them back).
func (s *server) startHealing(ctx context.Context) (*healing, func(context.Context), error) {
	cfg, st := s.cfg, s.start
	h := &healing{logger: s.logger.With("component", "healing")}
	measurer := exporter.NewMeasurer(cfg.Exporter, exporter.MeasureWithStateStore(s.state), exporter.MeasureOnTargets(s.targets, h.logger))
	h.runbook = runbook.NewHolder(st.runbook)
	s.registry.MustRegister(h.runbook)
	h.reload = func() error { return h.runbook.Reload(st.loadRunbook) }

	o := engine.Options{
		State: s.state, Schema: cfg.StateStore.Schema, Targets: s.targets, Strategies: st.strategies, Measurer: measurer,
		Runbook: h.runbook.Get, Config: cfg.Remediation, Workers: !cfg.Remediation.Disabled,
		Logger: s.logger, Registerer: s.registry,
	}
	var silences api.Silences
	if st.alertmanager != nil {
		o.Alertmanager, silences = st.alertmanager, st.alertmanager
	}
	var err error
	if h.engine, err = engine.New(o); err != nil {
		return nil, nil, err
	}

	if st.webhook.any() {
		wo := webhook.Options{Pool: s.state, Hook: h.engine.Hook, AllowUnauthenticated: st.webhook.open,
			BearerToken: st.webhook.token, BasicUser: st.webhook.user, BasicPassword: st.webhook.password,
			MaxBodyBytes: cfg.Webhook.MaxBodyBytes, Logger: s.logger, Registerer: s.registry}
		if h.webhook, err = webhook.NewHandler(wo); err != nil {
			return nil, nil, err
		}
	}
	// An open receiver would let anyone trigger repairs: without credentials it stays off and
	// /-/ready says why (prepare's notReady).
	h.access = api.Access{AdminToken: st.adminToken, ReadToken: st.readToken, BasicUser: s.web.basicUser}
	if h.api, err = api.New(api.Options{Engine: h.engine, Silences: silences, Access: h.access,
		Runbook: h.runbook.Get, Logger: s.logger}); err != nil {
		return nil, nil, err
	}

	if err := h.engine.Start(ctx); err != nil {
		return nil, nil, err
	}
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-done:
				return
			case <-hup:
				h.reloadRunbook()
			}
		}
	}()
	stop := func(ctx context.Context) {
		signal.Stop(hup)
		close(done)
		if err := h.engine.Stop(ctx); err != nil {
			s.logger.Warn("stop repair workers", "err", err)
		}
	}
	return h, stop, nil
}

// reloadRunbook reads the runbook again; an invalid file is refused and the old one stays.
func (h *healing) reloadRunbook() error {
	if err := h.reload(); err != nil {
		h.logger.Error("runbook reload refused; the previous runbook stays in force", "err", err)
		return err
	}
	h.logger.Info("runbook reloaded", "entries", len(h.runbook.Get().Entries))
	return nil
}

// serveReload is POST /-/reload: 200 when the new runbook is in force, 400 with the reasons
// when it was refused.
func (h *healing) serveReload(w http.ResponseWriter, _ *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	if err := h.reloadRunbook(); err != nil {
		w.WriteHeader(http.StatusBadRequest)
		_ = json.NewEncoder(w).Encode(map[string]string{"error": err.Error()})
		return
	}
	_ = json.NewEncoder(w).Encode(map[string]any{"ok": true, "entries": len(h.runbook.Get().Entries)})
}

// stopTimeout bounds how long serve waits for running repairs at shutdown.
const stopTimeout = 20 * time.Second
