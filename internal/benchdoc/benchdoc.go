// Package benchdoc writes a benchmark tool's results into docs/BENCHMARKS.md and names the
// command that reproduces them, the same way for every tool in the repository (the soak, the
// fleet benchmark): a tool owns the text between its two markers and nothing else.
package benchdoc

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// Markers are the two lines that enclose a tool's block in a document.
type Markers struct{ Begin, End string }

// Replace returns doc with the text between m's markers replaced by body.
func (m Markers) Replace(doc, body string) (string, error) {
	i := strings.Index(doc, m.Begin)
	j := strings.Index(doc, m.End)
	if i < 0 || j < i {
		return "", errors.New("no markers (" + m.Begin + " … " + m.End + ")")
	}
	return doc[:i+len(m.Begin)] + "\n" + body + doc[j:], nil
}

// Update replaces the text between m's markers in the file at path with body.
func (m Markers) Update(path, body string) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	doc, err := m.Replace(string(data), body)
	if err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return os.WriteFile(path, []byte(doc), 0o644)
}

// MakeCommand is the make command that reproduces a run of a tool started by `make target`
// with args, for the docs: the flags given, but not those the Makefile sets itself (local,
// named without dashes, e.g. "vectorheal"), passed as flagsVar.
func MakeCommand(target, flagsVar string, args []string, local ...string) string {
	isLocal := func(name string) bool {
		for _, l := range local {
			if name == l {
				return true
			}
		}
		return false
	}
	var kept []string
	for i := 0; i < len(args); i++ {
		a := strings.TrimLeft(args[i], "-")
		name, _, withValue := strings.Cut(a, "=")
		switch {
		case isLocal(name) && !withValue:
			i++ // and its value
		case isLocal(name):
		default:
			kept = append(kept, args[i])
		}
	}
	if len(kept) == 0 {
		return "make " + target
	}
	return "make " + target + " " + flagsVar + "='" + strings.Join(kept, " ") + "'"
}
