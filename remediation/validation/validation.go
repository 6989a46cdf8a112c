// Package validation holds the one bound a re-measured figure must meet: the type runbook
// steps, manual repairs and the engine's "already healthy" check share, its operators, its
// comparison, and the re-measure loop that judges a step after it ran.
package validation

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

// Ops are the comparison operators a validation may use, in the order messages list them.
var Ops = []string{"<", "<=", ">", ">=", "==", "!="}

// Validation is the bound a figure must meet. The bound is Value, or, when AsBuiltFactor is
// set and the Measurer knows the index's as-built figure, that figure times AsBuiltFactor;
// without an as-built figure it falls back to Value when HasValue, and is otherwise unmet.
//
// BeforeFactor, when set, also accepts a step that took the figure to its value before the
// step times BeforeFactor: a step that removed three quarters of an index's dead rows has done
// its work even when the application's writes leave more than Value by the time it is judged.
// It needs Value too, the bound where no before-step value is known (the engine's "already
// healthy" check, a figure that could not be read before).
//
// Fallback, when set, is the figure judged instead where Figure cannot be known on the target
// (the Measurer returns NaN: structure and dead heap TIDs for a role that may not read pages and
// heap, as on managed PostgreSQL), against the same bound. Where Figure can be measured it is
// always the one judged, so a target that has the exact figure is held to it.
//
// The JSON form is what repairs store in their plan and what the API takes; its field names
// never change (value is left out when the validation has none).
type Validation struct {
	Figure        string
	Fallback      string // "" for none
	Op            string
	Value         float64
	HasValue      bool // Value was given
	AsBuiltFactor float64
	BeforeFactor  float64
	Wait          time.Duration
	Attempts      int
}

type wire struct {
	Figure        string        `json:"figure"`
	Fallback      string        `json:"fallback,omitempty"`
	Op            string        `json:"op"`
	Value         *float64      `json:"value,omitempty"`
	AsBuiltFactor float64       `json:"as_built_factor,omitempty"`
	BeforeFactor  float64       `json:"before_factor,omitempty"`
	Wait          time.Duration `json:"wait"`
	Attempts      int           `json:"attempts"`
}

// MarshalJSON implements json.Marshaler.
func (v Validation) MarshalJSON() ([]byte, error) {
	w := wire{Figure: v.Figure, Fallback: v.Fallback, Op: v.Op, AsBuiltFactor: v.AsBuiltFactor, BeforeFactor: v.BeforeFactor, Wait: v.Wait, Attempts: v.Attempts}
	if v.HasValue {
		w.Value = &v.Value
	}
	return json.Marshal(w)
}

// UnmarshalJSON implements json.Unmarshaler.
func (v *Validation) UnmarshalJSON(b []byte) error {
	var w wire
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	*v = Validation{Figure: w.Figure, Fallback: w.Fallback, Op: w.Op, AsBuiltFactor: w.AsBuiltFactor, BeforeFactor: w.BeforeFactor, Wait: w.Wait, Attempts: w.Attempts}
	if w.Value != nil {
		v.Value, v.HasValue = *w.Value, true
	}
	return nil
}

// Check says what is wrong with v's form, naming the field; nil when it can be judged.
func (v Validation) Check() error {
	switch {
	case v.Figure == "":
		return fmt.Errorf("figure: missing")
	case v.Fallback == v.Figure:
		return fmt.Errorf("fallback: %q is the figure itself; name another figure or leave it out", v.Fallback)
	case !slices.Contains(Ops, v.Op):
		return fmt.Errorf("op: %q is not one of %s", v.Op, strings.Join(Ops, " "))
	case v.AsBuiltFactor < 0 || math.IsNaN(v.AsBuiltFactor) || math.IsInf(v.AsBuiltFactor, 0):
		return fmt.Errorf("as_built_factor: %v must be a positive number", v.AsBuiltFactor)
	case v.AsBuiltFactor == 0 && !v.HasValue:
		return fmt.Errorf("value: missing; the bound the figure is compared with (or as_built_factor)")
	case v.BeforeFactor < 0 || math.IsNaN(v.BeforeFactor) || math.IsInf(v.BeforeFactor, 0):
		return fmt.Errorf("before_factor: %v must be a positive number", v.BeforeFactor)
	case v.BeforeFactor > 0 && !v.HasValue:
		return fmt.Errorf("value: missing; before_factor needs it as the bound where no value before the step is known")
	case v.BeforeFactor > 0 && v.AsBuiltFactor > 0:
		return fmt.Errorf("before_factor: cannot be combined with as_built_factor")
	case v.BeforeFactor > 0 && (v.Op == "==" || v.Op == "!="):
		return fmt.Errorf("before_factor: needs an ordering op (< <= > >=), not %q", v.Op)
	case v.Attempts < 0:
		return fmt.Errorf("attempts: %d must not be negative", v.Attempts)
	}
	return nil
}

