package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/alecthomas/kingpin/v2"

	"github.com/vectorheal/vectorheal/exporter"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
	"github.com/vectorheal/vectorheal/rules"
	"github.com/vectorheal/vectorheal/webhook"
)

// docFiles are the documents a user reads: README.md and docs/*.md.
func docFiles(t *testing.T) map[string]string {
	t.Helper()
	paths, err := filepath.Glob("../../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	paths = append(paths, "../../README.md")
	out := map[string]string{}
	for _, p := range paths {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimPrefix(p, "../../")] = string(b)
	}
	return out
}

// snippet is a piece of code in a document: an inline code span or a line of a code block.
type snippet struct {
	where string // file:line
	text  string
}

var codeSpanRE = regexp.MustCompile("`([^`]+)`")

// snippets returns the code of a document: inline spans (which may run over a line break)
// and code block lines, a block line ending in a backslash joined with the next.
func snippets(file, doc string) []snippet {
	var out []snippet
	var prose strings.Builder
	proseLine := 1
	flush := func() {
		text := prose.String()
		for _, m := range codeSpanRE.FindAllStringSubmatchIndex(text, -1) {
			line := proseLine + strings.Count(text[:m[0]], "\n")
			out = append(out, snippet{fmt.Sprintf("%s:%d", file, line), strings.Join(strings.Fields(text[m[2]:m[3]]), " ")})
		}
		prose.Reset()
	}
	inBlock := false
	pending := ""
	for i, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(strings.TrimSpace(line), "```") {
			if !inBlock {
				flush()
			}
			inBlock = !inBlock
			proseLine = i + 2
			continue
		}
		if !inBlock {
			prose.WriteString(line + "\n")
			continue
		}
		if cont, ok := strings.CutSuffix(line, "\\"); ok {
			pending += cont
			continue
		}
		out = append(out, snippet{fmt.Sprintf("%s:%d", file, i+1), pending + line})
		pending = ""
	}
	flush()
	return out
}

// cliModel is what the binary declares: commands by full name with their flags, and the
// application's own flags.
type cliModel struct {
	commands map[string]map[string]bool // full command name → flag names
	global   map[string]bool
	hidden   map[string]bool // hidden commands: need no documentation
}

func newCLIModel(t *testing.T) cliModel {
	t.Helper()
	app, _, _ := newApp(io.Discard, io.Discard)
	m := app.Model()
	c := cliModel{commands: map[string]map[string]bool{}, global: flagSet(m.Flags), hidden: map[string]bool{}}
	var walk func(cmds []*kingpin.CmdModel)
	walk = func(cmds []*kingpin.CmdModel) {
		for _, cmd := range cmds {
			c.commands[cmd.FullCommand] = flagSet(cmd.Flags)
			if cmd.Hidden {
				c.hidden[cmd.FullCommand] = true
			}
			walk(cmd.Commands)
		}
	}
	walk(m.Commands)
	return c
}

func flagSet(fs []*kingpin.FlagModel) map[string]bool {
	out := map[string]bool{}
	for _, f := range fs {
		out["--"+f.Name] = true
		if f.Short != 0 {
			out["-"+string(f.Short)] = true
		}
	}
	return out
}

// commandIn returns the longest vectorheal command a snippet runs ("" when it runs none) and
// the rest of the snippet after it.
var invokeRE = regexp.MustCompile(`(?:^|\$ |/|&& |; |\| |\()vectorheal((?: [a-z][a-z-]*)+)`)

func (c cliModel) commandIn(s string) (cmd, rest string, named bool) {
	m := invokeRE.FindStringSubmatchIndex(s)
	if m == nil {
		return "", "", false
	}
	words := strings.Fields(s[m[2]:m[3]])
	for n := len(words); n > 0; n-- {
		if cand := strings.Join(words[:n], " "); c.commands[cand] != nil {
			return cand, s[m[2]:], true
		}
	}
	return words[0], s[m[2]:], true
}

