// Package api serves vectorheal's JSON API under /api/v1/: healing status, issues (alerts and
// what became of them), repairs and their history, manual repairs, approval and cancel,
// circuit reset, forced health checks, and pause/resume as Alertmanager silences. Reads need
// the read token, the admin token or a user of the web configuration (basic auth); every call
// that changes something needs the admin token (Authorization: Bearer). The webhook's token
// is neither. X-Vectorheal-User names the caller for the history (approved_by, requested_by,
// a silence's createdBy).
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
//	POST /api/v1/pause                  PauseBody -> 201 PauseResult: the silence and the alerts it covers
//	POST /api/v1/resume                 ResumeBody (id, or the target/index the pause was made with)
//	GET  /api/v1/pauses                 vectorheal's silences, active or pending
//
// Errors are {"error": "..."}: 400 names the field, 401 without credentials, 403 for
// credentials that do not allow the call (or no token configured for it), 404 for an unknown
// repair, target or index, 409 for a repair in the wrong state (or a pause with an empty
// runbook), 502 when Alertmanager fails, 503 for pause calls without Alertmanager configured.
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
	"github.com/vectorheal/vectorheal/remediation/record"
	"github.com/vectorheal/vectorheal/remediation/runbook"
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

// Healing is what the API needs of the repair engine; *engine.Engine implements it. The API
// depends on this and on the records' shapes (package record), not on the engine.
type Healing interface {
	Status(ctx context.Context) (record.Status, error)
	Issues(ctx context.Context, firingOnly bool, limit int) ([]record.Issue, error)
	Repairs(ctx context.Context, f record.Filter) ([]record.Repair, error)
	Repair(ctx context.Context, id int64) (record.Repair, error)
	Trigger(ctx context.Context, req record.TriggerRequest, by string) (int64, error)
	Approve(ctx context.Context, id int64, by string) error
	Cancel(ctx context.Context, id int64, by string) error
	Circuits(ctx context.Context) ([]record.Circuit, error)
	ResetCircuit(ctx context.Context, target, datname, schema, index, by string) (int64, error)
	RequestCheck(ctx context.Context, target, schema, index, by string) (int64, error)
	Budgets(ctx context.Context) ([]record.IndexBudget, error)
}

// Options configure the API.
type Options struct {
	// Engine answers status, issues and repairs. Required.
	Engine Healing
	// Silences, when set, backs pause, resume and pauses; nil answers them 503.
	Silences Silences
	// Access says who may read and who may change; see Access.
	Access Access
	// Runbook returns the runbook in force; a pause silences the alerts its entries act on.
	// Nil: a pause covers every alert of its scope but vectorheal's own.
	Runbook func() *runbook.Runbook
	// Logger; nil discards.
	Logger *slog.Logger
}

