package validation_test

import (
	"context"
	"encoding/json"
	"errors"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/measure"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// TestValidationMet is the comparison every validation goes through: runbook steps, the
// engine's already-healthy check and manual repairs all call Compare (through Once).
func TestValidationMet(t *testing.T) {
	for _, c := range []struct {
		op   string
		v    float64
		want bool
	}{
		{"<", 0.5, true}, {"<", 1, false}, {"<=", 1, true}, {"<=", 1.5, false}, {">", 1, false}, {">", 2, true},
		{">=", 1, true}, {">=", 0.9, false}, {"==", 1, true}, {"==", 0, false}, {"!=", 1, false}, {"!=", 2, true},
		{"=<", 1, false}, {"lt", 0, false}, // not operators: never met
		{"<=", math.NaN(), false}, {"!=", math.NaN(), false}, // a figure not measured exactly meets no bound
	} {
		if got := validation.Compare(c.v, c.op, 1); got != c.want {
			t.Errorf("%g %s 1 = %v, want %v", c.v, c.op, got, c.want)
		}
		m := fixed{values: map[string]float64{"f": c.v}}
		rec := validation.Once(context.Background(), m, nil, catalog.Index{}, validation.Validation{Figure: "f", Op: c.op, Value: 1, HasValue: true})
		if rec.Passed != c.want {
			t.Errorf("Once: %g %s 1 passed = %v, want %v (%+v)", c.v, c.op, rec.Passed, c.want, rec)
		}
	}
}

func TestCheckNamesTheField(t *testing.T) {
	for _, c := range []struct {
		v    validation.Validation
		want string
	}{
		{validation.Validation{Figure: "f", Op: "<", HasValue: true}, ""},
		{validation.Validation{Figure: "f", Op: "<", AsBuiltFactor: 1.05}, ""},
		{validation.Validation{Op: "<", HasValue: true}, "figure: missing"},
		{validation.Validation{Figure: "f", Op: "lt", HasValue: true}, `op: "lt" is not one of < <= > >= == !=`},
		{validation.Validation{Figure: "f", Op: "<"}, "value: missing"},
		{validation.Validation{Figure: "f", Op: "<", AsBuiltFactor: -1}, "as_built_factor:"},
	} {
		err := c.v.Check()
		if c.want == "" && err != nil || c.want != "" && (err == nil || !strings.HasPrefix(err.Error(), c.want)) {
			t.Errorf("Check(%+v) = %v, want %q", c.v, err, c.want)
		}
	}
}

// TestAsBuiltBound: with as_built_factor the bound is the index's as-built figure times the
// factor when the Measurer knows it, value otherwise, and unmet when there is neither.
func TestAsBuiltBound(t *testing.T) {
	ctx := context.Background()
	ix := catalog.Index{Schema: "s", Name: "i"}
	v := validation.Validation{Figure: "orphans", Op: "<=", AsBuiltFactor: 1.05}
	withAB := asBuilt{fixed: fixed{values: map[string]float64{"orphans": 1040}}, built: map[string]float64{"orphans": 1000}}
	rec := validation.Once(ctx, withAB, nil, ix, v)
	if !rec.Passed || *rec.Bound != 1050 || rec.BoundFrom != "as_built" {
		t.Errorf("1040 <= 1000*1.05: %+v", rec.Judge)
	}
	withAB.values["orphans"] = 1100
	if rec := validation.Once(ctx, withAB, nil, ix, v); rec.Passed {
		t.Errorf("1100 <= 1050 passed: %+v", rec.Judge)
	}
	// No as-built figure recorded and no value: unmet, and the record says why.
	noAB := asBuilt{fixed: fixed{values: map[string]float64{"orphans": 0}}, built: map[string]float64{}}
	rec = validation.Once(ctx, noAB, nil, ix, v)
	if rec.Passed || !strings.Contains(rec.Failure(), "no as-built figure") {
		t.Errorf("no as-built, no value: %+v", rec.Judge)
	}
	// ... with a value to fall back to, the value is the bound.
	v.Value, v.HasValue = 10, true
	rec = validation.Once(ctx, noAB, nil, ix, v)
	if !rec.Passed || *rec.Bound != 10 || rec.BoundFrom != "value" {
		t.Errorf("fallback to value: %+v", rec.Judge)
	}
	// A Measurer without AsBuilt falls back the same way.
	rec = validation.Once(ctx, fixed{values: map[string]float64{"orphans": 11}}, nil, ix, v)
	if rec.Passed || *rec.Bound != 10 {
		t.Errorf("measurer without as-built: %+v", rec.Judge)
	}
	// An as-built lookup that fails fails the validation with the error.
	rec = validation.Once(ctx, asBuilt{fixed: withAB.fixed, err: errors.New("store down")}, nil, ix, v)
	if rec.Passed || !strings.Contains(rec.Error, "store down") {
		t.Errorf("as-built error: %+v", rec.Judge)
	}
}

// TestAwaitTriesUntilMet: Await measures up to Attempts times and passes on the first value
// within bounds.
func TestAwaitTriesUntilMet(t *testing.T) {
	m := &sequence{values: []float64{5, 3, 0, 0}}
	rec := validation.Await(context.Background(), m, nil, catalog.Index{}, validation.Validation{Figure: "f", Op: "==", HasValue: true, Attempts: 5})
	if !rec.Passed || rec.Tries != 3 || *rec.Measured != 0 {
		t.Errorf("record %+v", rec.Judge)
	}
	m = &sequence{values: []float64{5, 5}}
	rec = validation.Await(context.Background(), m, nil, catalog.Index{}, validation.Validation{Figure: "f", Op: "==", HasValue: true, Attempts: 2})
	if rec.Passed || rec.Tries != 2 || !strings.Contains(rec.Failure(), "f = 5 does not meet == 0 after 2 tries") {
		t.Errorf("record %+v: %s", rec.Judge, rec.Failure())
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	rec = validation.Await(ctx, m, nil, catalog.Index{}, validation.Validation{Figure: "f", Op: "==", HasValue: true, Attempts: 2, Wait: time.Hour})
	if rec.Passed || !strings.Contains(rec.Error, "context canceled") {
		t.Errorf("cancelled: %+v", rec.Judge)
	}
}

// TestJSONKeepsStoredPlans: plans stored before as_built_factor existed decode with their
// value, and a validation without a value does not grow one through a round trip.
func TestJSONKeepsStoredPlans(t *testing.T) {
	var old validation.Validation
	if err := json.Unmarshal([]byte(`{"figure":"f","op":"==","value":0,"wait":0,"attempts":3}`), &old); err != nil {
		t.Fatal(err)
	}
	if !old.HasValue || old.Value != 0 || old.Attempts != 3 || old.Check() != nil {
		t.Errorf("old plan decoded as %+v", old)
	}
	ab := validation.Validation{Figure: "f", Op: "<=", AsBuiltFactor: 1.1}
	b, _ := json.Marshal(ab)
	var back validation.Validation
	if err := json.Unmarshal(b, &back); err != nil || back != ab {
		t.Errorf("round trip %s -> %+v (%v)", b, back, err)
	}
	rec, _ := json.Marshal(validation.Record{Validation: ab, Judge: validation.Judge{Tries: 2, Passed: true}})
	if !strings.Contains(string(rec), `"passed":true`) || !strings.Contains(string(rec), `"as_built_factor":1.1`) {
		t.Errorf("record JSON %s", rec)
	}
}

func TestMoved(t *testing.T) {
	for _, c := range []struct {
		a, b float64
		want bool
	}{{1282, 1282, false}, {1282, 471, true}, {0.8, 0.8 + 1e-12, false}, {0.8, 0.81, true}, {math.NaN(), 1, true}} {
		if got := validation.Moved(c.a, c.b); got != c.want {
			t.Errorf("Moved(%g, %g) = %v", c.a, c.b, got)
		}
	}
}

// oneAtATime gives the test measurers below what validation does not use of a
// strategy.Measurer (validation reads one figure at a time): no batch reading, no settled
// figure, no as-built value. A measurer overrides what a test needs.
type oneAtATime struct{}

func (oneAtATime) Read(_ context.Context, _ *pgxpool.Pool, _ catalog.Index, figures ...string) measure.Reading {
	r := measure.Reading{}
	for _, f := range figures {
		r[f] = measure.Value{Err: errors.New("validation reads one figure at a time")}
	}
	return r
}
func (oneAtATime) Settled(string) bool { return false }
func (oneAtATime) AsBuilt(context.Context, *pgxpool.Pool, catalog.Index, string) (float64, bool, error) {
	return 0, false, nil
}

type fixed struct {
	oneAtATime
	values map[string]float64
}

func (f fixed) Figures() []string { return nil }
func (f fixed) Measure(_ context.Context, _ *pgxpool.Pool, _ catalog.Index, figure string) (float64, error) {
	v, ok := f.values[figure]
	if !ok {
		return 0, errors.New("unknown figure " + figure)
	}
	return v, nil
}

// asBuilt is a Measurer that knows as-built figures.
type asBuilt struct {
	fixed
	built map[string]float64
	err   error
}

func (a asBuilt) AsBuilt(_ context.Context, _ *pgxpool.Pool, _ catalog.Index, figure string) (float64, bool, error) {
	if a.err != nil {
		return 0, false, a.err
	}
	v, ok := a.built[figure]
	return v, ok, nil
}

type sequence struct {
	oneAtATime
	values []float64
	n      int
}

func (s *sequence) Figures() []string { return nil }
func (s *sequence) Measure(context.Context, *pgxpool.Pool, catalog.Index, string) (float64, error) {
	v := s.values[min(s.n, len(s.values)-1)]
	s.n++
	return v, nil
}

// TestFallbackWhereUnknowable: a validation with a fallback judges its figure wherever that
// can be measured, and the fallback, against the same bound, only where the figure is
// unknowable on the target (NaN); the record says which figure it judged.
func TestFallbackWhereUnknowable(t *testing.T) {
	ctx := context.Background()
	v := validation.Validation{Figure: "exact", Fallback: "estimate", Op: "<", Value: 1000, HasValue: true}
	// Superuser: the exact figure decides, even when the estimate would pass.
	rec := validation.Once(ctx, fixed{values: map[string]float64{"exact": 1500, "estimate": 10}}, nil, catalog.Index{}, v)
	if rec.Passed || rec.MeasuredFigure != "" || rec.Figured() != "exact" || *rec.Measured != 1500 {
		t.Errorf("exact known: %+v", rec.Judge)
	}
	if !strings.Contains(rec.Failure(), "exact = 1500 does not meet < 1000") {
		t.Errorf("failure %q", rec.Failure())
	}
	// Managed: the exact figure is NaN, the estimate is judged.
	managed := fixed{values: map[string]float64{"exact": math.NaN(), "estimate": 10}}
	rec = validation.Once(ctx, managed, nil, catalog.Index{}, v)
	if !rec.Passed || rec.MeasuredFigure != "estimate" || *rec.Measured != 10 {
		t.Errorf("exact unknowable: %+v", rec.Judge)
	}
	managed.values["estimate"] = 2000
	rec = validation.Await(ctx, managed, nil, catalog.Index{}, v)
	if rec.Passed || !strings.Contains(rec.Failure(), "estimate = 2000 does not meet < 1000") {
		t.Errorf("estimate too high: %+v %q", rec.Judge, rec.Failure())
	}
	fig, got, err := validation.Measure(ctx, managed, nil, catalog.Index{}, v)
	if fig != "estimate" || got != 2000 || err != nil {
		t.Errorf("Measure = %s %v %v", fig, got, err)
	}
	// An error measuring the exact figure is an error, not a reason to judge the estimate.
	rec = validation.Once(ctx, fixed{values: map[string]float64{"estimate": 10}}, nil, catalog.Index{}, v)
	if rec.Passed || !strings.Contains(rec.Error, "unknown figure exact") {
		t.Errorf("exact failed: %+v", rec.Judge)
	}
	// Without a fallback a NaN meets nothing, and the failure says why.
	v.Fallback = ""
	rec = validation.Once(ctx, managed, nil, catalog.Index{}, v)
	if rec.Passed || !strings.Contains(rec.Failure(), "exact cannot be known on this target") {
		t.Errorf("no fallback: %+v %q", rec.Judge, rec.Failure())
	}
	if b, err := json.Marshal(rec); err != nil || !strings.Contains(string(b), "cannot be known") {
		t.Errorf("the record of an unknowable figure must be storable: %s, %v", b, err)
	}
	if err := (validation.Validation{Figure: "f", Fallback: "f", Op: "<", HasValue: true}).Check(); err == nil || !strings.HasPrefix(err.Error(), "fallback:") {
		t.Errorf("fallback naming the figure itself: %v", err)
	}
	// The fallback survives the plan's JSON.
	b, _ := json.Marshal(validation.Validation{Figure: "exact", Fallback: "estimate", Op: "<", Value: 1, HasValue: true})
	var back validation.Validation
	if err := json.Unmarshal(b, &back); err != nil || back.Fallback != "estimate" || !strings.Contains(string(b), `"fallback":"estimate"`) {
		t.Errorf("round trip %s -> %+v (%v)", b, back, err)
	}
}

// settledSequence is a sequence whose figure "f" is settled (read from the index itself).
type settledSequence struct{ sequence }

func (*settledSequence) Settled(figure string) bool { return figure == "f" }

// TestAwaitAfterJudgesTheStepsReading: the first try judges the step's own reading after
// where it holds the figure and the figure needs no wait; the tries after it, a figure the
// step did not record, a figure that waits for statistics and a NaN record measure.
func TestAwaitAfterJudgesTheStepsReading(t *testing.T) {
	ctx := context.Background()
	v := validation.Validation{Figure: "f", Op: "==", HasValue: true, Attempts: 3}
	waits := v
	waits.Wait = time.Hour // a measurement would time the test out
	for _, tc := range []struct {
		name      string
		m         interface{ Measured() int }
		v         validation.Validation
		after     map[string]float64
		passed    bool
		tries     int
		measured  int
		wantValue float64
	}{
		{"met by the record", &counting{&sequence{values: []float64{9}}}, v, map[string]float64{"f": 0}, true, 1, 0, 0},
		{"settled figure skips the wait", &counting{&settledSequence{sequence{values: []float64{9}}}}, waits, map[string]float64{"f": 0}, true, 1, 0, 0},
		{"missed by the record, met by the next try", &counting{&sequence{values: []float64{0}}}, v, map[string]float64{"f": 4}, true, 2, 1, 0},
		{"missed throughout", &counting{&sequence{values: []float64{4}}}, v, map[string]float64{"f": 4}, false, 3, 2, 4},
		{"figure not recorded", &counting{&sequence{values: []float64{0}}}, v, map[string]float64{"g": 0}, true, 1, 1, 0},
		{"no record", &counting{&sequence{values: []float64{0}}}, v, nil, true, 1, 1, 0},
		{"unknowable in the record", &counting{&sequence{values: []float64{0}}}, v, map[string]float64{"f": math.NaN()}, true, 1, 1, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := tc.m.(strategy.Measurer)
			rec := validation.AwaitAfter(ctx, m, nil, catalog.Index{}, tc.v, nil, tc.after)
			if rec.Passed != tc.passed || rec.Tries != tc.tries || rec.Measured == nil || *rec.Measured != tc.wantValue {
				t.Errorf("record %+v (%s), want passed %t after %d tries at %v", rec.Judge, rec.Failure(), tc.passed, tc.tries, tc.wantValue)
			}
			if got := tc.m.Measured(); got != tc.measured {
				t.Errorf("measured %d times, want %d", got, tc.measured)
			}
		})
	}
	// A figure that waits for statistics is measured after the wait, not taken from the record.
	ctxDone, cancel := context.WithCancel(ctx)
	cancel()
	rec := validation.AwaitAfter(ctxDone, &sequence{values: []float64{0}}, nil, catalog.Index{}, waits, nil, map[string]float64{"f": 0})
	if rec.Passed || !strings.Contains(rec.Error, "context canceled") {
		t.Errorf("unsettled figure with a wait: %+v, want the wait (cancelled here) before a measurement", rec.Judge)
	}
}

// counting counts the measurements of the measurer it wraps, keeping its Settled answer.
type counting struct{ strategy.Measurer }

func (c *counting) Measured() int {
	switch m := c.Measurer.(type) {
	case *sequence:
		return m.n
	case *settledSequence:
		return m.n
	}
	return -1
}

// TestBeforeFactor: a step that took its figure below the value before it times the factor
// passes though the absolute bound is missed (rows keep dying on a busy table); without a
// value before, the absolute bound alone judges; a step that did too little fails.
func TestBeforeFactor(t *testing.T) {
	ctx := context.Background()
	v := validation.Validation{Figure: "f", Op: "<", Value: 1000, HasValue: true, BeforeFactor: 0.5, Attempts: 1}
	if err := v.Check(); err != nil {
		t.Fatalf("check: %v", err)
	}
	for _, tc := range []struct {
		name   string
		got    float64
		before map[string]float64
		passed bool
		from   string
		bound  float64
	}{
		{"absolute bound met", 900, map[string]float64{"f": 15000}, true, "value", 1000},
		{"halved, absolute missed", 3949, map[string]float64{"f": 15842}, true, "before", 7921},
		{"too little removed", 9000, map[string]float64{"f": 15842}, false, "before", 7921},
		{"nothing known before", 3949, nil, false, "value", 1000},
		{"before unknowable", 3949, map[string]float64{"f": math.NaN()}, false, "value", 1000},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := validation.AwaitAfter(ctx, &sequence{values: []float64{tc.got}}, nil, catalog.Index{}, v, tc.before, nil)
			if rec.Passed != tc.passed || rec.BoundFrom != tc.from || rec.Bound == nil || *rec.Bound != tc.bound {
				t.Errorf("record %+v (%s), want passed %t against %s bound %g", rec.Judge, rec.Failure(), tc.passed, tc.from, tc.bound)
			}
		})
	}
	if rec := validation.Once(ctx, &sequence{values: []float64{3949}}, nil, catalog.Index{}, v); rec.Passed {
		t.Errorf("the already-healthy check judged %+v as met; it has no value before and must hold to value", rec.Judge)
	}
	for _, bad := range []validation.Validation{
		{Figure: "f", Op: "<", BeforeFactor: 0.5},
		{Figure: "f", Op: "==", Value: 1, HasValue: true, BeforeFactor: 0.5},
		{Figure: "f", Op: "<", Value: 1, HasValue: true, BeforeFactor: 0.5, AsBuiltFactor: 1},
		{Figure: "f", Op: "<", Value: 1, HasValue: true, BeforeFactor: math.Inf(1)},
	} {
		if err := bad.Check(); err == nil || !strings.Contains(err.Error(), "before_factor") && !strings.Contains(err.Error(), "value") {
			t.Errorf("Check(%+v) = %v, want an error naming before_factor or value", bad, err)
		}
	}
	b, err := json.Marshal(v)
	var back validation.Validation
	if err != nil || json.Unmarshal(b, &back) != nil || back.BeforeFactor != 0.5 {
		t.Errorf("round trip %s -> %+v (%v)", b, back, err)
	}
}