// otherTools are flags the documents name of programs other than vectorheal, and where they
// belong.
var otherTools = map[string]string{
	"--exit":      "vectorheal-demo (make demo)",
	"--keep":      "vectorheal-demo (make demo)",
	"--build-arg": "docker build",
	"--namespace": "helm install",
	"--detect":    "scripts/install-deps.sh",
}

var flagRE = regexp.MustCompile(`(?:^|\s)(--[a-z][a-z0-9.-]*[a-z0-9])`)

// TestDocsNameRealCommandsAndFlags: every `vectorheal <command>` in README.md and docs/ is a
// command of the binary, every flag given to one is that command's (or a global flag), every
// other flag named is one of some command, and every command is documented.
func TestDocsNameRealCommandsAndFlags(t *testing.T) {
	c := newCLIModel(t)
	documented := map[string]bool{}
	anyFlag := map[string]bool{}
	for _, fs := range c.commands {
		for f := range fs {
			anyFlag[f] = true
		}
	}
	for f := range c.global {
		anyFlag[f] = true
	}
	checked := 0
	for file, doc := range docFiles(t) {
		for _, sn := range snippets(file, doc) {
			cmd, rest, named := c.commandIn(sn.text)
			if named {
				checked++
				if c.commands[cmd] == nil {
					t.Errorf("%s: `vectorheal %s` is no command of vectorheal", sn.where, cmd)
					continue
				}
				documented[cmd] = true
				for _, m := range flagRE.FindAllStringSubmatch(rest, -1) {
					f := m[1]
					if !c.commands[cmd][f] && !c.global[f] && otherTools[f] == "" {
						t.Errorf("%s: `vectorheal %s` has no flag %s", sn.where, cmd, f)
					}
				}
				continue
			}
			for _, m := range flagRE.FindAllStringSubmatch(sn.text, -1) {
				if f := m[1]; !anyFlag[f] && otherTools[f] == "" {
					t.Errorf("%s: %s is a flag of no vectorheal command (in %q)", sn.where, f, sn.text)
				}
			}
		}
	}
	if checked < 20 {
		t.Errorf("only %d command mentions found in the documents", checked)
	}
	var undocumented []string
	for cmd, fs := range c.commands {
		if fs == nil || c.hidden[cmd] || documented[cmd] || cmd == "help" {
			continue
		}
		// A command group ("runbook", "config") is documented through its subcommands.
		group := false
		for other := range c.commands {
			if strings.HasPrefix(other, cmd+" ") {
				group = true
			}
		}
		if !group {
			undocumented = append(undocumented, cmd)
		}
	}
	sort.Strings(undocumented)
	if len(undocumented) > 0 {
		t.Errorf("commands no document shows as `vectorheal <command>`: %v", undocumented)
	}
}

// TestDocsNameEveryStrategy: every strategy of the registry is in docs/runbook.md's list of the
// step key strategy and in `repair --help` (all but those only a runbook may run), and every
// strategy a document's runbook example or table names exists.
func TestDocsNameEveryStrategy(t *testing.T) {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	names := reg.Names()
	doc := docFiles(t)["docs/runbook.md"]
	row := regexp.MustCompile("(?m)^\\| `strategy` \\| required \\| (.*)\\|$").FindStringSubmatch(doc)
	if row == nil {
		t.Fatal("docs/runbook.md has no row for the step key strategy")
	}
	var listed []string
	for _, m := range codeSpanRE.FindAllStringSubmatch(row[1], -1) {
		listed = append(listed, m[1])
	}
	sort.Strings(listed)
	if !slices.Equal(listed, names) {
		t.Errorf("docs/runbook.md lists strategies %v, the registry has %v", listed, names)
	}

	app, _, _ := newApp(io.Discard, io.Discard)
	var text string
	for _, f := range app.GetCommand("repair").Model().Flags {
		if f.Name == "strategy" {
			text = f.Help
		}
	}
	for _, s := range reg.Specs() {
		if s.Has(strategy.RunsUserSQL) {
			continue
		}
		if !regexp.MustCompile(`\b` + s.Name + `\b`).MatchString(text) {
			t.Errorf("repair --help does not name strategy %s", s.Name)
		}
	}

	strategyRE := regexp.MustCompile(`strategy: ([a-z_]+)`)
	for file, d := range docFiles(t) {
		for _, sn := range snippets(file, d) {
			for _, m := range strategyRE.FindAllStringSubmatch(sn.text, -1) {
				if _, ok := reg.Get(m[1]); !ok {
					t.Errorf("%s: strategy %s does not exist", sn.where, m[1])
				}
			}
		}
	}
}

