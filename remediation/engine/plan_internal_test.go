package engine

import (
	"strings"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// The engine's pure logic, without a database.

func TestPlanFromEntry(t *testing.T) {
	berlin, err := time.LoadLocation("Europe/Berlin")
	if err != nil {
		t.Fatal(err)
	}
	v := &validation.Validation{Figure: "pgvector_recall_ratio", Op: ">=", Value: 0.95, HasValue: true, Wait: time.Second, Attempts: 3}
	e := &runbook.Entry{Name: "e", Matchers: labels.Matchers{}, Priority: 70, Cooldown: time.Hour, Timeout: 30 * time.Minute,
		Approval: runbook.ApprovalRequired, DryRun: true,
		Steps: []runbook.Step{
			{Strategy: "vacuum", Params: strategy.Params{"analyze": false}, Validate: v, OnFailure: runbook.OnFailureEscalate, OnSuccess: runbook.OnSuccessNext},
			{Strategy: "reindex", Params: strategy.Params{}, OnFailure: runbook.OnFailureStop, OnSuccess: runbook.OnSuccessDone},
		},
		Windows: []runbook.Window{{Days: []time.Weekday{time.Friday}, Start: 22 * time.Hour, End: 2 * time.Hour, Location: berlin}},
	}
	p := planFromEntry(e)
	if p.Entry != "e" || p.Priority != 70 || p.Cooldown != time.Hour || p.Timeout != 30*time.Minute || !p.Approval || !p.DryRun || p.Manual {
		t.Errorf("plan %+v", p)
	}
	if len(p.Steps) != 2 || p.Steps[0].Validate == nil || *p.Steps[0].Validate != *v || p.Steps[1].Validate != nil ||
		p.Steps[0].OnSuccess != runbook.OnSuccessNext || p.Steps[1].OnFailure != runbook.OnFailureStop {
		t.Errorf("steps %+v", p.Steps)
	}
	// The plan holds a copy: changing the runbook's validation later does not change it.
	v.Value = 0.5
	if p.Steps[0].Validate.Value != 0.95 {
		t.Error("plan shares the runbook's validation")
	}
	if len(p.Windows) != 1 || p.Windows[0].Location != "Europe/Berlin" {
		t.Fatalf("windows %+v", p.Windows)
	}
	for _, c := range []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 11, 27, 23, 0, 0, 0, berlin), true},
		{time.Date(2026, 11, 28, 1, 0, 0, 0, berlin), true},
		{time.Date(2026, 11, 28, 23, 0, 0, 0, berlin), false},
		{time.Date(2026, 11, 27, 21, 30, 0, 0, time.UTC), true}, // 22:30 in Berlin
	} {
		if got := inWindow(p, c.at); got != c.want {
			t.Errorf("inWindow(%v) = %v, want %v", c.at, got, c.want)
		}
	}
	if !inWindow(Plan{}, time.Now()) {
		t.Error("a plan without windows may run any time")
	}
}

func TestPriority(t *testing.T) {
	for _, c := range []struct {
		severity string
		score    int
		river    int
	}{
		{"critical", 100, 1}, {"high", 80, 2}, {"warning", 60, 3}, {"medium", 50, 3},
		{"info", 30, 4}, {"low", 20, 4}, {"", 50, 3}, {"whatever", 50, 3},
	} {
		if got := severityScore(c.severity); got != c.score {
			t.Errorf("severityScore(%q) = %d, want %d", c.severity, got, c.score)
		}
		if got := riverPriority(c.score); got != c.river {
			t.Errorf("riverPriority(%d) = %d, want %d", c.score, got, c.river)
		}
	}
	for score, want := range map[int]int{90: 1, 89: 2, 70: 2, 69: 3, 40: 3, 39: 4, 0: 4, 1000: 1} {
		if got := riverPriority(score); got != want {
			t.Errorf("riverPriority(%d) = %d, want %d", score, got, want)
		}
	}
}

