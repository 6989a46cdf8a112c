package api

import (
	"fmt"
	"net/http"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/remediation/record"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// StatusBody is GET /status: the engine's status and the pauses in force.
type StatusBody struct {
	record.Status
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
	rs, err := a.e.Repairs(r.Context(), record.Filter{Target: q.Get("target"), Schema: q.Get("schema"),
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
	req := record.TriggerRequest{Target: b.Target, Schema: b.Schema, Index: b.Index, Strategy: b.Strategy,
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
	a.log.Info("manual repair queued", "repair", id, "by", user(r), "strategy", b.Strategy, "target", b.Target, "index", schemaOf(IndexBody{Schema: b.Schema})+"."+b.Index)
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
// holds it back and when the next one may run (Healing.Budgets).
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
	a.log.Info("circuit reset", "by", user(r), "scope", scopeText(b))
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

// PauseBody is POST /pause: with All, healing pauses on every target; with a target and no
// index, the target's; with an index, that index's. One of All and Target is needed.
type PauseBody struct {
	IndexBody
	All      bool   `json:"all"`
	Duration string `json:"duration"` // default 1h
	Comment  string `json:"comment"`
}

// PauseResult is POST /pause's answer: the silence and what it covers.
type PauseResult struct {
	ID       string             `json:"id"`
	Matchers []amclient.Matcher `json:"matchers"`
	// Scope is what the pause applies to: "every target", "target main", or an index.
	Scope string `json:"scope"`
	// Alerts are the alert names (regular expressions where an entry selects by one) of the
	// runbook's entries, the alerts vectorheal acts on; empty when the pause covers every
	// alert of the scope but vectorheal's own (Uncovered says why).
	Alerts []string `json:"alerts,omitempty"`
	// Uncovered names the runbook entries that select alerts by other labels than alertname:
	// for their sake the pause covers every alert of its scope but vectorheal's own.
	Uncovered []string `json:"uncovered,omitempty"`
	// Excluded is the alert names a pause never silences: vectorheal's own health alerts.
	Excluded string `json:"excluded"`
}

// OwnAlerts matches the names of vectorheal's own health alerts (rules/vectorheal.yml,
// rules/versions.yml: the exporter down, repairs failing, the webhook refusing...). A pause
// never silences them: pausing healing must not hide that healing is broken.
const OwnAlerts = "Vectorheal.*"

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
	scope, err := pauseScope(b)
	if err != nil {
		a.fail(w, r, err)
		return
	}
	res := PauseResult{Scope: scopeText(b.IndexBody), Excluded: OwnAlerts}
	alertRE := ".+"
	if a.runbook != nil {
		rb := a.runbook()
		if len(rb.Entries) == 0 {
			writeError(w, http.StatusConflict, "the runbook has no entries: vectorheal repairs nothing, so there is nothing to pause")
			return
		}
		res.Alerts, res.Uncovered = healingAlerts(rb)
		if len(res.Uncovered) == 0 {
			alertRE = strings.Join(res.Alerts, "|")
		} else {
			res.Alerts = nil
		}
	} else {
		res.Uncovered = []string{"(no runbook)"}
	}
	res.Matchers = append([]amclient.Matcher{
		{Name: "alertname", Value: alertRE, IsRegex: true, IsEqual: true},
		{Name: "alertname", Value: OwnAlerts, IsRegex: true, IsEqual: false},
	}, scope...)
	comment := pauseMarker
	if c := strings.TrimSpace(b.Comment); c != "" {
		comment += " " + c
	}
	res.ID, err = a.silences.CreateSilence(r.Context(), amclient.Silence{Matchers: res.Matchers, EndsAt: time.Now().Add(d),
		CreatedBy: user(r), Comment: comment})
	if err != nil {
		writeError(w, http.StatusBadGateway, err.Error())
		return
	}
	log := a.log.With("silence", res.ID, "by", user(r), "scope", res.Scope, "for", d)
	if len(res.Uncovered) > 0 {
		log = log.With("uncovered_entries", res.Uncovered)
	}
	log.Info("healing paused")
	writeJSON(w, http.StatusCreated, res)
}

// healingAlerts lists the alert names the runbook's entries select, each escaped as a
// regular expression (an entry selecting by a regular expression gives it grouped), sorted,
// and the entries that select by no positive alertname matcher.
func healingAlerts(rb *runbook.Runbook) (alerts, uncovered []string) {
	seen := map[string]bool{}
	for _, e := range rb.Entries {
		re, ok := entryAlerts(e.Matchers)
		if !ok {
			uncovered = append(uncovered, e.Name)
			continue
		}
		if !seen[re] {
			seen[re] = true
			alerts = append(alerts, re)
		}
	}
	sort.Strings(alerts)
	return alerts, uncovered
}

// entryAlerts is the regular expression of the alert names an entry's matchers accept; false
// when they do not narrow alertname.
func entryAlerts(ms labels.Matchers) (string, bool) {
	for _, m := range ms {
		if m.Name != "alertname" {
			continue
		}
		switch m.Type {
		case labels.MatchEqual:
			return regexp.QuoteMeta(m.Value), true
		case labels.MatchRegexp:
			return "(?:" + m.Value + ")", true
		}
	}
	return "", false
}

// pauseScope is the matchers of the scope a pause applies to: every index alert carries target.
func pauseScope(b PauseBody) ([]amclient.Matcher, error) {
	switch {
	case b.All && (b.Target != "" || b.Index != "" || b.Schema != "" || b.Datname != ""):
		return nil, fmt.Errorf("%w: all pauses every target; give it without target, datname, schema or index", record.ErrInvalid)
	case b.All:
		return nil, nil
	case b.Target == "":
		return nil, fmt.Errorf("%w: give a target (and an index), or all to pause every target", record.ErrInvalid)
	}
	return scopeMatchers(b.IndexBody), nil
}

// scopeMatchers are the label matchers of a target or index scope; none for every target.
func scopeMatchers(b IndexBody) []amclient.Matcher {
	if b.Target == "" {
		return nil
	}
	eq := func(n, v string) amclient.Matcher { return amclient.Matcher{Name: n, Value: v, IsEqual: true} }
	ms := []amclient.Matcher{eq("target", b.Target)}
	if b.Datname != "" {
		ms = append(ms, eq("datname", b.Datname))
	}
	if b.Index != "" {
		ms = append(ms, eq("schemaname", schemaOf(b)), eq("indexrelname", b.Index))
	}
	return ms
}

func schemaOf(b IndexBody) string {
	if b.Schema == "" {
		return "public"
	}
	return b.Schema
}

// scopeText names a pause's scope for people: "every target", "target main",
// "index main public.items_idx".
func scopeText(b IndexBody) string {
	switch {
	case b.Target == "":
		return "every target"
	case b.Index == "":
		s := "target " + b.Target
		if b.Datname != "" {
			s += " database " + b.Datname
		}
		return s
	}
	return "index " + b.Target + " " + schemaOf(b) + "." + b.Index
}

// scopeOf drops the alertname matchers of a pause, and the target=~".+" of pauses made before
// pauses were scoped to healing: what remains is its scope.
func scopeOf(ms []amclient.Matcher) []amclient.Matcher {
	var out []amclient.Matcher
	for _, m := range ms {
		if m.Name == "alertname" || (m.Name == "target" && m.IsRegex && m.Value == ".+") {
			continue
		}
		out = append(out, m)
	}
	return out
}

func isGlobal(s amclient.Silence) bool { return len(scopeOf(s.Matchers)) == 0 }

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
	if b.ID == "" && b.Target == "" && (b.Index != "" || b.Schema != "" || b.Datname != "") {
		writeError(w, http.StatusBadRequest, "an index's pause is resumed with its target")
		return
	}
	want := scopeMatchers(b.IndexBody)
	var expired []string
	for _, p := range ps {
		if (b.ID != "" && p.ID == b.ID) || (b.ID == "" && sameMatchers(scopeOf(p.Matchers), want)) {
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
