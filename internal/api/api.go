// Package api serves vectorheal's JSON API under /api/v1/: healing status, issues (alerts and
// what became of them), repairs and their history, manual repairs, approval and cancel,
// circuit reset, forced health checks, and pause/resume as Alertmanager silences. Reads are
// open like /metrics; every call that changes something needs the API token
// (Authorization: Bearer), compared in constant time. X-Vectorheal-User names the caller for
// the history (approved_by, requested_by, a silence's createdBy).
//
//	GET  /api/v1/status                 StatusBody: paused?, running, queued, awaiting approval, last 24h, open circuits, pauses
//	GET  /api/v1/issues?firing=true&limit=N
//	GET  /api/v1/repairs?target=&schema=&index=&outcome=&limit=   outcome: a state or "active"
//	GET  /api/v1/repairs/{id}           the repair with plan and steps (impact, SQL, before/after, validation)
//	POST /api/v1/repairs                TriggerBody -> 202 {"id": N}
//	POST /api/v1/repairs/{id}/approve   409 unless awaiting_approval
//	POST /api/v1/repairs/{id}/cancel    queued: cancelled at once; running: SQL cancelled, step rolled back
//	GET  /api/v1/circuits
//	POST /api/v1/circuits/reset         IndexBody
//	POST /api/v1/checks                 IndexBody -> 202; recorded in check_requests for the exporter
//	POST /api/v1/pause                  PauseBody -> 201 {"id": silence id}
//	POST /api/v1/resume                 ResumeBody (id, or the target/index the pause was made with)
//	GET  /api/v1/pauses                 vectorheal's silences, active or pending
//
// Errors are {"error": "..."}: 400 names the field, 401/403 for the token, 404 for an unknown
// repair, target or index, 409 for a repair in the wrong state, 502 when Alertmanager fails,
// 503 for pause calls without Alertmanager configured.
package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/remediation/engine"
)

// Prefix is where the API lives when the handler is mounted at /.
const Prefix = "/api/v1"

// UserHeader names who makes a call, for history (approved_by, reset_by, createdBy).
const UserHeader = "X-Vectorheal-User"

// maxBody bounds a request body; API requests are small.
const maxBody = 1 << 20

// Silences is what pause and resume need of Alertmanager; *amclient.Client implements it.
type Silences interface {
	CreateSilence(ctx context.Context, s amclient.Silence) (string, error)
	Silences(ctx context.Context, filter []string) ([]amclient.Silence, error)
	ExpireSilence(ctx context.Context, id string) error
}

// Options configure the API.
type Options struct {
	// Engine answers status, issues and repairs. Required.
	Engine *engine.Engine
	// Silences, when set, backs pause, resume and pauses; nil answers them 503.
	Silences Silences
	// Token guards mutating calls (Authorization: Bearer). Empty refuses every mutating call.
	Token string
	// Logger; nil discards.
	Logger *slog.Logger
}

type api struct {
	e        *engine.Engine
	silences Silences
	log      *slog.Logger
}

// New returns the API handler, serving Prefix when mounted at /.
func New(o Options) (http.Handler, error) {
	if o.Engine == nil {
		return nil, errors.New("api: Engine is required")
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	a := &api{e: o.Engine, silences: o.Silences, log: o.Logger.With("component", "api")}
	r := chi.NewRouter()
	r.Route(Prefix, func(r chi.Router) {
		r.Get("/status", a.status)
		r.Get("/issues", a.issues)
		r.Get("/repairs", a.listRepairs)
		r.Get("/repairs/{id}", a.getRepair)
		r.Get("/circuits", a.circuits)
		r.Get("/budgets", a.budgets)
		r.Get("/pauses", a.pauses)
		r.Group(func(r chi.Router) {
			r.Use(RequireToken(o.Token))
			r.Post("/repairs", a.trigger)
			r.Post("/repairs/{id}/approve", a.approve)
			r.Post("/repairs/{id}/cancel", a.cancel)
			r.Post("/circuits/reset", a.resetCircuit)
			r.Post("/checks", a.check)
			r.Post("/pause", a.pause)
			r.Post("/resume", a.resume)
		})
		r.NotFound(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, "no API endpoint "+r.Method+" "+r.URL.Path)
		})
		r.MethodNotAllowed(func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusMethodNotAllowed, "method "+r.Method+" not allowed on "+r.URL.Path)
		})
	})
	return r, nil
}

