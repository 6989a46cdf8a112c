package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/api"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
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
	token   string // guards mutating endpoints outside the API too (POST /-/reload)
	logger  *slog.Logger
}

// startHealing builds the engine, the webhook receiver and the API on the state store and
// starts the repair workers (unless remediation.disabled). The returned stop waits for
// running repairs up to ctx's end, then cancels them (the next start rolls them back).
func (s *server) startHealing(ctx context.Context) (*healing, func(context.Context), error) {
	cfg := s.cfg
	h := &healing{logger: s.logger.With("component", "healing")}
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("strategies: %w", err)
	}
	measurer := exporter.NewMeasurer(cfg.Exporter, exporter.MeasureWithStateStore(s.state))
	load := func() (*runbook.Runbook, error) {
		if cfg.Remediation.Runbook == "" {
			return &runbook.Runbook{}, nil
		}
		return runbook.Load(cfg.Remediation.Runbook, reg, measurer.Figures())
	}
	rb, err := load()
	if err != nil {
		return nil, nil, fmt.Errorf("remediation.runbook: %w", err)
	}
	h.runbook = runbook.NewHolder(rb)
	h.reload = func() error { return h.runbook.Reload(load) }

	o := engine.Options{
		State: s.state, Schema: cfg.StateStore.Schema, Targets: s.targets, Strategies: reg, Measurer: measurer,
		Runbook: h.runbook.Get, Config: cfg.Remediation, Workers: !cfg.Remediation.Disabled,
		Logger: s.logger, Registerer: s.registry,
	}
	var silences api.Silences
	if cfg.Alertmanager.URL != "" {
		ac, err := amclient.New(cfg.Alertmanager)
		if err != nil {
			return nil, nil, err
		}
		o.Alertmanager, silences = ac, ac
	} else {
		s.logger.Warn("no alertmanager.url: repairs run without checking silences and inhibitions first, and pause/resume are unavailable")
	}
	if h.engine, err = engine.New(o); err != nil {
		return nil, nil, err
	}

	wo := webhook.Options{Pool: s.state, Hook: h.engine.Hook, AllowUnauthenticated: cfg.Webhook.AllowUnauthenticated,
		MaxBodyBytes: cfg.Webhook.MaxBodyBytes, Logger: s.logger, Registerer: s.registry}
	if wo.BearerToken, err = cfg.Webhook.BearerToken.Resolve(); err != nil {
		return nil, nil, fmt.Errorf("webhook.bearer_token: %w", err)
	}
	if ba := cfg.Webhook.BasicAuth; ba != nil {
		wo.BasicUser = ba.Username
		if wo.BasicPassword, err = ba.Password.Resolve(); err != nil {
			return nil, nil, fmt.Errorf("webhook.basic_auth.password: %w", err)
		}
	}
	if wo.BearerToken == "" && wo.BasicUser == "" && !wo.AllowUnauthenticated {
		// An open receiver would let anyone trigger repairs: without credentials it stays off.
		s.logger.Error("webhook receiver disabled: set webhook.bearer_token or webhook.basic_auth (or webhook.allow_unauthenticated behind mTLS)")
	} else if h.webhook, err = webhook.NewHandler(wo); err != nil {
		return nil, nil, err
	}
	token, err := cfg.Remediation.APIToken.Resolve()
	if err != nil {
		return nil, nil, fmt.Errorf("remediation.api_token: %w", err)
	}
	if token == "" {
		token = wo.BearerToken
	}
	if token == "" {
		s.logger.Warn("no remediation.api_token nor webhook.bearer_token: the API is read-only")
	}
	h.token = token
	if h.api, err = api.New(api.Options{Engine: h.engine, Silences: silences, Token: token, Logger: s.logger}); err != nil {
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
