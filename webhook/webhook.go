// Package webhook receives Alertmanager's webhook notifications (payload version 4) and records
// every alert durably in the state store before answering 200, so the repairs they trigger run
// later, outside the request. Retries and the copies an Alertmanager HA pair sends land on the
// same rows: each alert reaches the Hook once.
package webhook

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/config"
)

// Path is where the handler takes notifications when mounted at /.
const Path = "/webhook/alertmanager"

// Alert is one alert of a notification as recorded in the state store.
type Alert struct {
	ID           int64 // alerts.id in the state store
	Fingerprint  string
	Status       string // firing or resolved
	StartsAt     time.Time
	EndsAt       time.Time // zero when Alertmanager sent none
	Labels       map[string]string
	Annotations  map[string]string
	GeneratorURL string
	Receiver     string
	// GroupKey is recorded for reference only: Alertmanager changed its format in 0.28 and may
	// again, so nothing deduplicates on it (an alert is fingerprint, start and status).
	GroupKey string
	// NotificationReason and RouteLabels are the notification's (Alertmanager 0.32 and 0.34
	// on; empty from older releases).
	NotificationReason string
	RouteLabels        map[string]string
}

// Hook runs inside the transaction that records a notification, so an alert and what it
// triggers are durable together; it gets only alerts not recorded before (firing and resolved
// are distinct events of one alert), each with its ID, and is not called when there are none.
// An error rolls the whole notification back and the sender gets a 500, so Alertmanager retries.
type Hook func(ctx context.Context, tx pgx.Tx, alerts []Alert) error

// Options configure the handler.
type Options struct {
	// Pool is the state store (search_path set to vectorheal's schema). Required.
	Pool *pgxpool.Pool
	// Hook is called with the newly recorded alerts; nil records only.
	Hook Hook
	// BearerToken, when set, is accepted in "Authorization: Bearer <token>".
	BearerToken string
	// BasicUser and BasicPassword, when BasicUser is set, are accepted as HTTP basic auth.
	// With both kinds configured either one is enough.
	BasicUser, BasicPassword string
	// AllowUnauthenticated must be true to run without any credential (e.g. behind mTLS set
	// up with --web.config.file); without it NewHandler refuses a handler open to anyone.
	AllowUnauthenticated bool
	// MaxBodyBytes limits the body; 0 means the default of webhook.max_body_bytes
	// (config.DefaultWebhookMaxBodyBytes).
	MaxBodyBytes int64
	// Logger; nil discards.
	Logger *slog.Logger
	// Registerer for the metrics of Metrics(); nil registers nothing.
	Registerer prometheus.Registerer
}

type handler struct {
	pool    *pgxpool.Pool
	hook    Hook
	auth    authenticator
	maxBody int64
	logger  *slog.Logger
	m       *metrics
}

// NewHandler returns a handler that serves POST /webhook/alertmanager when mounted at /.
func NewHandler(o Options) (http.Handler, error) {
	if o.Pool == nil {
		return nil, errors.New("webhook: Options.Pool is required")
	}
	auth, err := newAuthenticator(o.BearerToken, o.BasicUser, o.BasicPassword, o.AllowUnauthenticated)
	if err != nil {
		return nil, err
	}
	if o.MaxBodyBytes < 0 {
		return nil, errors.New("webhook: Options.MaxBodyBytes must not be negative")
	}
	if o.MaxBodyBytes == 0 {
		o.MaxBodyBytes = config.DefaultWebhookMaxBodyBytes
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(o.Registerer)
	if err != nil {
		return nil, err
	}
	h := &handler{pool: o.Pool, hook: o.Hook, auth: auth, maxBody: o.MaxBodyBytes,
		logger: o.Logger.With("component", "webhook"), m: m}
	r := chi.NewRouter()
	r.Post(Path, h.serveNotification)
	r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", http.MethodPost)
		h.m.notification(outcomeMethodNotAllowed)
		writeError(w, http.StatusMethodNotAllowed, "", "only POST is allowed on "+Path)
	})
	return r, nil
}
