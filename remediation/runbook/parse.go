package runbook

import (
	"errors"
	"fmt"
	"log/slog"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/matcher/compat"
	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/vectorheal/vectorheal/internal/strictyaml"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/remediation/validation"
)

// The file as written. Pointers tell a field left out (take the default) from one set to its
// zero value.
type fileYAML struct {
	Defaults defaultsYAML `yaml:"defaults"`
	Entries  []entryYAML  `yaml:"entries"`
}

type defaultsYAML struct {
	Priority  *int             `yaml:"priority"`
	Cooldown  *time.Duration   `yaml:"cooldown"`
	Timeout   *time.Duration   `yaml:"timeout"`
	Approval  *string          `yaml:"approval"`
	DryRun    *bool            `yaml:"dry_run"`
	OnFailure *string          `yaml:"on_failure"`
	OnSuccess *string          `yaml:"on_success"`
	Validate  validateDefaults `yaml:"validate"`
	Windows   []windowYAML     `yaml:"windows"`
	// ApproveBuildsOver: see BuildApproval.
	ApproveBuildsOver *buildApprovalYAML `yaml:"approve_builds_over"`
}

type buildApprovalYAML struct {
	Size     *string        `yaml:"size"`
	Duration *time.Duration `yaml:"duration"`
}

type validateDefaults struct {
	Wait     *time.Duration `yaml:"wait"`
	Attempts *int           `yaml:"attempts"`
}

type entryYAML struct {
	Name     string         `yaml:"name"`
	Matchers []string       `yaml:"matchers"`
	Priority *int           `yaml:"priority"`
	Steps    []stepYAML     `yaml:"steps"`
	Cooldown *time.Duration `yaml:"cooldown"`
	Timeout  *time.Duration `yaml:"timeout"`
	Approval *string        `yaml:"approval"`
	DryRun   *bool          `yaml:"dry_run"`
	Continue bool           `yaml:"continue"`
	Windows  *[]windowYAML  `yaml:"windows"`
	// ApproveBuildsOver overrides the defaults' fields it sets.
	ApproveBuildsOver *buildApprovalYAML `yaml:"approve_builds_over"`
}

type stepYAML struct {
	Strategy  string          `yaml:"strategy"`
	Params    strategy.Params `yaml:"params"`
	Validate  *validateYAML   `yaml:"validate"`
	OnFailure *string         `yaml:"on_failure"`
	OnSuccess *string         `yaml:"on_success"`
	Approval  *string         `yaml:"approval"`
}

type validateYAML struct {
	Figure        string         `yaml:"figure"`
	Fallback      string         `yaml:"fallback"`
	Op            string         `yaml:"op"`
	Value         *float64       `yaml:"value"`
	AsBuiltFactor *float64       `yaml:"as_built_factor"`
	BeforeFactor  *float64       `yaml:"before_factor"`
	Wait          *time.Duration `yaml:"wait"`
	Attempts      *int           `yaml:"attempts"`
}

type windowYAML struct {
	Days     []string `yaml:"days"`
	Start    string   `yaml:"start"`
	End      string   `yaml:"end"`
	TimeZone string   `yaml:"time_zone"`
}

// checker collects every problem of a file, each with its line.
type checker struct {
	file    string
	pos     strictyaml.Positions
	reg     *strategy.Registry
	figures map[string]bool // nil: figures are not checked
	errs    []*strictyaml.Error
	// decoded holds the paths whose value could not be decoded: a check of such a value
	// would only repeat the problem with the zero value it was left at.
	decoded []string
}

func (c *checker) fail(path, format string, args ...any) {
	for _, p := range c.decoded {
		if path == p || strings.HasPrefix(path, p+".") || strings.HasPrefix(path, p+"[") {
			return
		}
	}
	c.errs = append(c.errs, strictyaml.Errorf(c.file, c.pos, path, format, args...))
}

