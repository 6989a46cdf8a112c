// Package record holds the records of the healing side as the engine keeps them and the API
// shows them: repairs with their plans and steps, circuits, futile marks, budget states,
// alerts received and what became of them, and the requests a person makes. It has no
// behaviour: the engine writes and reads the records, the API serves them, the CLI prints
// them, and none of those depends on another for their shape.
package record

import (
	"encoding/json"
	"errors"
	"time"

	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// Errors the API turns into status codes.
var (
	// ErrNotFound: no repair, target or index of that name.
	ErrNotFound = errors.New("not found")
	// ErrConflict: the repair is not in a state that allows the call.
	ErrConflict = errors.New("conflict")
	// ErrInvalid: the request is malformed; the message says which field.
	ErrInvalid = errors.New("invalid request")
)

// Repair is a repair as the API shows it.
type Repair struct {
	ID                int64             `json:"id"`
	State             string            `json:"state"`
	Reason            string            `json:"reason,omitempty"`
	Error             string            `json:"error,omitempty"`
	Entry             string            `json:"entry"`
	Alertname         string            `json:"alertname,omitempty"`
	Fingerprint       string            `json:"fingerprint,omitempty"`
	Labels            map[string]string `json:"labels,omitempty"`
	Priority          int               `json:"priority"`
	Target            string            `json:"target"`
	Datname           string            `json:"datname"`
	Schema            string            `json:"schemaname"`
	Table             string            `json:"relname"`
	Index             string            `json:"indexrelname"`
	DryRun            bool              `json:"dry_run"`
	RequestedBy       string            `json:"requested_by,omitempty"`
	ApprovedBy        string            `json:"approved_by,omitempty"`
	ApprovedAt        *time.Time        `json:"approved_at,omitempty"`
	CancelRequestedBy string            `json:"cancel_requested_by,omitempty"`
	Runner            string            `json:"runner,omitempty"`
	CreatedAt         time.Time         `json:"created_at"`
	StartedAt         *time.Time        `json:"started_at,omitempty"`
	FinishedAt        *time.Time        `json:"finished_at,omitempty"`
	Plan              *Plan             `json:"plan,omitempty"`
	Steps             []Step            `json:"steps,omitempty"`
}

// Plan is the runbook entry a repair follows, copied into the repair when it is queued, so a
// runbook reload never changes a repair already waiting.
type Plan struct {
	Entry    string        `json:"entry"`
	Priority int           `json:"priority"` // the seed's 0-100 score
	Steps    []PlanStep    `json:"steps"`
	Cooldown time.Duration `json:"cooldown"`
	Timeout  time.Duration `json:"timeout"`
	Approval bool          `json:"approval_required"`
	DryRun   bool          `json:"dry_run"`
	Windows  []Window      `json:"windows,omitempty"`
	// Manual repairs were asked for by a person through the API: they skip the alert and
	// budget checks (cooldown, backoff, flap, circuit), but still take the index lock.
	Manual bool `json:"manual,omitempty"`
	// ApproveBuildsOver is the entry's limit above which a build waits for approval.
	ApproveBuildsOver runbook.BuildApproval `json:"approve_builds_over,omitzero"`
}

// PlanStep is one step of a plan.
type PlanStep struct {
	Strategy  string                 `json:"strategy"`
	Params    strategy.Params        `json:"params,omitempty"`
	Validate  *validation.Validation `json:"validate,omitempty"`
	OnFailure string                 `json:"on_failure,omitempty"` // runbook.OnFailureEscalate, OnFailureRollback or OnFailureStop
	OnSuccess string                 `json:"on_success,omitempty"` // runbook.OnSuccessDone or OnSuccessNext
	// Approval: the repair stops as awaiting_approval when it reaches this step, and goes on
	// with it once approved (runbook.Step.Approval).
	Approval bool `json:"approval_required,omitempty"`
}

// Window is a runbook maintenance window in a form that survives JSON (runbook.Window holds a
// *time.Location).
type Window struct {
	Days     []time.Weekday `json:"days,omitempty"`
	Start    time.Duration  `json:"start"`
	End      time.Duration  `json:"end"`
	Location string         `json:"location,omitempty"`
}

// Step is one recorded step of a repair.
type Step struct {
	Position   int                `json:"position"`
	Strategy   string             `json:"strategy"`
	Params     strategy.Params    `json:"params,omitempty"`
	State      string             `json:"state"`
	Impact     *strategy.Impact   `json:"impact,omitempty"`
	Statements []string           `json:"statements"`
	Before     map[string]float64 `json:"before,omitempty"`
	After      map[string]float64 `json:"after,omitempty"`
	Validation json.RawMessage    `json:"validation,omitempty"`
	Undo       json.RawMessage    `json:"undo,omitempty"`
	Error      string             `json:"error,omitempty"`
	// Futile is true when the step's validation failed with its figure where it was before:
	// the step could not help this index.
	Futile     bool       `json:"futile"`
	StartedAt  *time.Time `json:"started_at,omitempty"`
	FinishedAt *time.Time `json:"finished_at,omitempty"`
}

// Filter selects repairs to list.
type Filter struct {
	Target string
	Schema string
	Index  string
	// State is a repair state, or "active" (queued, awaiting approval or running).
	State string
	Limit int // default 50, at most 1000
}

// TriggerRequest asks for a manual repair of one index.
type TriggerRequest struct {
	Target   string         `json:"target"`
	Schema   string         `json:"schema"`
	Index    string         `json:"index"`
	Strategy string         `json:"strategy"`
	Params   map[string]any `json:"params,omitempty"`
	// Validate, when set, is checked after the step like a runbook step's validation.
	Validate *validation.Validation `json:"validate,omitempty"`
	DryRun   bool                   `json:"dry_run,omitempty"`
	Timeout  time.Duration          `json:"timeout,omitempty"`
}

// Circuit is the breaker state of one index.
type Circuit struct {
	Target   string     `json:"target"`
	Datname  string     `json:"datname"`
	Schema   string     `json:"schemaname"`
	Table    string     `json:"relname"`
	Index    string     `json:"indexrelname"`
	Failures int        `json:"failures"`
	Open     bool       `json:"open"`
	OpenedAt *time.Time `json:"opened_at,omitempty"`
	ResetBy  string     `json:"reset_by,omitempty"`
	ResetAt  *time.Time `json:"reset_at,omitempty"`
}

// FutileMark says that a runbook entry was futile on an index: every step it ran left its
// figure at Value, so the entry does not run there again until the figure changes.
type FutileMark struct {
	Target     string    `json:"target"`
	Datname    string    `json:"datname"`
	Schema     string    `json:"schemaname"`
	Index      string    `json:"indexrelname"`
	Entry      string    `json:"entry"`
	Figure     string    `json:"figure"`
	Value      float64   `json:"value"`
	RepairID   int64     `json:"repair_id"`
	RecordedAt time.Time `json:"recorded_at"`
}

// Status is the healing status.
type Status struct {
	Workers          bool           `json:"workers"` // this process runs repairs
	Runner           string         `json:"runner"`
	Active           int            `json:"active"`
	Queued           int            `json:"queued"`
	AwaitingApproval int            `json:"awaiting_approval"`
	Last24h          map[string]int `json:"last_24h"` // finished repairs by state
	OpenCircuits     []Circuit      `json:"open_circuits"`
	// Futile lists runbook entries held back on an index because their last repair there did
	// not move its figure.
	Futile         []FutileMark `json:"futile"`
	RunbookEntries int          `json:"runbook_entries"`
}

// Issue is an alert received and what became of it.
type Issue struct {
	AlertID       int64             `json:"alert_id"`
	Fingerprint   string            `json:"fingerprint"`
	Alertname     string            `json:"alertname"`
	Status        string            `json:"status"`
	Labels        map[string]string `json:"labels"`
	StartsAt      time.Time         `json:"starts_at"`
	EndsAt        *time.Time        `json:"ends_at,omitempty"`
	ReceivedAt    time.Time         `json:"received_at"`
	LastSeenAt    time.Time         `json:"last_seen_at"`
	TimesReceived int               `json:"times_received"`
	// NotificationReason is why Alertmanager (0.32 and later) sent the first notification of
	// the alert; RouteLabels the labels of the route it came through (0.34 and later).
	NotificationReason string            `json:"notification_reason,omitempty"`
	RouteLabels        map[string]string `json:"route_labels,omitempty"`
	Repairs            []IssueRepair     `json:"repairs"`
}

// IssueRepair is a repair an alert caused.
type IssueRepair struct {
	ID     int64  `json:"id"`
	Entry  string `json:"entry"`
	State  string `json:"state"`
	Reason string `json:"reason,omitempty"`
}

// Hold is one rule holding a repair back, until a time (zero: not known in advance — a human
// must reset the circuit, or a repair running on the target must end).
type Hold struct {
	Rule  string     `json:"rule"`
	Until *time.Time `json:"until,omitempty"`
}

// BudgetState is the answer of the budget rules for an index: may a repair run now, and if
// not, which rule holds it back and when the next one may run.
type BudgetState struct {
	Allowed bool `json:"allowed"`
	// HeldBy is the rule that holds the repair back longest: the one to look at.
	HeldBy string `json:"held_by,omitempty"`
	// NextAllowed is when every hold with a known end has ended; nil when the circuit is
	// open or only the running limit holds (it ends with a running repair).
	NextAllowed *time.Time `json:"next_allowed,omitempty"`
	Holds       []Hold     `json:"holds"`
	// UsedRatio is the share of the budget window that repairs of the index took.
	UsedRatio float64       `json:"used_ratio"`
	Share     float64       `json:"share"`
	Window    time.Duration `json:"window"`
	// Unhelpful counts the last repairs of the index in a row that did not help; Backoff is the
	// wait they impose after the last of them.
	Unhelpful       int           `json:"unhelpful"`
	Backoff         time.Duration `json:"backoff,omitempty"`
	RunningOnTarget int           `json:"running_on_target"`
}

// IndexBudget is the budget state of one index as the API shows it.
type IndexBudget struct {
	Target  string `json:"target"`
	Datname string `json:"datname"`
	Schema  string `json:"schemaname"`
	Table   string `json:"relname"`
	Index   string `json:"indexrelname"`
	BudgetState
}
