package rules

import (
	"os"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

func TestLoad(t *testing.T) {
	files, err := Load()
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 2 {
		t.Fatalf("loaded %d rule files, want the recording and alerting files", len(files))
	}
	names := AlertNames(files)
	if len(names) == 0 || len(Records(files)) == 0 {
		t.Fatalf("no alerts (%d) or no recording rules (%d)", len(names), len(Records(files)))
	}
	for _, r := range Alerts(files) {
		if r.Line == 0 {
			t.Errorf("alert %s has no line number", r.Alert)
		}
	}
}

func TestParseErrors(t *testing.T) {
	for _, tc := range []struct {
		name, yaml, want string
	}{
		{"unknown key", "groups:\n  - name: g\n    rules:\n      - alert: A\n        expr: up\n        fro: 5m\n", "x.yml:6: groups[0].rules[0].fro: unknown"},
		{"both alert and record", "groups:\n  - name: g\n    rules:\n      - alert: A\n        record: b\n        expr: up\n", "x.yml:4: groups[0].rules[0]: a rule needs exactly one of alert and record"},
		{"no expr", "groups:\n  - name: g\n    rules:\n      - alert: A\n", "x.yml:4: groups[0].rules[0].expr: A has no expr"},
		{"record with for", "groups:\n  - name: g\n    rules:\n      - record: a:b\n        expr: up\n        for: 5m\n", "recording rule a:b cannot have for or annotations"},
		{"group without name", "groups:\n  - rules: []\n", "x.yml:2: groups[0]: group has no name"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("x.yml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
