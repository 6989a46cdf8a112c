package strategy

import (
	"fmt"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"
)

// Type is the type of a parameter's value, as a runbook writes it.
type Type string

// Parameter types.
const (
	TypeInt        Type = "integer"    // a whole number
	TypeNumber     Type = "number"     // any number
	TypeBool       Type = "boolean"    // true or false
	TypeString     Type = "string"     // any text
	TypeEnum       Type = "enum"       // one of Param.Enum
	TypeDuration   Type = "duration"   // 30s, 5m
	TypeSize       Type = "size"       // 512MB, 1GB, or bytes
	TypeFigures    Type = "figures"    // a list of figure names, checked against the Measurer's at load
	TypeStatements Type = "statements" // a list of {sql, args}: runbook SQL with labels bound as parameters
	TypeQuery      Type = "query"      // {sql, args, min}: one runbook query returning one value
)

// Param describes one parameter of a strategy. The runbook parser, the JSON schema
// (docs/runbook.schema.json) and the strategy table of docs/runbook.md all come from it.
type Param struct {
	Name string
	Type Type
	Doc  string
	// Default is the value when the parameter is absent, written as in a runbook ("1GB",
	// "true", "0.95"); empty when there is none or it depends on the index (Doc says so).
	Default string
	// Min and Max bound integers, numbers, durations and sizes, written as in a runbook.
	Min, Max string
	Enum     []string // the values of a TypeEnum
	Required bool
}

// Capability is something a strategy does that the engine treats specially.
type Capability string

// Capabilities.
const (
	// RunsUserSQL: the parameters are SQL, so they may come from the runbook file only, never
	// from an API request.
	RunsUserSQL Capability = "runs_user_sql"
	// RecordsReadingAfter: Outcome.After is one reading of the repaired index through
	// Env.Measure, taken when the work is done, so it is the reading a validation right
	// after the step would take; the engine validates on it rather than read a large
	// index's pages once more.
	RecordsReadingAfter Capability = "records_reading_after"
)

// Spec is what a strategy is, as data: its fixed name, what it does, its parameters, its
// capabilities and the figures it records when a step names none.
type Spec struct {
	Name        string
	Description string
	// Methods the strategy applies to ("hnsw", "ivfflat"); empty means both.
	Methods      []string
	Params       []Param
	Capabilities []Capability
	// Figures recorded before and after when the step's figures parameter is absent, by index
	// method; the key "" applies to every method. Each must be a Measurer figure (checked when
	// a runbook is loaded).
	Figures map[string][]string
}

// Has says whether the strategy has capability c.
func (s Spec) Has(c Capability) bool { return slices.Contains(s.Capabilities, c) }

// DefaultFigures returns the figures recorded for an index of method when the step names none.
func (s Spec) DefaultFigures(method string) []string {
	return append(append([]string{}, s.Figures[""]...), s.Figures[method]...)
}

// AllDefaultFigures returns every figure named by the defaults, sorted, for load-time checks.
func (s Spec) AllDefaultFigures() []string {
	var out []string
	for _, fs := range s.Figures {
		for _, f := range fs {
			if !slices.Contains(out, f) {
				out = append(out, f)
			}
		}
	}
	sort.Strings(out)
	return out
}

// Param returns the parameter called name.
func (s Spec) Param(name string) (Param, bool) {
	for _, p := range s.Params {
		if p.Name == name {
			return p, true
		}
	}
	return Param{}, false
}

// figuresParam is the parameter every strategy takes to choose which figures are recorded
// before and after it runs.
var figuresParam = Param{Name: "figures", Type: TypeFigures,
	Doc: "Figures recorded before and after the step, for the history; default: the strategy's own."}

// Values are a step's parameters after its Spec checked them: every name is known, every
// value has its type and lies within its bounds, and absent ones hold their default.
type Values struct {
	spec Spec
	v    map[string]any
}

// decode checks p against spec and returns the values. Its errors name the parameter.
func decode(spec Spec, p Params) (Values, error) {
	vals := Values{spec: spec, v: map[string]any{}}
	var unknown []string
	for k := range p {
		if _, ok := spec.Param(k); !ok {
			unknown = append(unknown, k)
		}
	}
	if len(unknown) > 0 {
		sort.Strings(unknown)
		known := make([]string, 0, len(spec.Params))
		for _, q := range spec.Params {
			known = append(known, q.Name)
		}
		sort.Strings(known)
		return vals, fmt.Errorf("parameter %q: unknown (known: %s)", unknown[0], strings.Join(known, ", "))
	}
	for _, q := range spec.Params {
		raw, set := p[q.Name]
		if !set || raw == nil {
			if q.Required {
				return vals, fmt.Errorf("parameter %q: required", q.Name)
			}
			if q.Default == "" {
				continue
			}
			raw = q.Default
		}
		v, err := q.read(raw)
		if err != nil {
			return vals, err
		}
		vals.v[q.Name] = v
	}
	return vals, nil
}