// Compare reports whether got op bound holds. NaN (a figure that could not be measured
// exactly) meets no bound, and an unknown operator none either.
func Compare(got float64, op string, bound float64) bool {
	if math.IsNaN(got) || math.IsNaN(bound) {
		return false
	}
	switch op {
	case "<":
		return got < bound
	case "<=":
		return got <= bound
	case ">":
		return got > bound
	case ">=":
		return got >= bound
	case "==":
		return got == bound
	case "!=":
		return got != bound
	}
	return false
}

// BoundFor returns the value v compares with, given the index's as-built figure (ok false when
// none is recorded), and where it came from: "as_built", "value", or "" when v has no bound.
func (v Validation) BoundFor(asBuilt float64, ok bool) (float64, string) {
	if v.AsBuiltFactor > 0 && ok && !math.IsNaN(asBuilt) {
		return asBuilt * v.AsBuiltFactor, "as_built"
	}
	if v.HasValue {
		return v.Value, "value"
	}
	return math.NaN(), ""
}

func (v Validation) String() string {
	fig := v.Figure
	if v.Fallback != "" {
		fig += " (where unknown: " + v.Fallback + ")"
	}
	var parts []string
	if v.AsBuiltFactor > 0 {
		parts = append(parts, fmt.Sprintf("%s %s as-built × %g", fig, v.Op, v.AsBuiltFactor))
		if v.HasValue {
			parts = append(parts, fmt.Sprintf("(else %g)", v.Value))
		}
		return strings.Join(parts, " ")
	}
	if v.BeforeFactor > 0 {
		return fmt.Sprintf("%s %s %g or %s before × %g", fig, v.Op, v.Value, v.Op, v.BeforeFactor)
	}
	return fmt.Sprintf("%s %s %g", fig, v.Op, v.Value)
}

// Judge is one comparison of a measured value, as history records it.
type Judge struct {
	// MeasuredFigure is the fallback figure when it was measured instead of the figure.
	MeasuredFigure string   `json:"measured_figure,omitempty"`
	Measured       *float64 `json:"measured,omitempty"`
	Bound          *float64 `json:"bound,omitempty"`
	// BoundFrom is "as_built", "value" or "before": where the bound came from.
	BoundFrom string `json:"bound_from,omitempty"`
	Tries     int    `json:"tries"`
	Passed    bool   `json:"passed"`
	Error     string `json:"error,omitempty"`
}

// Record is a validation with what measuring it found, kept in repair_steps.validation.
type Record struct {
	Validation
	Judge
}

// MarshalJSON writes the validation and what was found side by side, one flat object.
func (r Record) MarshalJSON() ([]byte, error) {
	w := wire{Figure: r.Figure, Fallback: r.Fallback, Op: r.Op, AsBuiltFactor: r.AsBuiltFactor, BeforeFactor: r.BeforeFactor, Wait: r.Wait, Attempts: r.Attempts}
	if r.HasValue {
		w.Value = &r.Value
	}
	return json.Marshal(struct {
		wire
		Judge
	}{w, r.Judge})
}

// Figured is the figure the record judged: the figure, or its fallback where the figure
// cannot be known on the target.
func (r *Record) Figured() string {
	if r.MeasuredFigure != "" {
		return r.MeasuredFigure
	}
	return r.Figure
}