// err joins every problem found, in the order of their lines.
func (c *checker) err() error {
	if len(c.errs) == 0 {
		return nil
	}
	slices.SortStableFunc(c.errs, func(a, b *strictyaml.Error) int { return a.Line - b.Line })
	errs := make([]error, len(c.errs))
	for i, e := range c.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

// Parse decodes a runbook strictly (unknown keys and wrong types are errors with file:line)
// and checks it: matchers parse with Alertmanager's parser, every strategy exists in reg and
// its parameters decode into the strategy's typed parameters, and every figure the file or a
// strategy's defaults name — validation figures, figures parameters — is one of figures (the
// exporter's Measurer). A nil reg or figures skips those checks, for tooling that has
// neither. Every problem found is returned, joined.
func Parse(file string, data []byte, reg *strategy.Registry, figures []string) (*Runbook, error) {
	var raw fileYAML
	pos, err := strictyaml.Decode(file, data, &raw)
	keyErrs, ok := strictyaml.KeyErrors(err)
	if !ok {
		return nil, err
	}
	// An unknown key or a wrong type leaves the rest of the file decoded: check it too, so
	// one mistake does not hide the others.
	c := &checker{file: file, pos: pos, reg: reg, errs: keyErrs}
	for _, e := range keyErrs {
		c.decoded = append(c.decoded, e.Path)
	}
	if figures != nil {
		c.figures = make(map[string]bool, len(figures))
		for _, f := range figures {
			c.figures[f] = true
		}
	}
	rb := &Runbook{File: file, Defaults: c.defaults(raw.Defaults)}
	if len(raw.Entries) == 0 {
		c.fail("entries", "no entries; a runbook needs at least one")
	}
	names := map[string]string{}
	for i, re := range raw.Entries {
		path := fmt.Sprintf("entries[%d]", i)
		e := c.entry(path, re, rb.Defaults)
		if e.Name != "" {
			if prev, dup := names[e.Name]; dup {
				c.fail(path+".name", "%q is already the name of %s", e.Name, prev)
			}
			names[e.Name] = path
		}
		rb.Entries = append(rb.Entries, e)
	}
	if err := c.err(); err != nil {
		return nil, err
	}
	return rb, nil
}

func (c *checker) defaults(d defaultsYAML) Defaults {
	out := builtinDefaults()
	if d.Priority != nil {
		out.Priority = c.priority("defaults.priority", *d.Priority)
	}
	if d.Cooldown != nil {
		out.Cooldown = c.nonNegative("defaults.cooldown", *d.Cooldown)
	}
	if d.Timeout != nil {
		out.Timeout = c.positive("defaults.timeout", *d.Timeout)
	}
	if d.Approval != nil {
		out.Approval = c.oneOf("defaults.approval", *d.Approval, ApprovalNone, ApprovalRequired)
	}
	if d.DryRun != nil {
		out.DryRun = *d.DryRun
	}
	if d.OnFailure != nil {
		out.OnFailure = c.oneOf("defaults.on_failure", *d.OnFailure, OnFailureEscalate, OnFailureRollback, OnFailureStop)
	}
	if d.OnSuccess != nil {
		out.OnSuccess = c.oneOf("defaults.on_success", *d.OnSuccess, OnSuccessDone, OnSuccessNext)
	}
	if d.Validate.Wait != nil {
		out.ValidateWait = c.nonNegative("defaults.validate.wait", *d.Validate.Wait)
	}
	if d.Validate.Attempts != nil {
		out.ValidateAttempts = c.attempts("defaults.validate.attempts", *d.Validate.Attempts)
	}
	out.Windows = c.windows("defaults.windows", d.Windows)
	out.ApproveBuildsOver = c.buildApproval("defaults.approve_builds_over", d.ApproveBuildsOver, out.ApproveBuildsOver)
	return out
}

// buildApproval is over with the fields ra sets (nil: none) replaced, each checked.
func (c *checker) buildApproval(path string, ra *buildApprovalYAML, over BuildApproval) BuildApproval {
	if ra == nil {
		return over
	}
	if ra.Size != nil {
		n, err := strategy.ParseSize(*ra.Size)
		if err != nil {
			c.fail(path+".size", "%v (0 for no size limit)", err)
		}
		over.Size = n
	}
	if ra.Duration != nil {
		over.Duration = c.nonNegative(path+".duration", *ra.Duration)
	}
	return over
}

func (c *checker) entry(path string, re entryYAML, d Defaults) *Entry {
	e := &Entry{Name: re.Name, Priority: d.Priority, Cooldown: d.Cooldown, Timeout: d.Timeout,
		Approval: d.Approval, DryRun: d.DryRun, Continue: re.Continue, Windows: d.Windows, Line: c.pos.Line(path)}
	e.ApproveBuildsOver = c.buildApproval(path+".approve_builds_over", re.ApproveBuildsOver, d.ApproveBuildsOver)
	if strings.TrimSpace(re.Name) == "" {
		c.fail(path+".name", "missing; every entry needs a name (it keys cooldowns and history)")
	}
	if len(re.Matchers) == 0 {
		c.fail(path+".matchers", `missing; at least one matcher such as 'alertname="PgvectorHNSWDeadTuples"' is needed`)
	}
	for j, s := range re.Matchers {
		ms, err := parseMatchers(s)
		if err != nil {
			c.fail(fmt.Sprintf("%s.matchers[%d]", path, j), "cannot parse %q: %v", s, err)
			continue
		}
		e.Matchers = append(e.Matchers, ms...)
	}
	if re.Priority != nil {
		e.Priority = c.priority(path+".priority", *re.Priority)
	}
	if re.Cooldown != nil {
		e.Cooldown = c.nonNegative(path+".cooldown", *re.Cooldown)
	}
	if re.Timeout != nil {
		e.Timeout = c.positive(path+".timeout", *re.Timeout)
	}
	if re.Approval != nil {
		e.Approval = c.oneOf(path+".approval", *re.Approval, ApprovalNone, ApprovalRequired)
	}
	if re.DryRun != nil {
		e.DryRun = *re.DryRun
	}
	if re.Windows != nil {
		e.Windows = c.windows(path+".windows", *re.Windows)
	}
	if len(re.Steps) == 0 {
		c.fail(path+".steps", "missing; an entry needs at least one step")
	}
	for j, rs := range re.Steps {
		e.Steps = append(e.Steps, c.step(fmt.Sprintf("%s.steps[%d]", path, j), rs, d))
	}
	return e
}

// parseMatchers parses one list item: a single matcher or several separated by commas, in
// the syntax Alertmanager accepts in routes (UTF-8 matchers, falling back to the classic one).
func parseMatchers(s string) (labels.Matchers, error) {
	ms, err := compat.FallbackMatchersParser(slog.New(slog.DiscardHandler))(s, "runbook")
	if err != nil {
		return nil, err
	}
	if len(ms) == 0 {
		return nil, errors.New("no matcher in it")
	}
	return ms, nil
}

func (c *checker) step(path string, rs stepYAML, d Defaults) Step {
	st := Step{Strategy: rs.Strategy, Params: rs.Params, OnFailure: d.OnFailure, OnSuccess: d.OnSuccess, Approval: ApprovalNone,
		Line: c.pos.Line(path)}
	if st.Params == nil {
		st.Params = strategy.Params{}
	}
	switch {
	case rs.Strategy == "":
		c.fail(path+".strategy", "missing")
	case c.reg != nil:
		def, ok := c.reg.Get(rs.Strategy)
		if !ok {
			c.fail(path+".strategy", "unknown strategy %q (known: %s)", rs.Strategy, strings.Join(c.reg.Names(), ", "))
			break
		}
		b, err := def.Bind(st.Params)
		if err != nil {
			c.fail(path+".params", "%s: %v", rs.Strategy, err)
			break
		}
		st.Bound = b
		c.stepFigures(path, b)
	}
	if rs.OnFailure != nil {
		st.OnFailure = c.oneOf(path+".on_failure", *rs.OnFailure, OnFailureEscalate, OnFailureRollback, OnFailureStop)
	}
	if rs.OnSuccess != nil {
		st.OnSuccess = c.oneOf(path+".on_success", *rs.OnSuccess, OnSuccessDone, OnSuccessNext)
	}
	if rs.Approval != nil {
		st.Approval = c.oneOf(path+".approval", *rs.Approval, ApprovalNone, ApprovalRequired)
	}
	if rs.Validate != nil {
		st.Validate = c.validation(path+".validate", *rs.Validate, d)
	}
	return st
}

// stepFigures checks the figures a step records: its figures parameter, else the strategy's
// defaults for every method, so a figure nobody measures fails the load instead of being
// dropped from the history in silence.
func (c *checker) stepFigures(path string, b strategy.Step) {
	if c.figures == nil {
		return
	}
	spec := b.Spec()
	if _, given := b.Params()["figures"]; given {
		for i, f := range b.Figures("") {
			if !c.figures[f] {
				c.fail(fmt.Sprintf("%s.params.figures[%d]", path, i), "unknown figure %q (known: %s)", f, c.knownFigures())
			}
		}
		return
	}
	for _, f := range spec.AllDefaultFigures() {
		if !c.figures[f] {
			c.fail(path+".strategy", "strategy %s records figure %q by default, which the exporter does not measure (known: %s)",
				spec.Name, f, c.knownFigures())
		}
	}
}

func (c *checker) knownFigures() string {
	known := make([]string, 0, len(c.figures))
	for f := range c.figures {
		known = append(known, f)
	}
	slices.Sort(known)
	return strings.Join(known, ", ")
}

func (c *checker) validation(path string, rv validateYAML, d Defaults) *validation.Validation {
	v := &validation.Validation{Figure: rv.Figure, Fallback: rv.Fallback, Op: rv.Op, Wait: d.ValidateWait, Attempts: d.ValidateAttempts}
	switch {
	case rv.Figure == "":
		c.fail(path+".figure", `missing; name the figure to re-measure, e.g. "pgvector_hnsw_heap_tids:dead"`)
	case c.figures != nil && !c.figures[rv.Figure]:
		c.fail(path+".figure", "unknown figure %q (known: %s)", rv.Figure, c.knownFigures())
	}
	switch {
	case rv.Fallback == "":
	case rv.Fallback == rv.Figure:
		c.fail(path+".fallback", "%q is the figure itself; name the figure measured where it cannot be known, or leave fallback out", rv.Fallback)
	case c.figures != nil && !c.figures[rv.Fallback]:
		c.fail(path+".fallback", "unknown figure %q (known: %s)", rv.Fallback, c.knownFigures())
	}
	if rv.Op == "" {
		c.fail(path+".op", "missing; one of %s", strings.Join(validation.Ops, " "))
	} else if !slices.Contains(validation.Ops, rv.Op) {
		c.fail(path+".op", "%q is not one of %s", rv.Op, strings.Join(validation.Ops, " "))
	}
	if rv.Value != nil {
		v.Value, v.HasValue = *rv.Value, true
	}
	if rv.AsBuiltFactor != nil {
		if *rv.AsBuiltFactor <= 0 {
			c.fail(path+".as_built_factor", "%v must be greater than 0", *rv.AsBuiltFactor)
		}
		v.AsBuiltFactor = *rv.AsBuiltFactor
	}
	if rv.BeforeFactor != nil {
		switch {
		case *rv.BeforeFactor <= 0:
			c.fail(path+".before_factor", "%v must be greater than 0", *rv.BeforeFactor)
		case rv.AsBuiltFactor != nil:
			c.fail(path+".before_factor", "cannot be combined with as_built_factor")
		case rv.Value == nil:
			c.fail(path+".value", "missing; before_factor needs it as the bound where the figure before the step is unknown")
		case rv.Op == "==" || rv.Op == "!=":
			c.fail(path+".before_factor", "needs an ordering op (< <= > >=), not %q", rv.Op)
		}
		v.BeforeFactor = *rv.BeforeFactor
	}
	if rv.Value == nil && rv.AsBuiltFactor == nil {
		c.fail(path+".value", "missing; the bound the figure is compared with (or as_built_factor, relative to the index's as-built figure)")
	}
	if rv.Wait != nil {
		v.Wait = c.nonNegative(path+".wait", *rv.Wait)
	}
	if rv.Attempts != nil {
		v.Attempts = c.attempts(path+".attempts", *rv.Attempts)
	}
	return v
}

var dayNames = map[string]time.Weekday{
	"sun": time.Sunday, "mon": time.Monday, "tue": time.Tuesday, "wed": time.Wednesday,
	"thu": time.Thursday, "fri": time.Friday, "sat": time.Saturday,
}

func (c *checker) windows(path string, ws []windowYAML) []Window {
	var out []Window
	for i, rw := range ws {
		p := fmt.Sprintf("%s[%d]", path, i)
		w := Window{Location: time.UTC, Line: c.pos.Line(p)}
		for j, d := range rw.Days {
			days, err := parseDays(d)
			if err != nil {
				c.fail(fmt.Sprintf("%s.days[%d]", p, j), "%v", err)
				continue
			}
			for _, x := range days {
				if !slices.Contains(w.Days, x) {
					w.Days = append(w.Days, x)
				}
			}
		}
		var okS, okE bool
		w.Start, okS = c.clock(p+".start", rw.Start)
		w.End, okE = c.clock(p+".end", rw.End)
		if okS && okE && w.Start == w.End {
			c.fail(p, "start and end are both %s; the window would be empty", rw.Start)
		}
		if rw.TimeZone != "" {
			loc, err := time.LoadLocation(rw.TimeZone)
			if err != nil {
				c.fail(p+".time_zone", "unknown time zone %q (use an IANA name such as Europe/Berlin, or UTC)", rw.TimeZone)
			} else {
				w.Location = loc
			}
		}
		out = append(out, w)
	}
	return out
}

// parseDays reads "mon", "monday" or a range "mon-fri" (wrapping, so "fri-mon" is fine).
func parseDays(s string) ([]time.Weekday, error) {
	day := func(x string) (time.Weekday, bool) {
		x = strings.ToLower(strings.TrimSpace(x))
		if len(x) > 3 {
			full := map[string]string{"sunday": "sun", "monday": "mon", "tuesday": "tue", "wednesday": "wed",
				"thursday": "thu", "friday": "fri", "saturday": "sat"}
			x = full[x]
		}
		d, ok := dayNames[x]
		return d, ok
	}
	from, to, isRange := strings.Cut(s, "-")
	a, ok := day(from)
	if !ok {
		return nil, fmt.Errorf("%q is not a day (mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri)", s)
	}
	if !isRange {
		return []time.Weekday{a}, nil
	}
	b, ok := day(to)
	if !ok {
		return nil, fmt.Errorf("%q is not a day (mon, tue, wed, thu, fri, sat, sun, or a range such as mon-fri)", s)
	}
	out := []time.Weekday{a}
	for d := a; d != b; {
		d = (d + 1) % 7
		out = append(out, d)
	}
	return out, nil
}

var clockRE = regexp.MustCompile(`^([01]?[0-9]|2[0-4]):([0-5][0-9])$`)

func (c *checker) clock(path, s string) (time.Duration, bool) {
	if s == "" {
		c.fail(path, `missing; a time of day such as "02:00"`)
		return 0, false
	}
	m := clockRE.FindStringSubmatch(s)
	if m == nil {
		c.fail(path, `%q is not a time of day HH:MM such as "02:00"`, s)
		return 0, false
	}
	h, _ := strconv.Atoi(m[1])
	min, _ := strconv.Atoi(m[2])
	if h == 24 && min != 0 {
		c.fail(path, "%q is past 24:00", s)
		return 0, false
	}
	return time.Duration(h)*time.Hour + time.Duration(min)*time.Minute, true
}

func (c *checker) priority(path string, p int) int {
	if p < 0 || p > 1000 {
		c.fail(path, "%d is out of range 0..1000", p)
	}
	return p
}

func (c *checker) attempts(path string, n int) int {
	if n < 1 || n > 100 {
		c.fail(path, "%d is out of range 1..100", n)
	}
	return n
}

func (c *checker) nonNegative(path string, d time.Duration) time.Duration {
	if d < 0 {
		c.fail(path, "must not be negative")
	}
	return d
}

func (c *checker) positive(path string, d time.Duration) time.Duration {
	if d <= 0 {
		c.fail(path, "must be greater than 0")
	}
	return d
}

func (c *checker) oneOf(path, v string, allowed ...string) string {
	if !slices.Contains(allowed, v) {
		c.fail(path, "%q is not one of %s", v, strings.Join(allowed, ", "))
	}
	return v
}