// read converts a raw runbook value to the parameter's Go type and checks its bounds.
func (q Param) read(raw any) (any, error) {
	one := Params{q.Name: raw}
	switch q.Type {
	case TypeInt:
		lo, hi := boundInt(q.Min, -1<<31), boundInt(q.Max, 1<<31-1)
		return intParam(one, q.Name, 0, lo, hi)
	case TypeNumber:
		lo, hi := boundFloat(q.Min, -1e300), boundFloat(q.Max, 1e300)
		return floatParam(one, q.Name, 0, lo, hi)
	case TypeBool:
		return boolParam(one, q.Name, false)
	case TypeString:
		return stringParam(one, q.Name, "")
	case TypeEnum:
		s, err := stringParam(one, q.Name, "")
		if err != nil {
			return nil, err
		}
		if !slices.Contains(q.Enum, s) {
			return nil, fmt.Errorf("parameter %q: %q is not one of %s", q.Name, s, strings.Join(q.Enum, ", "))
		}
		return s, nil
	case TypeDuration:
		lo, hi := boundDuration(q.Min, 0), boundDuration(q.Max, 1<<62)
		return durationParam(one, q.Name, 0, lo, hi)
	case TypeSize:
		lo, hi := boundSize(q.Min, 0), boundSize(q.Max, 1<<62)
		return sizeParam(one, q.Name, 0, lo, hi)
	case TypeFigures:
		list, err := stringsParam(one, q.Name)
		if err != nil {
			return nil, err
		}
		for i, f := range list {
			if strings.TrimSpace(f) == "" {
				return nil, fmt.Errorf("parameter %q[%d]: empty figure name", q.Name, i)
			}
		}
		return list, nil
	case TypeStatements:
		if _, ok := raw.([]any); !ok {
			return nil, fmt.Errorf("parameter %q: want a list of {sql, args}, got %T", q.Name, raw)
		}
		return raw, nil
	case TypeQuery:
		if _, ok := raw.(map[string]any); !ok {
			return nil, fmt.Errorf("parameter %q: want a map with sql and args, got %T", q.Name, raw)
		}
		return raw, nil
	}
	return nil, fmt.Errorf("parameter %q: type %q has no reader", q.Name, q.Type)
}

// The bounds of a Spec are constants of this package: a bad one is a programming error that
// TestSpecsAreWellFormed catches, so here they fall back to the type's limits.
func boundInt(s string, def int) int {
	if n, err := strconv.Atoi(s); err == nil {
		return n
	}
	return def
}

func boundFloat(s string, def float64) float64 {
	if f, err := strconv.ParseFloat(s, 64); err == nil {
		return f
	}
	return def
}

func boundDuration(s string, def time.Duration) time.Duration {
	if d, err := time.ParseDuration(s); err == nil {
		return d
	}
	return def
}

func boundSize(s string, def int64) int64 {
	if n, err := ParseSize(s); err == nil && s != "" {
		return n
	}
	return def
}

// CheckSpec reports what is wrong with a spec's own data (bounds and defaults that do not
// parse, a default outside its bounds), so a strategy's table cannot drift into nonsense.
func CheckSpec(s Spec) error {
	if s.Name == "" || s.Description == "" {
		return fmt.Errorf("strategy %q: name and description are required", s.Name)
	}
	seen := map[string]bool{}
	for _, q := range s.Params {
		if seen[q.Name] {
			return fmt.Errorf("strategy %s: parameter %q listed twice", s.Name, q.Name)
		}
		seen[q.Name] = true
		for _, b := range []string{q.Min, q.Max} {
			if b == "" {
				continue
			}
			if _, err := (Param{Name: q.Name, Type: q.Type}).read(b); err != nil {
				return fmt.Errorf("strategy %s: bound %q: %w", s.Name, b, err)
			}
		}
		if q.Default != "" {
			if _, err := q.read(q.Default); err != nil {
				return fmt.Errorf("strategy %s: default: %w", s.Name, err)
			}
		}
	}
	return nil
}

// Int returns an integer parameter (0 when absent without default).
func (v Values) Int(name string) int { n, _ := v.v[name].(int); return n }

// Float returns a number parameter.
func (v Values) Float(name string) float64 { f, _ := v.v[name].(float64); return f }

// Bool returns a boolean parameter.
func (v Values) Bool(name string) bool { b, _ := v.v[name].(bool); return b }

// String returns a string or enum parameter.
func (v Values) String(name string) string { s, _ := v.v[name].(string); return s }

// Duration returns a duration parameter.
func (v Values) Duration(name string) time.Duration { d, _ := v.v[name].(time.Duration); return d }

// Size returns a size parameter in bytes.
func (v Values) Size(name string) int64 { n, _ := v.v[name].(int64); return n }

// Strings returns a figures parameter; nil when absent.
func (v Values) Strings(name string) []string { s, _ := v.v[name].([]string); return s }

// Raw returns a statements or query parameter as the runbook wrote it; nil when absent.
func (v Values) Raw(name string) any { return v.v[name] }

// Figures returns the figures parameter every strategy takes; nil when absent.
func (v Values) Figures() []string { return v.Strings(figuresParam.Name) }
