package rules

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// promtool runs the real promtool on the files of this directory.
func promtool(t *testing.T, args ...string) string {
	t.Helper()
	bin, err := testenv.PromtoolBinary()
	if err != nil {
		testenv.Unavailable(t, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bin, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// ruleFiles are the default rule files and the opt-in ones under optional/.
func ruleFiles(t *testing.T) []string {
	t.Helper()
	files, err := filepath.Glob("*.yml")
	if err != nil || len(files) == 0 {
		t.Fatalf("no rule files found: %v", err)
	}
	optional, err := filepath.Glob(filepath.Join("optional", "*.yml"))
	if err != nil || len(optional) == 0 {
		t.Fatalf("no opt-in rule files found: %v", err)
	}
	return append(files, optional...)
}

func TestPromtoolCheckRules(t *testing.T) {
	t.Parallel()
	out := promtool(t, append([]string{"check", "rules"}, ruleFiles(t)...)...)
	if strings.Contains(out, "FAILED") || strings.Contains(out, "WARNING") {
		t.Fatalf("promtool check rules reported problems:\n%s", out)
	}
	if n := strings.Count(out, "SUCCESS"); n != len(ruleFiles(t)) {
		t.Fatalf("promtool checked %d files successfully, want %d:\n%s", n, len(ruleFiles(t)), out)
	}
}

func TestPromtoolTestRules(t *testing.T) {
	t.Parallel()
	tests, err := filepath.Glob(filepath.Join("tests", "*.yml"))
	if err != nil || len(tests) == 0 {
		t.Fatalf("no promtool tests in tests/: %v", err)
	}
	out := promtool(t, append([]string{"test", "rules"}, tests...)...)
	if strings.Contains(out, "FAILED") {
		t.Fatalf("promtool test rules failed:\n%s", out)
	}
	if n := strings.Count(out, "SUCCESS"); n != len(tests) {
		t.Fatalf("promtool passed %d test files, want %d:\n%s", n, len(tests), out)
	}
}