// RequireToken returns middleware that lets a request through only when it carries token as
// a bearer token (an empty token refuses every request). The comparison is of digests in
// constant time, so neither the token nor its length leaks through timing. The API guards its
// mutating calls with it; serve guards POST /-/reload with it too.
func RequireToken(token string) func(http.Handler) http.Handler {
	var want []byte // sha256 of the token, nil when none
	if token != "" {
		sum := sha256.Sum256([]byte(token))
		want = sum[:]
	}
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if want == nil {
				writeError(w, http.StatusForbidden, "this call changes state and no API token is configured (remediation.api_token)")
				return
			}
			tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
			if !ok {
				w.Header().Set("WWW-Authenticate", `Bearer realm="vectorheal"`)
				writeError(w, http.StatusUnauthorized, "this call needs Authorization: Bearer <api token>")
				return
			}
			sum := sha256.Sum256([]byte(tok))
			if subtle.ConstantTimeCompare(sum[:], want) != 1 {
				writeError(w, http.StatusForbidden, "wrong API token")
				return
			}
			next.ServeHTTP(w, r)
		})
	}
}

func user(r *http.Request) string {
	u := strings.TrimSpace(r.Header.Get(UserHeader))
	if u == "" || len(u) > 200 {
		return "api"
	}
	return u
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(v)
}

// ErrorBody is every error answer.
type ErrorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, ErrorBody{Error: msg})
}

// fail answers err with the status its kind calls for.
func (a *api) fail(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, engine.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, engine.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, engine.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	default:
		a.log.Error("api call failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusInternalServerError, err.Error())
	}
}

// decode reads a JSON body strictly into v; its error names the field.
func decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if ct := r.Header.Get("Content-Type"); ct != "" && !strings.HasPrefix(ct, "application/json") {
		writeError(w, http.StatusUnsupportedMediaType, "Content-Type must be application/json")
		return false
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxBody))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		var (
			syn  *json.SyntaxError
			typ  *json.UnmarshalTypeError
			size *http.MaxBytesError
		)
		msg := err.Error()
		switch {
		case errors.Is(err, io.EOF):
			msg = "empty body; a JSON object is required"
		case errors.Is(err, io.ErrUnexpectedEOF):
			msg = "malformed JSON: the body ends inside the object"
		case errors.As(err, &syn):
			msg = fmt.Sprintf("malformed JSON at byte %d: %v", syn.Offset, err)
		case errors.As(err, &typ):
			msg = fmt.Sprintf("field %s: want %s, got %s", typ.Field, typ.Type, typ.Value)
		case errors.As(err, &size):
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("body larger than %d bytes", maxBody))
			return false
		}
		writeError(w, http.StatusBadRequest, msg)
		return false
	}
	return true
}

func pathID(w http.ResponseWriter, r *http.Request) (int64, bool) {
	id, err := strconv.ParseInt(chi.URLParam(r, "id"), 10, 64)
	if err != nil || id <= 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("repair id %q is not a positive integer", chi.URLParam(r, "id")))
		return 0, false
	}
	return id, true
}

func queryInt(w http.ResponseWriter, r *http.Request, name string) (int, bool) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return 0, true
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("query parameter %s=%q is not a non-negative integer", name, s))
		return 0, false
	}
	return n, true
}

// duration parses "90s", "2h", "1h30m"; empty gives def.
func duration(field, s string, def time.Duration) (time.Duration, error) {
	if s == "" {
		return def, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("%w: %s %q is not a duration such as 30m or 2h", engine.ErrInvalid, field, s)
	}
	return d, nil
}