// Failure says in one sentence why the record did not pass; "" when it passed.
func (r *Record) Failure() string {
	switch {
	case r.Passed:
		return ""
	case r.Error != "":
		return r.Error
	case r.Measured != nil && r.Bound != nil:
		return fmt.Sprintf("validation: %s = %g does not meet %s %g after %d tries", r.Figured(), *r.Measured, r.Op, *r.Bound, r.Tries)
	}
	return "validation: not met"
}

// Estimator is a Measurer that names, for a figure it cannot know on a target (NaN), the
// documented estimate that stands in for it (exporter.Measurer.EstimateOf), "" for none.
type Estimator interface {
	EstimateOf(figure string) string
}

// fallbackOf is the figure judged where v's figure cannot be known: v's own fallback, else
// the Measurer's documented estimate of the figure, else "".
func fallbackOf(m strategy.Measurer, v Validation) string {
	if v.Fallback != "" {
		return v.Fallback
	}
	if e, ok := m.(Estimator); ok {
		return e.EstimateOf(v.Figure)
	}
	return ""
}

// Measure measures v's figure on ix, or its fallback where the figure cannot be known on the
// target (NaN), and returns which of the two it measured. The fallback is v's own, else the
// Measurer's documented estimate of the figure (Estimator), so a role that may not read pages
// or heap is judged on the estimate rather than failing the step. Everything that reads a
// validation's figure (before a step, after it, the engine's checks) measures through it, so
// all of them read the same figure.
func Measure(ctx context.Context, m strategy.Measurer, pool *pgxpool.Pool, ix catalog.Index, v Validation) (string, float64, error) {
	got, err := m.Measure(ctx, pool, ix, v.Figure)
	fallback := fallbackOf(m, v)
	if err != nil || !math.IsNaN(got) || fallback == "" {
		return v.Figure, got, err
	}
	got, err = m.Measure(ctx, pool, ix, fallback)
	if err != nil {
		return fallback, got, fmt.Errorf("%s cannot be known on this target; fallback %s: %w", v.Figure, fallback, err)
	}
	return fallback, got, nil
}

// Once measures v's figure on ix once and judges it, without waiting: the engine's check
// that an index is already healthy, and one round of Await.
func Once(ctx context.Context, m strategy.Measurer, pool *pgxpool.Pool, ix catalog.Index, v Validation) *Record {
	return once(ctx, m, pool, ix, v, nil)
}

// once is Once with the figures as they were before the step (nil when unknown).
func once(ctx context.Context, m strategy.Measurer, pool *pgxpool.Pool, ix catalog.Index, v Validation, before map[string]float64) *Record {
	fig, got, err := Measure(ctx, m, pool, ix, v)
	return judge(ctx, m, pool, ix, v, fig, got, err, before)
}

// judge is the record of v on a value got of figure fig (v's figure or its fallback), or on
// the error measuring it; before holds the figures as they were before the step (nil when
// unknown), for a BeforeFactor.
func judge(ctx context.Context, m strategy.Measurer, pool *pgxpool.Pool, ix catalog.Index, v Validation, fig string, got float64, err error, before map[string]float64) *Record {
	rec := &Record{Validation: v}
	rec.Tries = 1
	if fig != v.Figure {
		rec.MeasuredFigure = fig
	}
	if err != nil {
		rec.Error = fmt.Sprintf("validation: measure %s: %v", v.Figure, err)
		return rec
	}
	if math.IsNaN(got) { // not kept as the value: NaN has no JSON form
		if fig == v.Figure {
			rec.Error = fmt.Sprintf("validation: %s cannot be known on this target (no page or heap access) and the validation names no fallback figure (it has no documented estimate)", v.Figure)
		} else {
			rec.Error = fmt.Sprintf("validation: neither %s nor its fallback %s can be known on this target", v.Figure, fig)
		}
		return rec
	}
	rec.Measured = &got
	asBuilt, ok := 0.0, false
	if v.AsBuiltFactor > 0 {
		val, found, err := m.AsBuilt(ctx, pool, ix, fig)
		if err != nil {
			rec.Error = fmt.Sprintf("validation: as-built %s: %v", fig, err)
			return rec
		}
		asBuilt, ok = val, found
	}
	bound, from := v.BoundFor(asBuilt, ok)
	if from == "" {
		rec.Error = fmt.Sprintf("validation: %s has no as-built figure recorded for %s and the step gives no value to fall back to", fig, ix)
		return rec
	}
	rec.Bound, rec.BoundFrom = &bound, from
	rec.Passed = Compare(got, v.Op, bound)
	if b, ok := before[fig]; ok && v.BeforeFactor > 0 && !rec.Passed && !math.IsNaN(b) {
		relative := b * v.BeforeFactor
		rec.Bound, rec.BoundFrom = &relative, "before"
		rec.Passed = Compare(got, v.Op, relative)
	}
	return rec
}

