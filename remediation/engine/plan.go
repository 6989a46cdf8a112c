package engine

import (
	"fmt"
	"time"

	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

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
	// Manual repairs were asked for by a person through the API: they skip the alert,
	// cooldown, flap and circuit checks, but still take the index lock.
	Manual bool `json:"manual,omitempty"`
}

// PlanStep is one step of a plan.
type PlanStep struct {
	Strategy  string          `json:"strategy"`
	Params    strategy.Params `json:"params,omitempty"`
	Validate  *Validation     `json:"validate,omitempty"`
	OnFailure string          `json:"on_failure,omitempty"` // runbook.OnFailureEscalate, OnFailureRollback or OnFailureStop
	OnSuccess string          `json:"on_success,omitempty"` // runbook.OnSuccessDone or OnSuccessNext
}

// Validation is the bound a figure must meet after a step.
type Validation struct {
	Figure   string        `json:"figure"`
	Op       string        `json:"op"`
	Value    float64       `json:"value"`
	Wait     time.Duration `json:"wait"`
	Attempts int           `json:"attempts"`
}

// check reports whether v meets the bound.
func (v Validation) check(got float64) (bool, error) {
	switch v.Op {
	case "<", "lt":
		return got < v.Value, nil
	case "<=", "le":
		return got <= v.Value, nil
	case ">", "gt":
		return got > v.Value, nil
	case ">=", "ge":
		return got >= v.Value, nil
	case "==", "=", "eq":
		return got == v.Value, nil
	case "!=", "ne":
		return got != v.Value, nil
	}
	return false, fmt.Errorf("validation of %s: unknown operator %q", v.Figure, v.Op)
}

// Window is a runbook maintenance window in a form that survives JSON (runbook.Window holds a
// *time.Location).
type Window struct {
	Days     []time.Weekday `json:"days,omitempty"`
	Start    time.Duration  `json:"start"`
	End      time.Duration  `json:"end"`
	Location string         `json:"location,omitempty"`
}

// contains reports whether t falls in w, by the runbook's own rule.
func (w Window) contains(t time.Time) bool {
	loc, err := time.LoadLocation(w.Location)
	if err != nil {
		loc = time.UTC
	}
	return runbook.Window{Days: w.Days, Start: w.Start, End: w.End, Location: loc}.Contains(t)
}

// inWindow reports whether a plan may start at t.
func (p Plan) inWindow(t time.Time) bool {
	if len(p.Windows) == 0 {
		return true
	}
	for _, w := range p.Windows {
		if w.contains(t) {
			return true
		}
	}
	return false
}

// severityScore is the seed's priority score of an alert's severity, used when the runbook
// entry gives no priority.
func severityScore(sev string) int {
	switch sev {
	case "critical":
		return 100
	case "high":
		return 80
	case "warning":
		return 60
	case "medium":
		return 50
	case "info":
		return 30
	case "low":
		return 20
	}
	return 50
}

// riverPriority maps the seed's 0-100 score onto River's priorities, 1 (first) to 4.
func riverPriority(score int) int {
	switch {
	case score >= 90:
		return 1
	case score >= 70:
		return 2
	case score >= 40:
		return 3
	}
	return 4
}

// planFromEntry copies a runbook entry into a plan.
func planFromEntry(e *runbook.Entry) Plan {
	p := Plan{Entry: e.Name, Priority: e.Priority, Cooldown: e.Cooldown, Timeout: e.Timeout,
		Approval: e.Approval == runbook.ApprovalRequired, DryRun: e.DryRun}
	for _, s := range e.Steps {
		ps := PlanStep{Strategy: s.Strategy, Params: s.Params, OnFailure: s.OnFailure, OnSuccess: s.OnSuccess}
		if s.Validate != nil {
			ps.Validate = &Validation{Figure: s.Validate.Figure, Op: s.Validate.Op, Value: s.Validate.Value,
				Wait: s.Validate.Wait, Attempts: s.Validate.Attempts}
		}
		p.Steps = append(p.Steps, ps)
	}
	for _, w := range e.Windows {
		loc := "UTC"
		if w.Location != nil {
			loc = w.Location.String()
		}
		p.Windows = append(p.Windows, Window{Days: w.Days, Start: w.Start, End: w.End, Location: loc})
	}
	return p
}
