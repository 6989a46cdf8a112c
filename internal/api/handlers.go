package api

import (
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// StatusBody is GET /status: the engine's status and the pauses in force.
type StatusBody struct {
	engine.Status
	Paused bool `json:"paused"` // a pause of all healing is active
	// Pauses in force (all, per target or per index); absent when Alertmanager is not
	// configured or did not answer (PausesError says why).
	Pauses      []amclient.Silence `json:"pauses,omitempty"`
	PausesError string             `json:"pauses_error,omitempty"`
}

func (a *api) status(w http.ResponseWriter, r *http.Request) {
	st, err := a.e.Status(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	body := StatusBody{Status: st}
	if a.silences == nil {
		body.PausesError = "alertmanager is not configured"
	} else if ps, err := a.activePauses(r); err != nil {
		body.PausesError = err.Error()
	} else {
		body.Pauses = ps
		for _, p := range ps {
			body.Paused = body.Paused || isGlobal(p)
		}
	}
	writeJSON(w, http.StatusOK, body)
}

func (a *api) issues(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	firing := r.URL.Query().Get("firing") == "true"
	is, err := a.e.Issues(r.Context(), firing, limit)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(is))
}

func (a *api) listRepairs(w http.ResponseWriter, r *http.Request) {
	limit, ok := queryInt(w, r, "limit")
	if !ok {
		return
	}
	q := r.URL.Query()
	for k := range q {
		switch k {
		case "target", "schema", "index", "outcome", "limit":
		default:
			writeError(w, http.StatusBadRequest, fmt.Sprintf("unknown query parameter %q (known: target, schema, index, outcome, limit)", k))
			return
		}
	}
	rs, err := a.e.Repairs(r.Context(), engine.Filter{Target: q.Get("target"), Schema: q.Get("schema"),
		Index: q.Get("index"), State: q.Get("outcome"), Limit: limit})
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(rs))
}

func (a *api) getRepair(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	rep, err := a.e.Repair(r.Context(), id)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, rep)
}

// TriggerBody is POST /repairs.
type TriggerBody struct {
	Target   string         `json:"target"`
	Schema   string         `json:"schema"`
	Index    string         `json:"index"`
	Strategy string         `json:"strategy"`
	Params   map[string]any `json:"params"`
	DryRun   bool           `json:"dry_run"`
	Timeout  string         `json:"timeout"` // e.g. "30m"; default: remediation.default_timeout
	Validate *ValidateBody  `json:"validate"`
}

// ValidateBody is the optional validation of a manual repair.
type ValidateBody struct {
	Figure        string   `json:"figure"`
	Fallback      string   `json:"fallback"`
	Op            string   `json:"op"`
	Value         *float64 `json:"value"`
	AsBuiltFactor float64  `json:"as_built_factor"`
	Wait          string   `json:"wait"`
	Attempts      int      `json:"attempts"`
}

// Created answers a call that made something.
type Created struct {
	ID any `json:"id"`
}

