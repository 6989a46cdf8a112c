package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/vectorheal/vectorheal/internal/figure"
)

// Event kinds of the timeline.
const (
	AlertPending   = "alert pending"
	AlertFiring    = "alert firing"
	AlertResolved  = "alert resolved"
	AlertReceived  = "notification received"
	RepairQueued   = "repair queued"
	RepairRunning  = "repair running"
	StepFinished   = "step finished"
	RepairFinished = "repair finished"
)

// Event is one thing that happened to an index.
type Event struct {
	At     time.Time
	Index  string // indexrelname
	Kind   string // one of the kinds above
	Alert  string // alertname, for alert events and repairs caused by an alert
	Detail string // state, strategy, reason...
	Repair int64  // repair id, for repair events
}

func (e Event) String() string {
	s := fmt.Sprintf("%s  %-22s %-20s", e.At.Format("15:04:05.0"), e.Index, e.Kind)
	if e.Alert != "" {
		s += " " + e.Alert
	}
	if e.Repair != 0 {
		s += fmt.Sprintf(" #%d", e.Repair)
	}
	if e.Detail != "" {
		s += " " + e.Detail
	}
	return s
}

// PromAlert is an alert as Prometheus's /api/v1/alerts shows it.
type PromAlert struct {
	Labels   map[string]string `json:"labels"`
	State    string            `json:"state"` // pending or firing
	ActiveAt time.Time         `json:"activeAt"`
	Value    string            `json:"value"`
}

