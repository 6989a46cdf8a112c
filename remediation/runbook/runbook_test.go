package runbook

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// fakeStrategy accepts the parameters in known; the runbook only needs its Spec and Bind.
type fakeStrategy struct {
	name  string
	known []string
}

func (f fakeStrategy) Spec() strategy.Spec {
	return strategy.Spec{Name: f.name, Description: "fake " + f.name}
}

func (f fakeStrategy) Bind(p strategy.Params) (strategy.Step, error) {
	for k := range p {
		if !slices.Contains(f.known, k) {
			return nil, fmt.Errorf("unknown parameter %q", k)
		}
	}
	return fakeStep{f: f, p: p}, nil
}

type fakeStep struct {
	f fakeStrategy
	p strategy.Params
}

func (s fakeStep) Spec() strategy.Spec     { return s.f.Spec() }
func (s fakeStep) Params() strategy.Params { return s.p }
func (s fakeStep) Figures(string) []string { return nil }
func (s fakeStep) Plan(context.Context, strategy.Env, catalog.Index) (strategy.Impact, error) {
	return strategy.Impact{}, errors.New("fake")
}
func (s fakeStep) Run(context.Context, strategy.Env, catalog.Index) (strategy.Outcome, error) {
	return strategy.Outcome{}, errors.New("fake")
}
func (s fakeStep) Rollback(context.Context, strategy.Env, catalog.Index, json.RawMessage) error {
	return errors.New("fake")
}

func fakeRegistry(t testing.TB) *strategy.Registry {
	t.Helper()
	reg, err := strategy.NewRegistry(
		fakeStrategy{name: "vacuum", known: []string{"analyze"}},
		fakeStrategy{name: "reindex", known: []string{"max_maintenance_work_mem"}},
	)
	if err != nil {
		t.Fatal(err)
	}
	return reg
}

var figures = []string{"pgvector_hnsw_heap_tids:dead", "pgvector_recall_ratio"}

func TestParseFull(t *testing.T) {
	rb, err := Load("testdata/full.yml", fakeRegistry(t), figures)
	if err != nil {
		t.Fatal(err)
	}
	berlin, _ := time.LoadLocation("Europe/Berlin")
	d := rb.Defaults
	if d.Priority != 40 || d.Cooldown != 2*time.Hour || d.Timeout != 30*time.Minute || d.ValidateWait != 5*time.Second ||
		d.ValidateAttempts != 2 || d.OnSuccess != OnSuccessDone || len(d.Windows) != 1 {
		t.Errorf("defaults %+v", d)
	}
	if len(rb.Entries) != 3 {
		t.Fatalf("%d entries", len(rb.Entries))
	}
	e := rb.Entries[0]
	if e.Name != "hnsw-dead-tuples" || e.Priority != 80 || e.Cooldown != 2*time.Hour || e.Timeout != 30*time.Minute ||
		e.Approval != ApprovalNone || e.DryRun || e.Continue || e.Line != 17 || len(e.Matchers) != 2 {
		t.Errorf("entry 0: %+v", e)
	}
	if got := e.Matchers.String(); got != `{alertname="PgvectorHNSWDeadTuplesPending",severity=~"high|critical"}` {
		t.Errorf("matchers %s", got)
	}
	if len(e.Windows) != 1 || e.Windows[0].Location.String() != berlin.String() || len(e.Windows[0].Days) != 5 ||
		e.Windows[0].Start != 22*time.Hour || e.Windows[0].End != 6*time.Hour {
		t.Errorf("windows inherited from defaults: %+v", e.Windows)
	}
	s0, s1, s2 := e.Steps[0], e.Steps[1], e.Steps[2]
	if s0.Strategy != "vacuum" || s0.OnFailure != OnFailureEscalate || s0.Params == nil || s0.Line != 23 {
		t.Errorf("step 0 %+v", s0)
	}
	want := validation.Validation{Figure: "pgvector_hnsw_heap_tids:dead", Op: "==", Value: 0, HasValue: true, Wait: 5 * time.Second, Attempts: 5}
	if s0.Validate == nil || *s0.Validate != want {
		t.Errorf("validation %+v, want %+v", s0.Validate, want)
	}
	if s1.Params["max_maintenance_work_mem"] != "1GB" || s1.OnFailure != OnFailureRollback || s1.OnSuccess != OnSuccessNext || s1.Validate != nil {
		t.Errorf("step 1 %+v", s1)
	}
	if s2.OnFailure != OnFailureStop {
		t.Errorf("step 2 %+v", s2)
	}
	a := rb.Entries[1]
	if !a.DryRun || a.Approval != ApprovalRequired || !a.Continue || a.Cooldown != 0 || len(a.Windows) != 0 || len(a.Matchers) != 2 {
		t.Errorf("entry 1 %+v", a)
	}
}

