package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// windowContains reports whether t falls in w, by the runbook's own rule.
func windowContains(w Window, t time.Time) bool {
	loc, err := time.LoadLocation(w.Location)
	if err != nil {
		loc = time.UTC
	}
	return runbook.Window{Days: w.Days, Start: w.Start, End: w.End, Location: loc}.Contains(t)
}

// inWindow reports whether plan p may start at t.
func inWindow(p Plan, t time.Time) bool {
	if len(p.Windows) == 0 {
		return true
	}
	for _, w := range p.Windows {
		if windowContains(w, t) {
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
		Approval: e.Approval == runbook.ApprovalRequired, DryRun: e.DryRun, ApproveBuildsOver: e.ApproveBuildsOver}
	for _, s := range e.Steps {
		ps := PlanStep{Strategy: s.Strategy, Params: s.Params, OnFailure: s.OnFailure, OnSuccess: s.OnSuccess,
			// The entry's own approval, given before anything ran, covers every step.
			Approval: s.Approval == runbook.ApprovalRequired && e.Approval != runbook.ApprovalRequired}
		if s.Validate != nil {
			v := *s.Validate
			ps.Validate = &v
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

// bind decodes the plan's steps with their strategies. The parameters were checked when the
// runbook was loaded (or the manual repair requested); this turns the stored copy back into
// typed steps, and refuses a plan that no longer fits the strategies (after an upgrade).
func bind(reg *strategy.Registry, p Plan) ([]strategy.Step, error) {
	out := make([]strategy.Step, len(p.Steps))
	for i, s := range p.Steps {
		st, err := reg.Bind(s.Strategy, s.Params)
		if err != nil {
			return nil, fmt.Errorf("step %d (%s): %w", i, s.Strategy, err)
		}
		out[i] = st
	}
	return out, nil
}

// lockKey names an index for the repair lock; length prefixes keep names with separators
// apart. A target is one database, so datname (absent from some alerts) is left out.
func lockKey(target, schema, index string) string {
	return fmt.Sprintf("vectorheal/repair/%d:%s/%d:%s/%d:%s", len(target), target, len(schema), schema, len(index), index)
}

// deferDelay is how long a repair whose step said "retry later" waits before its next try:
// base doubled per earlier deferral, at most limit.
func deferDelay(base time.Duration, deferrals int, limit time.Duration) time.Duration {
	d := base
	for range min(deferrals, 20) {
		d *= 2
		if d >= limit {
			return limit
		}
	}
	return min(d, limit)
}

// nameProblem says why a label value cannot name a PostgreSQL object at all: the catalog is
// asked about anything else, and only it decides whether the object exists. A NUL byte cannot
// be sent as text to the server, so it is refused here rather than failing the query.
func nameProblem(v string) string {
	if strings.ContainsRune(v, 0) {
		return "contains a NUL byte, which no PostgreSQL name can"
	}
	return ""
}