type api struct {
	e        Healing
	silences Silences
	runbook  func() *runbook.Runbook
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
	a := &api{e: o.Engine, silences: o.Silences, runbook: o.Runbook, log: o.Logger.With("component", "api")}
	r := chi.NewRouter()
	r.Route(Prefix, func(r chi.Router) {
		r.Group(func(r chi.Router) {
			r.Use(RequireRead(o.Access))
			r.Get("/status", a.status)
			r.Get("/issues", a.issues)
			r.Get("/repairs", a.listRepairs)
			r.Get("/repairs/{id}", a.getRepair)
			r.Get("/circuits", a.circuits)
			r.Get("/budgets", a.budgets)
			r.Get("/pauses", a.pauses)
		})
		r.Group(func(r chi.Router) {
			r.Use(RequireAdmin(o.Access))
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

// Access says who may call the API. Each token is compared as a digest in constant time, so
// neither a token nor its length leaks through timing.
type Access struct {
	// AdminToken (remediation.api_token) may read and change. Empty: no call that changes
	// something is allowed.
	AdminToken string
	// ReadToken (remediation.api_read_token) may only read.
	ReadToken string
	// BasicUser, when set, says whether HTTP basic credentials are a user of the server's web
	// configuration (basic_auth_users of --web.config.file); such a user may read, as they may
	// read /metrics.
	BasicUser func(user, password string) bool
}

// credential is what a request's Authorization header proves.
type credential int

const (
	credNone  credential = iota // no Authorization header, or a scheme the API does not take
	credWrong                   // a token or basic credentials that are none of Access's
	credBasic                   // a user of the web configuration
	credRead                    // the read token
	credAdmin                   // the admin token
)

// guard checks requests against an Access.
type guard struct {
	admin, read []byte // sha256 of the tokens; nil when unset
	basic       func(user, password string) bool
}

func newGuard(a Access) guard {
	return guard{admin: digest(a.AdminToken), read: digest(a.ReadToken), basic: a.BasicUser}
}

// digest hashes a token so comparisons take the same time whatever its length; nil for "".
func digest(tok string) []byte {
	if tok == "" {
		return nil
	}
	sum := sha256.Sum256([]byte(tok))
	return sum[:]
}

func (g guard) identify(r *http.Request) credential {
	h := r.Header.Get("Authorization")
	scheme, cred, _ := strings.Cut(h, " ")
	switch {
	case strings.EqualFold(scheme, "Bearer"):
		sum := digest(strings.TrimSpace(cred))
		// Both compares always run, so timing does not tell which token came close.
		admin := g.admin != nil && sum != nil && subtle.ConstantTimeCompare(sum, g.admin) == 1
		read := g.read != nil && sum != nil && subtle.ConstantTimeCompare(sum, g.read) == 1
		switch {
		case admin:
			return credAdmin
		case read:
			return credRead
		}
		return credWrong
	case strings.EqualFold(scheme, "Basic"):
		u, p, ok := r.BasicAuth()
		if ok && g.basic != nil && g.basic(u, p) {
			return credBasic
		}
		return credWrong
	}
	return credNone
}

// RequireRead returns middleware that lets a request through when it carries the read or the
// admin token (Authorization: Bearer) or the basic credentials of a web configuration user.
func RequireRead(a Access) func(http.Handler) http.Handler {
	g := newGuard(a)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if g.admin == nil && g.read == nil && g.basic == nil {
				writeError(w, http.StatusForbidden, "reading the API needs a token and none is configured (remediation.api_read_token or remediation.api_token)")
				return
			}
			switch g.identify(r) {
			case credAdmin, credRead, credBasic:
				next.ServeHTTP(w, r)
			case credWrong:
				writeError(w, http.StatusForbidden, "wrong credentials for the API (the webhook's token is not an API token)")
			default:
				w.Header().Set("WWW-Authenticate", `Bearer realm="vectorheal"`)
				writeError(w, http.StatusUnauthorized, "this call needs Authorization: Bearer <api read or admin token>")
			}
		})
	}
}

// RequireAdmin returns middleware that lets a request through only when it carries the admin
// token (an unset admin token refuses every request). The API guards the calls that change
// something with it; serve guards POST /-/reload with it too.
func RequireAdmin(a Access) func(http.Handler) http.Handler {
	g := newGuard(a)
	return func(next http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if g.admin == nil {
				writeError(w, http.StatusForbidden, "this call changes state and no API admin token is configured (remediation.api_token)")
				return
			}
			switch g.identify(r) {
			case credAdmin:
				next.ServeHTTP(w, r)
			case credRead, credBasic:
				writeError(w, http.StatusForbidden, "this call changes state: it needs the admin token (remediation.api_token); these credentials may only read")
			case credWrong:
				writeError(w, http.StatusForbidden, "wrong API token (the webhook's token is not an API token)")
			default:
				w.Header().Set("WWW-Authenticate", `Bearer realm="vectorheal"`)
				writeError(w, http.StatusUnauthorized, "this call needs Authorization: Bearer <api admin token>")
			}
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
	case errors.Is(err, record.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, record.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case errors.Is(err, record.ErrInvalid):
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
		return 0, fmt.Errorf("%w: %s %q is not a duration such as 30m or 2h", record.ErrInvalid, field, s)
	}
	return d, nil
}