// PrometheusAlerts lists the alerts pending or firing in Prometheus.
func (s *Stack) PrometheusAlerts(ctx context.Context) ([]PromAlert, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.Prometheus.URL+"/api/v1/alerts", nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("prometheus alerts: %w", err)
	}
	defer resp.Body.Close()
	var body struct {
		Data struct {
			Alerts []PromAlert `json:"alerts"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("prometheus alerts: %w", err)
	}
	return body.Data.Alerts, nil
}

// Repair is a row of the state store's repairs table with its steps.
type Repair struct {
	ID         int64
	Alertname  string
	Entry      string
	Index      string
	State      string
	Reason     string
	Error      string
	Runner     string
	CreatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
	Steps      []Step
}

// Step is a row of repair_steps.
type Step struct {
	Position   int
	Strategy   string
	State      string
	Error      string
	Before     map[string]float64
	After      map[string]float64
	Validation json.RawMessage
	Statements []string
	FinishedAt *time.Time
}

// Finished reports whether the repair reached a final state.
func (r Repair) Finished() bool {
	switch r.State {
	case "queued", "awaiting_approval", "running":
		return false
	}
	return true
}

// Repairs reads every repair of the state store in schema, oldest first, with steps.
func Repairs(ctx context.Context, state *pgxpool.Pool, schema string) ([]Repair, error) {
	sch := pgx.Identifier{schema}.Sanitize()
	rows, err := state.Query(ctx, `SELECT id, alertname, entry, indexrelname, state, reason, error, runner,
		created_at, started_at, finished_at FROM `+sch+`.repairs ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read repairs: %w", err)
	}
	var out []Repair
	byID := map[int64]int{}
	for rows.Next() {
		var r Repair
		if err := rows.Scan(&r.ID, &r.Alertname, &r.Entry, &r.Index, &r.State, &r.Reason, &r.Error, &r.Runner,
			&r.CreatedAt, &r.StartedAt, &r.FinishedAt); err != nil {
			rows.Close()
			return nil, err
		}
		byID[r.ID] = len(out)
		out = append(out, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	rows, err = state.Query(ctx, `SELECT repair_id, position, strategy, state, error, before, after, validation, statements,
		finished_at FROM `+sch+`.repair_steps ORDER BY repair_id, position`)
	if err != nil {
		return nil, fmt.Errorf("read repair steps: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id int64
		var st Step
		var stmts []byte
		if err := rows.Scan(&id, &st.Position, &st.Strategy, &st.State, &st.Error, &st.Before, &st.After, &st.Validation, &stmts, &st.FinishedAt); err != nil {
			return nil, err
		}
		_ = json.Unmarshal(stmts, &st.Statements)
		if i, ok := byID[id]; ok {
			out[i].Steps = append(out[i].Steps, st)
		}
	}
	return out, rows.Err()
}

// Watcher turns polls of Prometheus and the state store into a timeline of events.
type Watcher struct {
	stack *Stack
	state *pgxpool.Pool

	mu       sync.Mutex
	events   []Event
	alerts   map[string]PromAlert // by labelKey: rules of one alert may differ only in other labels
	received map[int64]bool
	repairs  map[int64]string // id -> last state
	steps    map[string]string
}

// NewWatcher watches s; state is a pool on the state store (s.Config.StateDSN).
func NewWatcher(s *Stack, state *pgxpool.Pool) *Watcher {
	return &Watcher{stack: s, state: state, alerts: map[string]PromAlert{}, received: map[int64]bool{},
		repairs: map[int64]string{}, steps: map[string]string{}}
}

// LabelKey identifies an alert by its whole label set, as Prometheus does: the same string
// for the same labels in any order.
func LabelKey(labels map[string]string) string {
	names := make([]string, 0, len(labels))
	for n := range labels {
		names = append(names, n)
	}
	sort.Strings(names)
	var b strings.Builder
	for _, n := range names {
		fmt.Fprintf(&b, "%s=%q,", n, labels[n])
	}
	return b.String()
}

// Poll looks once and returns the new events.
func (w *Watcher) Poll(ctx context.Context) ([]Event, error) {
	now := time.Now()
	alerts, err := w.stack.PrometheusAlerts(ctx)
	if err != nil {
		return nil, err
	}
	schema := w.stack.Config.StateSchema
	repairs, err := Repairs(ctx, w.state, schema)
	if err != nil {
		return nil, err
	}
	received, err := w.receivedAlerts(ctx, schema)
	if err != nil {
		return nil, err
	}

	w.mu.Lock()
	defer w.mu.Unlock()
	out := w.alertEvents(now, alerts)
	for _, r := range received {
		if w.received[r.id] {
			continue
		}
		w.received[r.id] = true
		out = append(out, Event{At: r.receivedAt, Index: r.index, Kind: AlertReceived, Alert: r.alertname, Detail: r.status})
	}
	for _, r := range repairs {
		out = append(out, w.repairEvents(now, r)...)
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	w.events = append(w.events, out...)
	return out, nil
}

// receivedAlert is one alert vectorheal's receiver stored.
type receivedAlert struct {
	id         int64
	alertname  string
	index      string
	status     string
	receivedAt time.Time
}

// receivedAlerts reads the alerts the receiver stored, in order.
func (w *Watcher) receivedAlerts(ctx context.Context, schema string) ([]receivedAlert, error) {
	rows, err := w.state.Query(ctx, `SELECT id, alertname, coalesce(labels->>'indexrelname', ''), status, received_at
		FROM `+pgx.Identifier{schema}.Sanitize()+`.alerts ORDER BY id`)
	if err != nil {
		return nil, fmt.Errorf("read alerts: %w", err)
	}
	defer rows.Close()
	var received []receivedAlert
	for rows.Next() {
		var r receivedAlert
		if err := rows.Scan(&r.id, &r.alertname, &r.index, &r.status, &r.receivedAt); err != nil {
			return nil, err
		}
		received = append(received, r)
	}
	return received, rows.Err()
}

// alertEvents compares Prometheus' alerts with those of the last poll: new states and
// resolutions. w.mu is held.
func (w *Watcher) alertEvents(now time.Time, alerts []PromAlert) []Event {
	var out []Event
	seen := map[string]bool{}
	for _, a := range alerts {
		key := LabelKey(a.Labels)
		seen[key] = true
		if prev, had := w.alerts[key]; !had || prev.State != a.State {
			kind := AlertPending
			if a.State == "firing" {
				kind = AlertFiring
			}
			out = append(out, Event{At: now, Index: a.Labels["indexrelname"], Kind: kind, Alert: a.Labels["alertname"], Detail: "severity=" + a.Labels["severity"] + " value=" + a.Value})
		}
		w.alerts[key] = a
	}
	for key, a := range w.alerts {
		if !seen[key] {
			if a.State == "firing" {
				out = append(out, Event{At: now, Index: a.Labels["indexrelname"], Kind: AlertResolved, Alert: a.Labels["alertname"], Detail: "severity=" + a.Labels["severity"]})
			}
			delete(w.alerts, key)
		}
	}
	return out
}

// repairEvents compares one repair with the last poll: queued, running, steps finished,
// finished. w.mu is held.
func (w *Watcher) repairEvents(now time.Time, r Repair) []Event {
	var out []Event
	prev := w.repairs[r.ID]
	if prev == "" {
		out = append(out, Event{At: r.CreatedAt, Index: r.Index, Kind: RepairQueued, Alert: r.Alertname, Repair: r.ID, Detail: "entry=" + r.Entry})
	}
	if r.StartedAt != nil && (prev == "" || prev == "queued" || prev == "awaiting_approval") {
		out = append(out, Event{At: *r.StartedAt, Index: r.Index, Kind: RepairRunning, Alert: r.Alertname, Repair: r.ID, Detail: "runner=" + r.Runner})
	}
	for _, st := range r.Steps {
		key := fmt.Sprintf("%d/%d", r.ID, st.Position)
		if st.State != "planned" && st.State != "running" && w.steps[key] != st.State {
			w.steps[key] = st.State
			at := now
			if st.FinishedAt != nil {
				at = *st.FinishedAt
			}
			out = append(out, Event{At: at, Index: r.Index, Kind: StepFinished, Repair: r.ID, Detail: stepDetail(st)})
		}
	}
	if r.Finished() && prev != r.State {
		at := now
		if r.FinishedAt != nil {
			at = *r.FinishedAt
		}
		d := r.State
		if r.Reason != "" {
			d += " reason=" + r.Reason
		}
		if r.Error != "" {
			d += " error=" + r.Error
		}
		out = append(out, Event{At: at, Index: r.Index, Kind: RepairFinished, Alert: r.Alertname, Repair: r.ID, Detail: d})
	}
	w.repairs[r.ID] = r.State
	return out
}

func stepDetail(st Step) string {
	d := fmt.Sprintf("%d:%s %s", st.Position, st.Strategy, st.State)
	if len(st.Before) > 0 || len(st.After) > 0 {
		d += " before: " + figure.Pairs(st.Before) + " | after: " + figure.Pairs(st.After)
	}
	if st.Error != "" {
		d += " error=" + st.Error
	}
	return d
}

// Events returns every event seen so far.
func (w *Watcher) Events() []Event {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]Event(nil), w.events...)
}

// First returns the first event of kind on index at or after since, if any.
func (w *Watcher) First(index, kind string, since time.Time) (Event, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for _, e := range w.events {
		if e.Index == index && e.Kind == kind && !e.At.Before(since) {
			return e, true
		}
	}
	return Event{}, false
}

// Scrape fetches a /metrics page and returns its metric families by name.
func Scrape(ctx context.Context, url string) (map[string]*dto.MetricFamily, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url, nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, fmt.Errorf("scrape %s: %w", url, err)
	}
	defer resp.Body.Close()
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", url, err)
	}
	return fams, nil
}