// Await re-measures v's figure after a step, up to Attempts times Wait apart, and passes on
// the first value within bounds. The index is looked up again before each measurement: a
// rebuild gives it a new relfilenode, and REINDEX CONCURRENTLY even a new OID (a nil pool,
// for measurers that need none, skips the lookup).
func Await(ctx context.Context, m strategy.Measurer, pool *pgxpool.Pool, ix catalog.Index, v Validation) *Record {
	return await(ctx, m, pool, ix, v, nil, 1, &Record{Validation: v})
}

// AwaitAfter is Await after a step whose own reading of the repaired index when its work was
// done is after (nil when the step took none). Where after holds v's figure and the figure
// needs no wait (v has none, or the Measurer says it is settled: read from the index itself),
// the first try judges that value rather than read the index again (on a large index the
// pages take seconds to minutes to read); the tries after it measure, as Await's do. before
// holds the figures as they were before the step (nil when unknown), for v's BeforeFactor.
func AwaitAfter(ctx context.Context, m strategy.Measurer, pool *pgxpool.Pool, ix catalog.Index, v Validation, before, after map[string]float64) *Record {
	got, ok := after[v.Figure]
	if !ok || math.IsNaN(got) {
		return await(ctx, m, pool, ix, v, before, 1, &Record{Validation: v})
	}
	if v.Wait > 0 && !m.Settled(v.Figure) {
		return await(ctx, m, pool, ix, v, before, 1, &Record{Validation: v})
	}
	rec := judge(ctx, m, pool, ix, v, v.Figure, got, nil, before)
	if rec.Passed || ctx.Err() != nil || max(v.Attempts, 1) == 1 {
		return rec
	}
	return await(ctx, m, pool, ix, v, before, 2, rec)
}

// await makes tries first..Attempts of Await, last being the record of the try before.
func await(ctx context.Context, m strategy.Measurer, pool *pgxpool.Pool, ix catalog.Index, v Validation, before map[string]float64, first int, last *Record) *Record {
	attempts := max(v.Attempts, 1)
	for try := first; try <= attempts; try++ {
		if v.Wait > 0 {
			select {
			case <-ctx.Done():
				last.Error = "validation: " + context.Cause(ctx).Error()
				return last
			case <-time.After(v.Wait):
			}
		}
		if pool != nil {
			if fresh, err := catalog.Resolve(ctx, pool, ix.Schema, ix.Name); err == nil {
				ix = fresh
			}
		}
		rec := once(ctx, m, pool, ix, v, before)
		rec.Tries = try
		if rec.Measured == nil && last.Measured != nil {
			// Keep the last value measured; say why this round measured none.
			rec.MeasuredFigure, rec.Measured, rec.Bound, rec.BoundFrom = last.MeasuredFigure, last.Measured, last.Bound, last.BoundFrom
		}
		last = rec
		if rec.Passed || ctx.Err() != nil {
			return rec
		}
	}
	return last
}

// Moved says whether a step changed its figure: false when before and after are the same
// value (a repair that could not help), with a tolerance of a billionth for ratios that
// round differently.
func Moved(before, after float64) bool {
	if math.IsNaN(before) || math.IsNaN(after) {
		return true // unknown: never call a step futile on a figure that was not measured
	}
	return math.Abs(after-before) > 1e-9*math.Max(1, math.Abs(before))
}