func TestLockKey(t *testing.T) {
	a := lockKey("main", "public", "items_idx")
	if a != "vectorheal/repair/4:main/6:public/9:items_idx" {
		t.Errorf("lockKey = %q", a)
	}
	// Names with the separator in them never collide with another split of the same text.
	pairs := [][2][3]string{
		{{"a/1:b", "c", "d"}, {"a", "1:b/c", "d"}},
		{{"t", "My Schema", "i"}, {"t", "My", "Schema/i"}},
		{{"t", "s", "i"}, {"t", "s", "i "}},
	}
	for _, p := range pairs {
		if x, y := lockKey(p[0][0], p[0][1], p[0][2]), lockKey(p[1][0], p[1][1], p[1][2]); x == y {
			t.Errorf("%v and %v share the key %q", p[0], p[1], x)
		}
	}
}

func TestDeferDelay(t *testing.T) {
	for _, c := range []struct {
		n    int
		want time.Duration
	}{{0, 30 * time.Second}, {1, time.Minute}, {2, 2 * time.Minute}, {4, 8 * time.Minute}, {5, 10 * time.Minute}, {1000, 10 * time.Minute}} {
		if got := deferDelay(30*time.Second, c.n, 10*time.Minute); got != c.want {
			t.Errorf("deferDelay(30s, %d) = %s, want %s", c.n, got, c.want)
		}
	}
}

func TestNameProblem(t *testing.T) {
	for _, ok := range []string{"public", "My Schema", "t_v_idx; DROP TABLE t", "$(rm -rf /)", "ünïcødé", ""} {
		if p := nameProblem(ok); p != "" {
			t.Errorf("nameProblem(%q) = %q: only the catalog decides", ok, p)
		}
	}
	if p := nameProblem("a\x00b"); !strings.Contains(p, "NUL") {
		t.Errorf("NUL byte: %q", p)
	}
}

func TestOutcomeOf(t *testing.T) {
	for state, want := range map[string]string{"rolled_back": "rolled_back", "failed": "failed", "rollback_failed": "failed"} {
		if got := outcomeOf(stepResult{state: state}); got != want {
			t.Errorf("outcomeOf(%s) = %s", state, got)
		}
	}
}

// The validation figure before a step comes from the step's own record where it keeps it,
// falls back as validation.Measure does where the figure cannot be known, and is unknown
// (no futility can be claimed) when neither was measured.
func TestStepBeforeValue(t *testing.T) {
	v := func(x float64) *float64 { return &x }
	for _, tc := range []struct {
		name       string
		b          stepBefore
		record     map[string]float64
		want       *float64
		wantFigure string
	}{
		{"measured by the engine", stepBefore{figure: "f", measured: v(3)}, map[string]float64{}, v(3), "f"},
		{"engine's value does not replace the step's", stepBefore{figure: "f", measured: v(3)}, map[string]float64{"f": 4}, v(3), "f"},
		{"recorded by the step", stepBefore{recorded: "f"}, map[string]float64{"f": 7}, v(7), "f"},
		{"recorded fallback", stepBefore{recorded: "f", fallback: "g"}, map[string]float64{"g": 2}, v(2), "g"},
		{"fallback measured by the engine", stepBefore{recorded: "f", fallback: "g", measured: v(5)}, map[string]float64{}, v(5), "g"},
		{"recorded but not measured", stepBefore{recorded: "f"}, map[string]float64{}, nil, ""},
		{"no validation", stepBefore{}, map[string]float64{"f": 1}, nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, fig := tc.b.value(tc.record)
			if (got == nil) != (tc.want == nil) || got != nil && *got != *tc.want || fig != tc.wantFigure {
				t.Fatalf("value = %v, %q; want %v, %q", got, fig, tc.want, tc.wantFigure)
			}
			if got != nil && tc.record[fig] == 0 {
				t.Errorf("record %v lacks %s", tc.record, fig)
			}
		})
	}
}
