package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"sort"
	"strings"
	"time"

	"github.com/alecthomas/kingpin/v2"
	"github.com/alecthomas/units"
	"github.com/prometheus/alertmanager/matcher/compat"
	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/rules"
)

// runbookChecks returns what a runbook is checked against: the strategies vectorheal ships and
// the figures the exporter's Measurer can re-measure.
func runbookChecks() (*strategy.Registry, []string, error) {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		return nil, nil, fmt.Errorf("strategies: %w", err)
	}
	return reg, exporter.NewMeasurer(config.Exporter{}).Figures(), nil
}

// manualStrategies names the strategies a manual repair may ask for, from the registry so
// `repair --help` never falls behind it: every one but those that run SQL written in a
// runbook, which the API refuses.
func manualStrategies() string {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		return "see docs/runbook.md"
	}
	var names []string
	for _, s := range reg.Specs() {
		if !s.Has(strategy.RunsUserSQL) {
			names = append(names, s.Name)
		}
	}
	return strings.Join(names, ", ")
}

func registerRunbookValidate(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c := runbookCommand(app).Command("validate",
		"Check runbook files: keys and types (with file:line), matchers, strategies and their parameters, validation figures, windows. Exit 1 listing every problem.")
	files := c.Arg("file", "Runbook files to check.").Required().ExistingFiles()
	return c.FullCommand(), func(context.Context, *slog.Logger) int {
		reg, figures, err := runbookChecks()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		code := 0
		for _, f := range *files {
			rb, err := runbook.Load(f, reg, figures)
			if err != nil {
				fmt.Fprintln(stderr, err)
				code = 1
				continue
			}
			fmt.Fprintf(stdout, "%s: OK (%d entries)\n", f, len(rb.Entries))
			for _, w := range unknownAlertnames(rb) {
				fmt.Fprintf(stderr, "%s: warning: %s\n", f, w)
			}
		}
		return code
	}
}

// unknownAlertnames names the entries that select an alertname no rule shipped in rules/
// raises: usually a typo, though an operator's own rules may raise it, hence a warning.
func unknownAlertnames(rb *runbook.Runbook) []string {
	files, err := rules.Load()
	if err != nil {
		return []string{"cannot read the shipped rules: " + err.Error()}
	}
	known := map[string]bool{}
	for _, n := range rules.AlertNames(files) {
		known[n] = true
	}
	var out []string
	for _, e := range rb.Entries {
		for _, m := range e.Matchers {
			if m.Name == "alertname" && m.Type == labels.MatchEqual && !known[m.Value] {
				out = append(out, fmt.Sprintf("line %d: entry %s selects alertname %q, which no rule in rules/ raises", e.Line, e.Name, m.Value))
			}
		}
	}
	return out
}

func registerRunbookTest(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c := runbookCommand(app).Command("test",
		"Show which runbook entries an alert with the given labels selects and the steps they would run.")
	file := c.Arg("file", "Runbook file.").Required().ExistingFile()
	alert := c.Flag("alert", `Alert labels: name="value" or name=value; repeat the flag or separate with commas.`).
		Required().PlaceHolder(`'alertname="X"'`).Strings()
	expectSet := false
	expect := c.Flag("expect", "Entry names the alert must select, comma separated, in order (empty: none); exit 1 otherwise.").
		IsSetByUser(&expectSet).String()
	var ix indexFacts
	c.Flag("index-size", "Size of the index, e.g. 166MB: steps that choose their path by cost (reclaim) show their estimate for it.").BytesVar(&ix.size)
	c.Flag("elements", "Entries of the index (with --index-size).").Int64Var(&ix.elements)
	c.Flag("dead-share", "Share of the index's entries whose rows are deleted, 0 to 1 (with --index-size).").Float64Var(&ix.dead)
	c.Flag("method", "Index method (with --index-size): hnsw or ivfflat.").Default("hnsw").EnumVar(&ix.method, "hnsw", "ivfflat")
	c.Flag("m", "HNSW m of the index (with --index-size).").Default("16").IntVar(&ix.m)
	c.Flag("pgvector", "Installed pgvector version (with --index-size); absent: unknown, and its gates are closed.").StringVar(&ix.version)
	return c.FullCommand(), func(context.Context, *slog.Logger) int {
		if err := ix.check(); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		lbls, err := alertLabels(*alert)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		reg, figures, err := runbookChecks()
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		rb, err := runbook.Load(*file, reg, figures)
		if err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
		matched := rb.Match(lbls)
		printMatches(stdout, lbls, matched, ix)
		if expectSet {
			var got []string
			for _, e := range matched {
				got = append(got, e.Name)
			}
			if strings.Join(got, ",") != strings.ReplaceAll(*expect, " ", "") {
				fmt.Fprintf(stderr, "expected entries %q, got %q\n", *expect, strings.Join(got, ","))
				return 1
			}
		}
		return 0
	}
}

// runbookCommand returns the "runbook" command, creating it on first use.
func runbookCommand(app *kingpin.Application) *kingpin.CmdClause {
	if c := app.GetCommand("runbook"); c != nil {
		return c
	}
	return app.Command("runbook", "Work with runbook files.")
}