func (a *api) trigger(w http.ResponseWriter, r *http.Request) {
	var b TriggerBody
	if !decode(w, r, &b) {
		return
	}
	timeout, err := duration("timeout", b.Timeout, 0)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	req := engine.TriggerRequest{Target: b.Target, Schema: b.Schema, Index: b.Index, Strategy: b.Strategy,
		Params: b.Params, DryRun: b.DryRun, Timeout: timeout}
	if b.Validate != nil {
		wait, err := duration("validate.wait", b.Validate.Wait, 0)
		if err != nil {
			a.fail(w, r, err)
			return
		}
		req.Validate = &validation.Validation{Figure: b.Validate.Figure, Fallback: b.Validate.Fallback, Op: b.Validate.Op,
			AsBuiltFactor: b.Validate.AsBuiltFactor, Wait: wait, Attempts: b.Validate.Attempts}
		if b.Validate.Value != nil {
			req.Validate.Value, req.Validate.HasValue = *b.Validate.Value, true
		}
	}
	id, err := a.e.Trigger(r.Context(), req, user(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("manual repair queued", "repair", id, "by", user(r), "strategy", b.Strategy, "target", b.Target, "index", b.Schema+"."+b.Index)
	writeJSON(w, http.StatusAccepted, Created{ID: id})
}

// Done answers a call that changed something.
type Done struct {
	OK      bool   `json:"ok"`
	Message string `json:"message,omitempty"`
}

func (a *api) approve(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := a.e.Approve(r.Context(), id, user(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("repair approved", "repair", id, "by", user(r))
	writeJSON(w, http.StatusOK, Done{OK: true, Message: fmt.Sprintf("repair %d approved and queued", id)})
}

func (a *api) cancel(w http.ResponseWriter, r *http.Request) {
	id, ok := pathID(w, r)
	if !ok {
		return
	}
	if err := a.e.Cancel(r.Context(), id, user(r)); err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("repair cancel requested", "repair", id, "by", user(r))
	writeJSON(w, http.StatusOK, Done{OK: true, Message: fmt.Sprintf("repair %d cancelled (a running repair stops and rolls back)", id)})
}

func (a *api) circuits(w http.ResponseWriter, r *http.Request) {
	cs, err := a.e.Circuits(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(cs))
}

// budgets is GET /budgets: per index, whether an automatic repair may run now, the rule that
// holds it back and when the next one may run (engine.Budgets).
func (a *api) budgets(w http.ResponseWriter, r *http.Request) {
	bs, err := a.e.Budgets(r.Context())
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, nonNil(bs))
}

// IndexBody names an index (or, with index empty, a whole target where the call allows it).
type IndexBody struct {
	Target  string `json:"target"`
	Datname string `json:"datname"`
	Schema  string `json:"schema"`
	Index   string `json:"index"`
}

func (a *api) resetCircuit(w http.ResponseWriter, r *http.Request) {
	var b IndexBody
	if !decode(w, r, &b) {
		return
	}
	n, err := a.e.ResetCircuit(r.Context(), b.Target, b.Datname, b.Schema, b.Index, user(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	a.log.Info("circuit reset", "by", user(r), "target", b.Target, "index", b.Schema+"."+b.Index)
	writeJSON(w, http.StatusOK, Done{OK: true, Message: fmt.Sprintf("%d circuit(s) reset; auto-healing resumes", n)})
}

func (a *api) check(w http.ResponseWriter, r *http.Request) {
	var b IndexBody
	if !decode(w, r, &b) {
		return
	}
	if b.Target == "" {
		writeError(w, http.StatusBadRequest, "target is required")
		return
	}
	id, err := a.e.RequestCheck(r.Context(), b.Target, b.Schema, b.Index, user(r))
	if err != nil {
		a.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusAccepted, Created{ID: id})
}

// pauseMarker starts the comment of every silence vectorheal creates as a pause, so pauses
// can be told from the silences operators create for notifications.
const pauseMarker = "[vectorheal pause]"

// PauseBody is POST /pause: with no target, all healing pauses; with a target and no index,
// the target's; with an index, that index's.
type PauseBody struct {
	IndexBody
	Duration string `json:"duration"` // default 1h
	Comment  string `json:"comment"`
}

func (a *api) pause(w http.ResponseWriter, r *http.Request) {
	if a.silences == nil {
		writeError(w, http.StatusServiceUnavailable, "pause needs Alertmanager: set alertmanager.url")
		return
	}
	var b PauseBody
	if !decode(w, r, &b) {
		return
	}
	d, err := duration("duration", b.Duration, time.Hour)
	if err != nil || d == 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("duration %q is not a positive duration such as 30m or 2h", b.Duration))
		return
	}
	ms, err := pauseMatchers(b.IndexBody)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	comment := pauseMarker
	if c := strings.TrimSpace(b.Comment); c != "" {
		comment += " " + c
	}
	id, err := a.silences.CreateSilence(r.Context(), amclient.Silence{Matchers: ms, EndsAt: time.Now().Add(d),
		CreatedBy: user(r), Comment: comment})
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	a.log.Info("healing paused", "silence", id, "by", user(r), "target", b.Target, "index", b.Schema+"."+b.Index, "for", d)
	writeJSON(w, http.StatusCreated, Created{ID: id})
}

// pauseMatchers selects the alerts a pause silences: every index alert carries target.
func pauseMatchers(b IndexBody) ([]amclient.Matcher, error) {
	eq := func(n, v string) amclient.Matcher { return amclient.Matcher{Name: n, Value: v, IsEqual: true} }
	switch {
	case b.Target == "" && (b.Index != "" || b.Schema != "" || b.Datname != ""):
		return nil, fmt.Errorf("%w: an index pause needs target", engine.ErrInvalid)
	case b.Target == "":
		return []amclient.Matcher{{Name: "target", Value: ".+", IsRegex: true, IsEqual: true}}, nil
	}
	ms := []amclient.Matcher{eq("target", b.Target)}
	if b.Datname != "" {
		ms = append(ms, eq("datname", b.Datname))
	}
	if b.Index != "" {
		schema := b.Schema
		if schema == "" {
			schema = "public"
		}
		ms = append(ms, eq("schemaname", schema), eq("indexrelname", b.Index))
	}
	return ms, nil
}

func isGlobal(s amclient.Silence) bool {
	return len(s.Matchers) == 1 && s.Matchers[0].Name == "target" && s.Matchers[0].IsRegex && s.Matchers[0].Value == ".+"
}

// activePauses lists vectorheal's pauses that are active or pending.
func (a *api) activePauses(r *http.Request) ([]amclient.Silence, error) {
	all, err := a.silences.Silences(r.Context(), nil)
	if err != nil {
		return nil, err
	}
	out := []amclient.Silence{}
	for _, s := range all {
		if strings.HasPrefix(s.Comment, pauseMarker) && s.State != "expired" {
			out = append(out, s)
		}
	}
	return out, nil
}

func (a *api) pauses(w http.ResponseWriter, r *http.Request) {
	if a.silences == nil {
		writeError(w, http.StatusServiceUnavailable, "pauses need Alertmanager: set alertmanager.url")
		return
	}
	ps, err := a.activePauses(r)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	writeJSON(w, http.StatusOK, ps)
}

// ResumeBody is POST /resume: a pause's id, or the same target/index a pause was made with.
type ResumeBody struct {
	IndexBody
	ID string `json:"id"`
}

func (a *api) resume(w http.ResponseWriter, r *http.Request) {
	if a.silences == nil {
		writeError(w, http.StatusServiceUnavailable, "resume needs Alertmanager: set alertmanager.url")
		return
	}
	var b ResumeBody
	if !decode(w, r, &b) {
		return
	}
	ps, err := a.activePauses(r)
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	var want []amclient.Matcher
	if b.ID == "" {
		if want, err = pauseMatchers(b.IndexBody); err != nil {
			a.fail(w, r, err)
			return
		}
	}
	var expired []string
	for _, p := range ps {
		if (b.ID != "" && p.ID == b.ID) || (b.ID == "" && sameMatchers(p.Matchers, want)) {
			if err := a.silences.ExpireSilence(r.Context(), p.ID); err != nil {
				writeError(w, http.StatusBadGateway, err.Error())
				return
			}
			expired = append(expired, p.ID)
		}
	}
	if len(expired) == 0 {
		writeError(w, http.StatusNotFound, "no active pause matches")
		return
	}
	a.log.Info("healing resumed", "silences", expired, "by", user(r))
	writeJSON(w, http.StatusOK, Done{OK: true, Message: "expired pause(s) " + strings.Join(expired, ", ")})
}

func sameMatchers(a, b []amclient.Matcher) bool {
	if len(a) != len(b) {
		return false
	}
	seen := map[amclient.Matcher]bool{}
	for _, m := range a {
		seen[m] = true
	}
	for _, m := range b {
		if !seen[m] {
			return false
		}
	}
	return true
}

// nonNil makes an empty list encode as [] rather than null.
func nonNil[T any](s []T) []T {
	if s == nil {
		return []T{}
	}
	return s
}
