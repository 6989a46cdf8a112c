// Package runbook holds the runbook: the YAML file that maps alerts, selected with
// Alertmanager's matcher syntax, to ordered repair steps with validation, escalation,
// cooldown, timeout, approval, dry-run and maintenance windows. It parses and checks the file
// (strategies, their parameters, the figures validations name) and answers which entries an
// alert's labels select. A Holder keeps the current runbook for reloads.
package runbook

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/vectorheal/vectorheal/internal/metricdoc"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// Approval values.
const (
	ApprovalNone     = "none"     // the repair runs as soon as its checks pass
	ApprovalRequired = "required" // the repair waits for a human to approve it
)

// What a step does when it fails (Step.OnFailure): it failed when Run returned an error or
// its validation did not meet the bound within its attempts.
const (
	// OnFailureEscalate rolls the step back and runs the next step; after the last step the
	// repair has failed (outcome rolled_back).
	OnFailureEscalate = "escalate"
	// OnFailureRollback rolls the step back and stops (outcome rolled_back).
	OnFailureRollback = "rollback"
	// OnFailureStop keeps what the step did and stops (outcome failed).
	OnFailureStop = "stop"
)

// What a step does when it succeeds (Step.OnSuccess).
const (
	// OnSuccessDone ends the repair: later steps are escalations only (outcome succeeded).
	OnSuccessDone = "done"
	// OnSuccessNext runs the next step too, e.g. ANALYZE after a REINDEX.
	OnSuccessNext = "next"
)

// Defaults apply to every entry that does not set the field itself.
type Defaults struct {
	Priority         int           // default 50
	Cooldown         time.Duration // default 1h
	Timeout          time.Duration // default 1h
	Approval         string        // default none
	DryRun           bool          // default false
	OnFailure        string        // default escalate
	OnSuccess        string        // default done
	ValidateWait     time.Duration // default 10s
	ValidateAttempts int           // default 3
	Windows          []Window      // default none: any time
	// ApproveBuildsOver: default 10 GiB or 1h (DefaultBuildApproval).
	ApproveBuildsOver BuildApproval
}

// BuildApproval is when a step that writes a new copy of an index (a rebuild, a retrain with
// new lists, a reclaim that chooses REINDEX) waits for a person's approval, whatever its
// entry's approval says: a rebuild of a 5 MB index heals on its own, one of 500 GB does not
// start without someone agreeing to its disk space, I/O and time. A zero field is no limit.
type BuildApproval struct {
	Size     int64         `json:"size_bytes"` // the index's size now, in bytes
	Duration time.Duration `json:"duration"`   // the build's estimated duration
}

// DefaultBuildApproval is the shipped limit: builds of indexes over 10 GiB, or estimated to
// take over an hour, wait for approval.
var DefaultBuildApproval = BuildApproval{Size: 10 << 30, Duration: time.Hour}

// Exceeds says why a build of an index of size bytes, estimated to take est (0: unknown),
// needs approval under a; "" when it does not.
func (a BuildApproval) Exceeds(size int64, est time.Duration) string {
	var why []string
	if a.Size > 0 && size > a.Size {
		why = append(why, fmt.Sprintf("index size %s over approve_builds_over.size %s", strategy.SizeText(size), strategy.SizeText(a.Size)))
	}
	if a.Duration > 0 && est > a.Duration {
		why = append(why, fmt.Sprintf("estimated duration %s over approve_builds_over.duration %s", est.Round(time.Second), a.Duration))
	}
	return strings.Join(why, "; ")
}

// builtinDefaults are the defaults when the file's defaults block leaves a field out.
func builtinDefaults() Defaults {
	return Defaults{Priority: 50, Cooldown: time.Hour, Timeout: time.Hour, Approval: ApprovalNone,
		OnFailure: OnFailureEscalate, OnSuccess: OnSuccessDone, ValidateWait: 10 * time.Second, ValidateAttempts: 3,
		ApproveBuildsOver: DefaultBuildApproval}
}

// Runbook is a parsed, checked runbook file.
type Runbook struct {
	File     string
	Defaults Defaults
	Entries  []*Entry
}

// Entry maps the alerts its matchers select to repair steps.
type Entry struct {
	Name     string
	Matchers labels.Matchers // all must match
	Priority int             // higher runs first when repairs wait for a slot
	Steps    []Step          // at least one
	Cooldown time.Duration   // minimum time between two repairs of one index by this entry
	Timeout  time.Duration   // for the whole repair, all steps
	Approval string          // ApprovalNone or ApprovalRequired
	DryRun   bool            // record the plan, run nothing
	Continue bool            // keep matching later entries after this one
	Windows  []Window        // when the repair may run; none means any time
	// ApproveBuildsOver is when one of its steps that builds a new copy of the index waits
	// for approval; the defaults' unless the entry sets it.
	ApproveBuildsOver BuildApproval
	Line              int // where the entry starts in File
}

// Step is one repair step.
type Step struct {
	Strategy string
	Params   strategy.Params // as written; never nil
	// Bound is the strategy with Params decoded and checked, nil when the runbook was parsed
	// without a registry.
	Bound     strategy.Step
	Validate  *validation.Validation // nil: the step succeeds when Run returns no error
	OnFailure string                 // OnFailureEscalate, OnFailureRollback or OnFailureStop
	OnSuccess string                 // OnSuccessDone or OnSuccessNext
	// Approval required: when the repair reaches this step (escalation, or on_success: next)
	// it stops as awaiting_approval with the step's impact recorded, and goes on with this step
	// once approved. Default none, whatever defaults.approval says (that one gates whole
	// entries); in an entry whose own approval is required the entry's approval covers it.
	Approval string
	Line     int
}

