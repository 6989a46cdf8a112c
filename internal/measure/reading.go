package measure

import (
	"cmp"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"time"
)

// Reading is one measurement of one index: for each figure asked for (and the others its
// sources yielded in the same pass), the value or the reason there is none, with where and
// when it was read. The engine takes a reading before a repair step and one after it; a
// reading a moment old stands for a new one of the same state of the index, so that a large
// index's pages are read once per side of a step, not once per figure.
type Reading map[string]Value

// Value is one figure of a Reading.
type Value struct {
	V   float64
	Err error // why the figure has no value; V is then meaningless
	// Source is what the figure was read from: "structure" (the index pages), "probe" (the
	// recall probe's searches), "filtered" (the declared filtered queries), "stats" (the
	// cumulative statistics views) or "catalog".
	Source string
	// Server is "standby" when the figure was read on the target's hot standby, else
	// "primary".
	Server string
	At     time.Time // when the source's read began
}

// Get returns figure's value, or the error that kept it from being read; a figure the
// reading does not hold is an error that says so.
func (r Reading) Get(figure string) (float64, error) {
	v, ok := r[figure]
	if !ok {
		return 0, fmt.Errorf("figure %s was not read", figure)
	}
	return v.V, v.Err
}

// Has says whether the reading holds a value (not an error) for figure.
func (r Reading) Has(figure string) bool {
	v, ok := r[figure]
	return ok && v.Err == nil
}

// Names returns the figures of the reading, sorted.
func (r Reading) Names() []string { return slices.Sorted(maps.Keys(r)) }

// With returns a reading holding r's figures and those of more that r has no value for; r
// is not changed.
func (r Reading) With(more Reading) Reading {
	out := maps.Clone(r)
	if out == nil {
		out = Reading{}
	}
	for name, v := range more {
		if !r.Has(name) {
			out[name] = v
		}
	}
	return out
}

// LogValue implements slog.LogValuer: a reading logs as one group of its figures, each as
// its value, or its error, with the source and server it was read from.
func (r Reading) LogValue() slog.Value {
	attrs := make([]slog.Attr, 0, len(r))
	for _, name := range r.Names() {
		v := r[name]
		s := fmt.Sprintf("%g", v.V)
		if v.Err != nil {
			s = "error: " + v.Err.Error()
		}
		if v.Source != "" {
			s += " (" + v.Source + " on " + cmp.Or(v.Server, "primary") + ")"
		}
		attrs = append(attrs, slog.String(name, s))
	}
	return slog.GroupValue(attrs...)
}
