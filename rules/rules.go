// Package rules holds vectorheal's Prometheus recording and alerting rules: the *.yml files
// beside this one, which Prometheus loads as they are. They are embedded so that the binary can
// list the alerts it is meant to receive (a runbook entry naming an alert that no rule raises is
// almost always a typo) and so that tests can check them against the metrics really produced.
package rules

import (
	"embed"
	"fmt"
	"io/fs"
	"path"
	"sort"
	"strings"

	"github.com/prometheus/common/model"

	"github.com/vectorheal/vectorheal/internal/strictyaml"
)

//go:embed *.yml
var embedded embed.FS

// FS returns the rule files, at the root of the file system, as Prometheus's rule_files take them.
func FS() fs.FS { return embedded }

// File is one rule file.
type File struct {
	Name   string  `yaml:"-"`
	Groups []Group `yaml:"groups"`
}

// Group is a rule group: rules evaluated in order, every Interval.
type Group struct {
	Name string `yaml:"name"`
	// Interval overrides Prometheus's global evaluation_interval; zero means the global one.
	Interval model.Duration `yaml:"interval"`
	Rules    []Rule         `yaml:"rules"`
}

// Rule is a recording rule (Record set) or an alerting rule (Alert set).
type Rule struct {
	Record      string            `yaml:"record"`
	Alert       string            `yaml:"alert"`
	Expr        string            `yaml:"expr"`
	For         model.Duration    `yaml:"for"`
	Labels      map[string]string `yaml:"labels"`
	Annotations map[string]string `yaml:"annotations"`
	// Line is where the rule starts in its file, for messages.
	Line int `yaml:"-"`
}

// Name is the rule's alert or record name.
func (r Rule) Name() string {
	if r.Alert != "" {
		return r.Alert
	}
	return r.Record
}

// Load decodes every embedded rule file strictly (an unknown key is an error with its line).
func Load() ([]File, error) {
	return LoadFS(embedded)
}

// LoadFS decodes every *.yml file at the root of fsys, sorted by name.
func LoadFS(fsys fs.FS) ([]File, error) {
	names, err := fs.Glob(fsys, "*.yml")
	if err != nil {
		return nil, fmt.Errorf("list rule files: %w", err)
	}
	sort.Strings(names)
	files := make([]File, 0, len(names))
	for _, name := range names {
		data, err := fs.ReadFile(fsys, name)
		if err != nil {
			return nil, fmt.Errorf("read rule file: %w", err)
		}
		f, err := Parse(name, data)
		if err != nil {
			return nil, err
		}
		files = append(files, f)
	}
	return files, nil
}

// Parse decodes one rule file; name is used in messages.
func Parse(name string, data []byte) (File, error) {
	f := File{Name: path.Base(name)}
	pos, err := strictyaml.Decode(name, data, &f)
	if err != nil {
		return File{}, err
	}
	for gi := range f.Groups {
		g := &f.Groups[gi]
		gp := fmt.Sprintf("groups[%d]", gi)
		if g.Name == "" {
			return File{}, strictyaml.Errorf(name, pos, gp, "group has no name")
		}
		for ri := range g.Rules {
			r := &g.Rules[ri]
			rp := fmt.Sprintf("%s.rules[%d]", gp, ri)
			r.Line = pos.Line(rp)
			switch {
			case (r.Alert == "") == (r.Record == ""):
				return File{}, strictyaml.Errorf(name, pos, rp, "a rule needs exactly one of alert and record")
			case strings.TrimSpace(r.Expr) == "":
				return File{}, strictyaml.Errorf(name, pos, rp+".expr", "%s has no expr", r.Name())
			case r.Record != "" && (r.For != 0 || len(r.Annotations) > 0):
				return File{}, strictyaml.Errorf(name, pos, rp, "recording rule %s cannot have for or annotations", r.Record)
			}
		}
	}
	return f, nil
}

// Alerts returns the alerting rules of files in file order. An alert with several severity tiers
// appears once per tier.
func Alerts(files []File) []Rule {
	var out []Rule
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Alert != "" {
					out = append(out, r)
				}
			}
		}
	}
	return out
}

// AlertNames returns the distinct alert names of files, sorted.
func AlertNames(files []File) []string {
	seen := map[string]bool{}
	var names []string
	for _, r := range Alerts(files) {
		if !seen[r.Alert] {
			seen[r.Alert] = true
			names = append(names, r.Alert)
		}
	}
	sort.Strings(names)
	return names
}

// Records returns the names of the recorded series of files, sorted.
func Records(files []File) []string {
	var names []string
	for _, f := range files {
		for _, g := range f.Groups {
			for _, r := range g.Rules {
				if r.Record != "" {
					names = append(names, r.Record)
				}
			}
		}
	}
	sort.Strings(names)
	return names
}