// Window is a maintenance window: a daily time range on some days of the week, in a time
// zone. A range whose end is before its start runs past midnight into the next day; Days name
// the day it starts on.
type Window struct {
	Days     []time.Weekday // empty means every day
	Start    time.Duration  // since midnight
	End      time.Duration  // since midnight, up to 24h
	Location *time.Location
	Line     int
}

// Contains says whether t falls in the window.
func (w Window) Contains(t time.Time) bool {
	t = t.In(w.Location)
	midnight := time.Date(t.Year(), t.Month(), t.Day(), 0, 0, 0, 0, w.Location)
	since := t.Sub(midnight)
	if w.Start < w.End {
		return w.onDay(t.Weekday()) && since >= w.Start && since < w.End
	}
	// Past midnight: the evening part belongs to today, the morning part to yesterday.
	if since >= w.Start {
		return w.onDay(t.Weekday())
	}
	if since < w.End {
		return w.onDay((t.Weekday() + 6) % 7)
	}
	return false
}

func (w Window) onDay(d time.Weekday) bool {
	if len(w.Days) == 0 {
		return true
	}
	for _, x := range w.Days {
		if x == d {
			return true
		}
	}
	return false
}

// InWindow says whether the entry may run at t: it has no windows or one contains t.
func (e *Entry) InWindow(t time.Time) bool {
	if len(e.Windows) == 0 {
		return true
	}
	for _, w := range e.Windows {
		if w.Contains(t) {
			return true
		}
	}
	return false
}

// Matches says whether the alert labels satisfy every matcher of the entry.
func (e *Entry) Matches(lbls map[string]string) bool {
	ls := make(model.LabelSet, len(lbls))
	for k, v := range lbls {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return e.Matchers.Matches(ls)
}

// Match returns the entries that select an alert with these labels, in file order: the first
// matching entry wins, unless it says continue, in which case matching goes on after it.
func (rb *Runbook) Match(lbls map[string]string) []*Entry {
	var out []*Entry
	for _, e := range rb.Entries {
		if !e.Matches(lbls) {
			continue
		}
		out = append(out, e)
		if !e.Continue {
			break
		}
	}
	return out
}

// Entry returns the entry called name, or nil.
func (rb *Runbook) Entry(name string) *Entry {
	for _, e := range rb.Entries {
		if e.Name == name {
			return e
		}
	}
	return nil
}

// Load reads and parses the runbook at path; see Parse.
func Load(path string, reg *strategy.Registry, figures []string) (*Runbook, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read runbook: %w", err)
	}
	return Parse(path, data, reg, figures)
}

// Holder keeps the current runbook; readers never see a half-loaded one. As a
// prometheus.Collector it publishes whether the last reload succeeded (Metrics).
type Holder struct {
	cur atomic.Pointer[Runbook]
	mu  sync.Mutex // one reload at a time; guards the fields below

	lastOK      bool
	lastSuccess time.Time

	descOK, descTime *prometheus.Desc
}

// NewHolder returns a holder of rb, loaded now.
func NewHolder(rb *Runbook) *Holder {
	m := Metrics()
	h := &Holder{lastOK: true, lastSuccess: time.Now(),
		descOK: prometheus.NewDesc(m[0].Name, m[0].Help, nil, nil), descTime: prometheus.NewDesc(m[1].Name, m[1].Help, nil, nil)}
	h.cur.Store(rb)
	return h
}

const (
	nameReloadOK   = "vectorheal_runbook_last_reload_successful"
	nameReloadTime = "vectorheal_runbook_last_reload_success_timestamp_seconds"
)

// Metrics are the runbook's series, as docs/metrics.md lists them.
func Metrics() []metricdoc.Metric {
	return []metricdoc.Metric{
		{Name: nameReloadOK, Type: "gauge", Help: "Whether the last runbook reload (SIGHUP or POST /-/reload) succeeded (1) or was refused, the previous runbook staying in force (0)."},
		{Name: nameReloadTime, Type: "gauge", Help: "Unix time of the last runbook load that succeeded (the start counts as one)."},
	}
}

// Describe implements prometheus.Collector.
func (h *Holder) Describe(ch chan<- *prometheus.Desc) {
	ch <- h.descOK
	ch <- h.descTime
}

// Collect implements prometheus.Collector.
func (h *Holder) Collect(ch chan<- prometheus.Metric) {
	h.mu.Lock()
	ok, at := h.lastOK, h.lastSuccess
	h.mu.Unlock()
	v := 0.0
	if ok {
		v = 1
	}
	ch <- prometheus.MustNewConstMetric(h.descOK, prometheus.GaugeValue, v)
	ch <- prometheus.MustNewConstMetric(h.descTime, prometheus.GaugeValue, float64(at.UnixNano())/1e9)
}

// Get returns the current runbook.
func (h *Holder) Get() *Runbook { return h.cur.Load() }

// Reload loads a new runbook with load and makes it current. When load fails the current
// runbook stays and the error is returned.
func (h *Holder) Reload(load func() (*Runbook, error)) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	rb, err := load()
	if err == nil && rb == nil {
		err = fmt.Errorf("runbook reload: loader returned no runbook")
	}
	h.lastOK = err == nil
	if err != nil {
		return err
	}
	h.cur.Store(rb)
	h.lastSuccess = time.Now()
	return nil
}