// alertLabels reads --alert values with Alertmanager's matcher parser; only equality makes
// sense for an alert's labels.
func alertLabels(args []string) (map[string]string, error) {
	parse := compat.FallbackMatchersParser(slog.New(slog.DiscardHandler))
	out := map[string]string{}
	for _, a := range args {
		ms, err := parse(a, "--alert")
		if err != nil {
			return nil, fmt.Errorf("--alert %q: %w", a, err)
		}
		for _, m := range ms {
			if m.Type != labels.MatchEqual {
				return nil, fmt.Errorf("--alert %q: %s is not a label value; use name=\"value\"", a, m)
			}
			out[m.Name] = m.Value
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("--alert: no labels given")
	}
	return out, nil
}

// indexFacts describe an index for the estimates of `runbook test`; size 0: none given.
type indexFacts struct {
	size     units.Base2Bytes
	elements int64
	dead     float64
	method   string
	m        int
	version  string
}

func (f indexFacts) check() error {
	switch {
	case f.size == 0 && (f.elements != 0 || f.dead != 0 || f.version != ""):
		return fmt.Errorf("--elements, --dead-share and --pgvector describe an index: give --index-size too")
	case f.size == 0:
		return nil
	case f.size < 0 || f.elements <= 0:
		return fmt.Errorf("--index-size %s, --elements %d: give the index's size and its entries (both positive)", f.size, f.elements)
	case !(f.dead >= 0 && f.dead <= 1):
		return fmt.Errorf("--dead-share %v: want 0 to 1", f.dead)
	}
	return nil
}

// estimateText is the choice of a step that chooses its path by cost on the index f
// describes, or "" for other steps or when no index is described.
func (f indexFacts) estimateText(st strategy.Step) string {
	if f.size == 0 || st == nil {
		return ""
	}
	c, ok, err := strategy.EstimateStep(st, strategy.CostInput{Method: f.method, SizeBytes: int64(f.size), Elements: f.elements,
		DeadShare: f.dead, M: f.m, PgvectorVersion: f.version})
	switch {
	case !ok:
		return ""
	case err != nil:
		return "estimate: " + err.Error()
	}
	return fmt.Sprintf("estimate: chooses %s, est. %s: %s", c.Path, c.Chosen().Duration.Round(time.Second), c.Reason)
}

func printMatches(w io.Writer, lbls map[string]string, matched []*runbook.Entry, ix indexFacts) {
	names := make([]string, 0, len(lbls))
	for k := range lbls {
		names = append(names, k)
	}
	sort.Strings(names)
	var parts []string
	for _, k := range names {
		parts = append(parts, fmt.Sprintf("%s=%q", k, lbls[k]))
	}
	fmt.Fprintf(w, "alert {%s}\n", strings.Join(parts, ", "))
	if len(matched) == 0 {
		fmt.Fprintln(w, "no entry matches: the alert triggers no repair")
		return
	}
	fmt.Fprintf(w, "matches %d entr%s:\n", len(matched), map[bool]string{true: "y", false: "ies"}[len(matched) == 1])
	for i, e := range matched {
		fmt.Fprintf(w, "%d. %s (line %d)\n", i+1, e.Name, e.Line)
		fmt.Fprintf(w, "   matchers %s\n", e.Matchers)
		fmt.Fprintf(w, "   priority %d, cooldown %s, timeout %s, approval %s, dry-run %t, continue %t\n",
			e.Priority, e.Cooldown, e.Timeout, e.Approval, e.DryRun, e.Continue)
		for _, win := range e.Windows {
			fmt.Fprintf(w, "   window %s\n", describeWindow(win))
		}
		for j, s := range e.Steps {
			fmt.Fprintf(w, "   step %d: %s", j+1, s.Strategy)
			if len(s.Params) > 0 {
				fmt.Fprintf(w, " %s", paramsText(s.Params))
			}
			fmt.Fprintln(w)
			if s.Validate != nil {
				fmt.Fprintf(w, "           validate %s (wait %s, up to %d attempts)\n", s.Validate, s.Validate.Wait, s.Validate.Attempts)
			}
			fmt.Fprintf(w, "           on failure %s, on success %s\n", s.OnFailure, s.OnSuccess)
			if est := ix.estimateText(s.Bound); est != "" {
				fmt.Fprintf(w, "           %s\n", est)
			}
		}
	}
}

// paramsText writes strategy parameters as name=value pairs sorted by name, each value as
// JSON (strings quoted), as a runbook would give them.
func paramsText(ps map[string]any) string {
	names := make([]string, 0, len(ps))
	for k := range ps {
		names = append(names, k)
	}
	sort.Strings(names)
	parts := make([]string, 0, len(names))
	for _, k := range names {
		v, err := json.Marshal(ps[k])
		if err != nil {
			v = []byte(fmt.Sprint(ps[k]))
		}
		parts = append(parts, k+"="+string(v))
	}
	return strings.Join(parts, " ")
}

func describeWindow(w runbook.Window) string {
	days := "every day"
	if len(w.Days) > 0 {
		var ds []string
		for _, d := range w.Days {
			ds = append(ds, strings.ToLower(d.String()[:3]))
		}
		days = strings.Join(ds, ",")
	}
	clock := func(d time.Duration) string { return fmt.Sprintf("%02d:%02d", int(d.Hours()), int(d.Minutes())%60) }
	return fmt.Sprintf("%s %s-%s %s", days, clock(w.Start), clock(w.End), w.Location)
}