// schemaKeys returns every key of the runbook format, from docs/runbook.schema.json (which
// remediation/runbook's tests hold equal to what the parser accepts), strategy parameters
// left out: the generated strategy table documents them.
func schemaKeys(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../../docs/runbook.schema.json")
	if err != nil {
		t.Fatal(err)
	}
	var schema any
	if err := json.Unmarshal(b, &schema); err != nil {
		t.Fatal(err)
	}
	keys := map[string]bool{}
	var walk func(n any, under string)
	walk = func(n any, under string) {
		switch v := n.(type) {
		case map[string]any:
			if props, ok := v["properties"].(map[string]any); ok && under != "params" && under != "sqlQuery" && under != "sqlStatement" {
				for k, p := range props {
					keys[k] = true
					walk(p, k)
				}
			}
			for k, c := range v {
				if k == "properties" || k == "allOf" || k == "if" || k == "then" {
					continue // strategies' parameters, documented in the generated table
				}
				walk(c, k)
			}
		case []any:
			for _, c := range v {
				walk(c, under)
			}
		}
	}
	walk(schema, "")
	return keys
}

// TestDocsNameRealRunbookKeys: every key in the key tables of docs/runbook.md is a key of the
// runbook format, and every key of the format is in docs/runbook.md.
func TestDocsNameRealRunbookKeys(t *testing.T) {
	keys := schemaKeys(t)
	doc := docFiles(t)["docs/runbook.md"]
	table, _, _ := strings.Cut(doc, "<!-- strategies:begin")
	rowRE := regexp.MustCompile("(?m)^\\| `([a-z_.]+)` \\|")
	rows := rowRE.FindAllStringSubmatch(table, -1)
	if len(rows) < 20 {
		t.Fatalf("only %d key rows in docs/runbook.md", len(rows))
	}
	for _, m := range rows {
		parts := strings.Split(m[1], ".")
		if k := parts[len(parts)-1]; !keys[k] {
			t.Errorf("docs/runbook.md documents key %s, which the runbook format does not have", m[1])
		}
	}
	for k := range keys {
		if !strings.Contains(doc, "`"+k+"`") && !strings.Contains(doc, k+":") {
			t.Errorf("docs/runbook.md never names the runbook key %s", k)
		}
	}
}

var metricNameRE = regexp.MustCompile(`\b((?:pgvector|vectorheal)_[a-z0-9_]*[a-z0-9])\b`)

// notMetrics are names of the metric prefixes' form that are not metrics: alert labels, the
// documented database roles, the page readers' default schema and the demo's databases.
var notMetrics = map[string]bool{"vectorheal_severity": true, "vectorheal_role": true, "vectorheal_repair": true,
	"vectorheal_exporter": true, "vectorheal_pages": true}

// sqlRE tells SQL, where such names are roles, schemas or tables, from PromQL.
var sqlRE = regexp.MustCompile(`\b(GRANT|REVOKE|CREATE|ALTER|SELECT|INSERT|UPDATE|DELETE)\b`)