func TestMatch(t *testing.T) {
	rb, err := Load("testdata/full.yml", fakeRegistry(t), figures)
	if err != nil {
		t.Fatal(err)
	}
	names := func(es []*Entry) string {
		var out []string
		for _, e := range es {
			out = append(out, e.Name)
		}
		return strings.Join(out, ",")
	}
	cases := []struct {
		labels map[string]string
		want   string
	}{
		// First match wins.
		{map[string]string{"alertname": "PgvectorHNSWDeadTuplesPending", "severity": "high", "target": "main"}, "hnsw-dead-tuples"},
		// The audit entry continues, so the fallback matches after it.
		{map[string]string{"alertname": "PgvectorHNSWOrphans", "target": "main"}, "everything-hnsw-audit,hnsw-fallback"},
		{map[string]string{"alertname": "PgvectorHNSWDeadTuplesPending", "severity": "low", "target": "other"}, "hnsw-fallback"},
		{map[string]string{"alertname": "PgvectorIVFFlatImbalanced"}, ""},
		{map[string]string{}, ""},
	}
	for _, c := range cases {
		if got := names(rb.Match(c.labels)); got != c.want {
			t.Errorf("Match(%v) = %q, want %q", c.labels, got, c.want)
		}
	}
}

func TestWindows(t *testing.T) {
	rb, err := Parse("w.yml", []byte(`
entries:
  - name: w
    matchers: ['alertname="X"']
    steps: [{strategy: vacuum}]
    windows:
      - {days: [fri], start: "22:00", end: "02:00", time_zone: America/New_York}
      - {start: "12:00", end: "13:00"}
`), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	e := rb.Entries[0]
	ny, _ := time.LoadLocation("America/New_York")
	cases := []struct {
		at   time.Time
		want bool
	}{
		{time.Date(2026, 11, 27, 23, 0, 0, 0, ny), true},  // Friday evening
		{time.Date(2026, 11, 28, 1, 59, 0, 0, ny), true},  // past midnight, window started Friday
		{time.Date(2026, 11, 28, 2, 0, 0, 0, ny), false},  // end is exclusive
		{time.Date(2026, 11, 28, 23, 0, 0, 0, ny), false}, // Saturday evening
		{time.Date(2026, 11, 27, 21, 59, 0, 0, ny), false},
		{time.Date(2026, 11, 25, 12, 30, 0, 0, time.UTC), true}, // daily UTC window
		{time.Date(2026, 11, 25, 13, 0, 0, 0, time.UTC), false},
		// Friday 23:00 in New York is Saturday 04:00 UTC: the zone is honoured.
		{time.Date(2026, 11, 28, 4, 0, 0, 0, time.UTC), true},
	}
	for _, c := range cases {
		if got := e.InWindow(c.at); got != c.want {
			t.Errorf("InWindow(%v) = %v, want %v", c.at, got, c.want)
		}
	}
}

func TestParseErrors(t *testing.T) {
	const base = `entries:
  - name: a
    matchers: ['alertname="A"']
    steps:
      - strategy: vacuum
`
	cases := []struct{ name, in, want string }{
		{"empty", ``, "rb.yml: file is empty"},
		{"no entries", "defaults: {priority: 1}\n", "rb.yml: entries: no entries; a runbook needs at least one"},
		{"unknown top key", base + "extra: 1\n", `rb.yml:6: extra: unknown key "extra" (known keys: defaults, entries)`},
		{"unknown entry key", base + "    retries: 3\n", `rb.yml:6: entries[0].retries: unknown key "retries" (known keys: approval, approve_builds_over, continue, cooldown, dry_run, matchers, name, priority, steps, timeout, windows)`},
		{"bad duration", strings.Replace(base, "name: a", "name: a\n    cooldown: soon", 1), `rb.yml:3: entries[0].cooldown: cannot use "soon" as a duration (examples: 30s, 5m, 1h30m, 7d)`},
		{"missing name", strings.Replace(base, "name: a", "priority: 3", 1), "rb.yml:2: entries[0].name: missing; every entry needs a name (it keys cooldowns and history)"},
		{"duplicate name", base + strings.TrimPrefix(base, "entries:\n"), `rb.yml:6: entries[1].name: "a" is already the name of entries[0]`},
		{"bad matcher", strings.Replace(base, `alertname="A"`, `alertname=="A"`, 1), `rb.yml:3: entries[0].matchers[0]: cannot parse "alertname==\"A\"": `},
		{"no matchers", strings.Replace(base, `matchers: ['alertname="A"']`, `matchers: []`, 1), `rb.yml:3: entries[0].matchers: missing; at least one matcher such as 'alertname="PgvectorHNSWDeadTuples"' is needed`},
		{"no steps", strings.Replace(base, "steps:\n      - strategy: vacuum\n", "steps: []\n", 1), "rb.yml:4: entries[0].steps: missing; an entry needs at least one step"},
		{"unknown strategy", strings.Replace(base, "vacuum", "vaccum", 1), `rb.yml:5: entries[0].steps[0].strategy: unknown strategy "vaccum" (known: reindex, vacuum)`},
		{"bad params", base + "        params: {full: true}\n", `rb.yml:6: entries[0].steps[0].params: vacuum: unknown parameter "full"`},
		{"unknown figure", base + "        validate: {figure: pgvector_hnsw_orphans, op: '<', value: 1}\n",
			`rb.yml:6: entries[0].steps[0].validate.figure: unknown figure "pgvector_hnsw_orphans" (known: pgvector_hnsw_heap_tids:dead, pgvector_recall_ratio)`},
		{"unknown fallback", base + "        validate: {figure: 'pgvector_hnsw_heap_tids:dead', fallback: pgvector_dead_estimate, op: '<', value: 1}\n",
			`rb.yml:6: entries[0].steps[0].validate.fallback: unknown figure "pgvector_dead_estimate" (known: pgvector_hnsw_heap_tids:dead, pgvector_recall_ratio)`},
		{"fallback is the figure", base + "        validate: {figure: pgvector_recall_ratio, fallback: pgvector_recall_ratio, op: '>=', value: 1}\n",
			`rb.yml:6: entries[0].steps[0].validate.fallback: "pgvector_recall_ratio" is the figure itself`},
		{"bad op", base + "        validate: {figure: pgvector_recall_ratio, op: '=<', value: 1}\n",
			`rb.yml:6: entries[0].steps[0].validate.op: "=<" is not one of < <= > >= == !=`},
		{"missing value", base + "        validate: {figure: pgvector_recall_ratio, op: '>='}\n",
			`rb.yml:6: entries[0].steps[0].validate.value: missing; the bound the figure is compared with`},
		{"before_factor without value", base + "        validate: {figure: pgvector_recall_ratio, op: '>=', before_factor: 1.1}\n",
			`rb.yml:6: entries[0].steps[0].validate.value: missing; before_factor needs it`},
		{"before_factor with ==", base + "        validate: {figure: pgvector_recall_ratio, op: '==', value: 1, before_factor: 0.5}\n",
			`rb.yml:6: entries[0].steps[0].validate.before_factor: needs an ordering op (< <= > >=), not "=="`},
		{"before_factor not positive", base + "        validate: {figure: pgvector_recall_ratio, op: '<', value: 1, before_factor: 0}\n",
			`rb.yml:6: entries[0].steps[0].validate.before_factor: 0 must be greater than 0`},
		{"bad approval", strings.Replace(base, "name: a", "name: a\n    approval: maybe", 1), `rb.yml:3: entries[0].approval: "maybe" is not one of none, required`},
		{"bad on_failure", base + "        on_failure: panic\n", `rb.yml:6: entries[0].steps[0].on_failure: "panic" is not one of escalate, rollback, stop`},
		{"bad step approval", base + "        approval: later\n", `rb.yml:6: entries[0].steps[0].approval: "later" is not one of none, required`},
		{"bad attempts", "defaults: {validate: {attempts: 0}}\n" + base, "rb.yml:1: defaults.validate.attempts: 0 is out of range 1..100"},
		{"bad timeout", "defaults: {timeout: 0s}\n" + base, "rb.yml:1: defaults.timeout: must be greater than 0"},
		{"bad day", "defaults: {windows: [{days: [someday], start: '01:00', end: '02:00'}]}\n" + base,
			`rb.yml:1: defaults.windows[0].days[0]: "someday" is not a day (mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri)`},
		{"bad clock", "defaults: {windows: [{start: '1am', end: '02:00'}]}\n" + base, `rb.yml:1: defaults.windows[0].start: "1am" is not a time of day HH:MM such as "02:00"`},
		{"empty window", "defaults: {windows: [{start: '02:00', end: '02:00'}]}\n" + base, "rb.yml:1: defaults.windows[0]: start and end are both 02:00; the window would be empty"},
		{"bad zone", "defaults: {windows: [{start: '01:00', end: '02:00', time_zone: Mars/Olympus}]}\n" + base,
			`rb.yml:1: defaults.windows[0].time_zone: unknown time zone "Mars/Olympus" (use an IANA name such as Europe/Berlin, or UTC)`},
		{"wrong type", strings.Replace(base, "name: a", "name: a\n    priority: high", 1), `rb.yml:3: entries[0].priority: cannot use "high" as an integer`},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Parse("rb.yml", []byte(c.in), fakeRegistry(t), figures)
			if err == nil {
				t.Fatal("no error")
			}
			if !strings.HasPrefix(err.Error(), c.want) {
				t.Errorf("error\n got: %s\nwant: %s", err, c.want)
			}
		})
	}
}