// ScrapeSum fetches a /metrics page and sums every sample of the metric family name.
func ScrapeSum(ctx context.Context, url, name string) (float64, error) {
	fams, err := Scrape(ctx, url)
	if err != nil {
		return 0, err
	}
	var sum float64
	if f, ok := fams[name]; ok {
		for _, m := range f.GetMetric() {
			switch {
			case m.Counter != nil:
				sum += m.GetCounter().GetValue()
			case m.Gauge != nil:
				sum += m.GetGauge().GetValue()
			case m.Untyped != nil:
				sum += m.GetUntyped().GetValue()
			}
		}
	}
	return sum, nil
}

// Sample is one element of an instant vector that Prometheus answered.
type Sample struct {
	Labels map[string]string
	Value  float64
}

// Query runs an instant PromQL query and returns its samples.
func Query(ctx context.Context, promURL, query string) ([]Sample, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, promURL+"/api/v1/query?query="+url.QueryEscape(query), nil)
	if err != nil {
		return nil, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var body struct {
		Status string `json:"status"`
		Error  string `json:"error"`
		Data   struct {
			Result []struct {
				Metric map[string]string `json:"metric"`
				Value  [2]any            `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		return nil, fmt.Errorf("query %s: %w", query, err)
	}
	if body.Status != "success" {
		return nil, fmt.Errorf("query %s: %s", query, body.Error)
	}
	out := make([]Sample, 0, len(body.Data.Result))
	for _, r := range body.Data.Result {
		s, _ := r.Value[1].(string)
		v, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return nil, fmt.Errorf("query %s: value %q: %w", query, s, err)
		}
		out = append(out, Sample{Labels: r.Metric, Value: v})
	}
	return out, nil
}

// QueryValue runs an instant PromQL query and returns the value of its single sample.
func QueryValue(ctx context.Context, promURL, query string) (float64, error) {
	samples, err := Query(ctx, promURL, query)
	if err != nil {
		return 0, err
	}
	if len(samples) != 1 {
		return 0, fmt.Errorf("query %s: %d samples, want 1", query, len(samples))
	}
	return samples[0].Value, nil
}