// TestDocsNameRealMetrics: every pgvector_* and vectorheal_* series in code of README.md and
// docs/ is a metric vectorheal publishes (docs/metrics.md's lists) or a recorded series, with
// the _bucket/_sum/_count series of histograms and summaries.
func TestDocsNameRealMetrics(t *testing.T) {
	known := map[string]bool{"vectorheal_build_info": true} // the version collector's
	for _, m := range append(append(append(exporter.Metrics(), webhook.Metrics()...), engine.Metrics()...), runbook.Metrics()...) {
		known[m.Name] = true
		for _, suf := range []string{"_bucket", "_sum", "_count", "_total", "_created"} {
			known[m.Name+suf] = true
		}
	}
	files, err := rules.Load()
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range rules.Records(files) {
		for _, part := range strings.Split(r, ":") {
			known[part] = true // a recorded series names the metric it is computed from
		}
	}
	labelRE := regexp.MustCompile(`\b(vectorheal_[a-z_]+)\s*=`)
	checked := 0
	for file, doc := range docFiles(t) {
		for _, sn := range snippets(file, doc) {
			labels := map[string]bool{}
			for _, m := range labelRE.FindAllStringSubmatch(sn.text, -1) {
				labels[m[1]] = true
			}
			for _, m := range metricNameRE.FindAllStringSubmatch(sn.text, -1) {
				n := m[1]
				if notMetrics[n] || labels[n] || strings.HasSuffix(n, "_") || strings.HasPrefix(n, "vectorheal_demo") || sqlRE.MatchString(sn.text) {
					continue
				}
				checked++
				if !known[n] {
					t.Errorf("%s: %s is no metric vectorheal publishes (in %q)", sn.where, n, sn.text)
				}
			}
		}
	}
	if checked < 100 {
		t.Errorf("only %d metric mentions checked", checked)
	}
}

// TestDocsTranscripts runs the `$ vectorheal runbook ...` examples of docs/runbook.md and
// compares their output with the document's: an example is a promise of what a user sees.
func TestDocsTranscripts(t *testing.T) {
	doc := docFiles(t)["docs/runbook.md"]
	lines := strings.Split(doc, "\n")
	ran := 0
	for i := 0; i < len(lines); i++ {
		cmdline, ok := strings.CutPrefix(lines[i], "$ vectorheal runbook ")
		if !ok {
			continue
		}
		for strings.HasSuffix(cmdline, "\\") && i+1 < len(lines) {
			i++
			cmdline = strings.TrimSuffix(cmdline, "\\") + lines[i]
		}
		var want []string
		for i+1 < len(lines) && lines[i+1] != "" && !strings.HasPrefix(lines[i+1], "```") && !strings.HasPrefix(lines[i+1], "$ ") {
			i++
			want = append(want, lines[i])
		}
		args := append([]string{"runbook"}, shellWords(t, cmdline)...)
		for j, a := range args {
			if strings.HasPrefix(a, "deploy/") {
				args[j] = "../../" + a
			}
		}
		var out, errOut bytes.Buffer
		if code := run(args, &out, &errOut); code != 0 {
			t.Errorf("vectorheal %s: exit %d: %s", strings.Join(args, " "), code, errOut.String())
			continue
		}
		got := strings.TrimRight(strings.ReplaceAll(out.String(), "../../deploy/", "deploy/"), "\n")
		if got != strings.Join(want, "\n") {
			t.Errorf("docs/runbook.md shows for `vectorheal %s`:\n%s\nit prints:\n%s", cmdline, strings.Join(want, "\n"), got)
		}
		ran++
	}
	if ran < 2 {
		t.Errorf("ran %d examples of docs/runbook.md, want at least validate and test", ran)
	}
}

// shellWords splits a command line as a POSIX shell would for the quoting the documents use.
func shellWords(t *testing.T, s string) []string {
	var words []string
	var cur strings.Builder
	in := false
	var quote rune
	for _, r := range s {
		switch {
		case quote != 0 && r == quote:
			quote = 0
		case quote != 0:
			cur.WriteRune(r)
		case r == '\'' || r == '"':
			quote, in = r, true
		case r == ' ' || r == '\t':
			if in {
				words = append(words, cur.String())
				cur.Reset()
				in = false
			}
		default:
			cur.WriteRune(r)
			in = true
		}
	}
	if quote != 0 {
		t.Fatalf("unbalanced quote in %q", s)
	}
	if in {
		words = append(words, cur.String())
	}
	return words
}