func TestParseReportsEveryError(t *testing.T) {
	_, err := Parse("rb.yml", []byte(`entries:
  - name: a
    matchers: ['alertname="A"']
    steps: [{strategy: nope}]
  - name: b
    matchers: ['x=~"("']
    steps: [{strategy: vacuum, on_failure: later}]
`), fakeRegistry(t), figures)
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 {
		t.Fatalf("want 3 errors, got %d:\n%s", len(lines), err)
	}
	for i, prefix := range []string{"rb.yml:4: entries[0].steps[0].strategy:", "rb.yml:6: entries[1].matchers[0]:", "rb.yml:7: entries[1].steps[0].on_failure:"} {
		if !strings.HasPrefix(lines[i], prefix) {
			t.Errorf("error %d: %s, want prefix %s", i, lines[i], prefix)
		}
	}
}

// TestUnknownKeyHidesNoOtherError: a file with an unknown key, a wrong type and an unknown
// strategy reports all three, in line order, with file:line and key path; the wrong type is
// reported once, not again by the range check of the zero value it was left at.
func TestUnknownKeyHidesNoOtherError(t *testing.T) {
	_, err := Parse("rb.yml", []byte(`entries:
  - name: a
    matchers: ['alertname="A"']
    retries: 3
    steps: [{strategy: vacuum}]
  - name: b
    priority: high
    matchers: ['alertname="B"']
    steps: [{strategy: vaccum}]
`), fakeRegistry(t), figures)
	if err == nil {
		t.Fatal("no error")
	}
	want := []string{
		`rb.yml:4: entries[0].retries: unknown key "retries"`,
		`rb.yml:7: entries[1].priority: cannot use "high" as an integer`,
		`rb.yml:9: entries[1].steps[0].strategy: unknown strategy "vaccum"`,
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != len(want) {
		t.Fatalf("want %d errors, got %d:\n%s", len(want), len(lines), err)
	}
	for i, w := range want {
		if !strings.HasPrefix(lines[i], w) {
			t.Errorf("error %d:\n got: %s\nwant: %s...", i, lines[i], w)
		}
	}
}

// TestSyntaxErrorStops: a file that is not YAML has nothing to check further.
func TestSyntaxErrorStops(t *testing.T) {
	_, err := Parse("rb.yml", []byte("entries: [\n"), fakeRegistry(t), figures)
	if err == nil || strings.Count(err.Error(), "\n") != 0 || !strings.Contains(err.Error(), "invalid YAML") {
		t.Errorf("error %v, want one invalid YAML error", err)
	}
}

func TestNilRegistryAndFiguresSkipChecks(t *testing.T) {
	in := []byte(`entries:
  - name: a
    matchers: ['alertname="A"']
    steps: [{strategy: anything, params: {x: 1}, validate: {figure: whatever, op: '>', value: 0}}]
`)
	if _, err := Parse("rb.yml", in, nil, nil); err != nil {
		t.Errorf("nil registry and figures: %v", err)
	}
	if _, err := Parse("rb.yml", in, fakeRegistry(t), nil); err == nil {
		t.Error("the registry check did not run")
	}
}

func TestHolderKeepsOldOnInvalidReload(t *testing.T) {
	reg := fakeRegistry(t)
	first, err := Load("testdata/full.yml", reg, figures)
	if err != nil {
		t.Fatal(err)
	}
	h := NewHolder(first)
	path := t.TempDir() + "/rb.yml"
	if err := os.WriteFile(path, []byte("entries: [{name: x}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	load := func() (*Runbook, error) { return Load(path, reg, figures) }
	if err := h.Reload(load); err == nil {
		t.Fatal("invalid runbook accepted")
	}
	if h.Get() != first {
		t.Fatal("invalid reload replaced the runbook")
	}
	if got := testutil.ToFloat64(reloadGauge(h, "vectorheal_runbook_last_reload_successful")); got != 0 {
		t.Errorf("last reload successful = %v after a refused reload, want 0", got)
	}
	if err := os.WriteFile(path, []byte("entries: [{name: x, matchers: ['a=\"b\"'], steps: [{strategy: reindex}]}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := h.Reload(load); err != nil {
		t.Fatal(err)
	}
	if got := h.Get(); got == first || got.Entries[0].Name != "x" {
		t.Errorf("valid reload not taken: %+v", got)
	}
	if got := testutil.ToFloat64(reloadGauge(h, "vectorheal_runbook_last_reload_successful")); got != 1 {
		t.Errorf("last reload successful = %v after a reload, want 1", got)
	}
	if n := testutil.CollectAndCount(h); n != 2 {
		t.Errorf("holder publishes %d series, want 2", n)
	}
}

// reloadGauge is the one series called name of h.
func reloadGauge(h *Holder, name string) prometheus.Collector {
	return collectorFunc(func(ch chan<- prometheus.Metric) {
		all := make(chan prometheus.Metric, 2)
		h.Collect(all)
		close(all)
		for m := range all {
			if strings.Contains(m.Desc().String(), `"`+name+`"`) {
				ch <- m
			}
		}
	})
}

type collectorFunc func(chan<- prometheus.Metric)

func (f collectorFunc) Describe(chan<- *prometheus.Desc)    {}
func (f collectorFunc) Collect(ch chan<- prometheus.Metric) { f(ch) }

// FuzzParse checks that no input makes the parser panic, and that an accepted runbook is
// complete: every entry has a name, matchers and steps with known settings.
func FuzzParse(f *testing.F) {
	reg := fakeRegistry(f)
	f.Fuzz(func(t *testing.T, data []byte) {
		rb, err := Parse("fuzz.yml", data, reg, figures)
		if err != nil {
			return
		}
		for _, e := range rb.Entries {
			if e.Name == "" || len(e.Matchers) == 0 || len(e.Steps) == 0 || e.Timeout <= 0 {
				t.Fatalf("accepted incomplete entry %+v", e)
			}
			for _, s := range e.Steps {
				if _, ok := reg.Get(s.Strategy); !ok {
					t.Fatalf("accepted unknown strategy %q", s.Strategy)
				}
				if s.Validate != nil && !slices.Contains(figures, s.Validate.Figure) {
					t.Fatalf("accepted unknown figure %q", s.Validate.Figure)
				}
			}
			e.InWindow(time.Now())
			e.Matches(map[string]string{"alertname": "A"})
		}
	})
}
