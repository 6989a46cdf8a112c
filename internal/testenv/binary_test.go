package testenv

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBinaryPrefersTheEnvironment(t *testing.T) {
	dir := t.TempDir()
	exe := filepath.Join(dir, "promtool")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("VECTORHEAL_PROMTOOL", exe)
	got, err := PromtoolBinary()
	if err != nil || got != exe {
		t.Fatalf("PromtoolBinary() = %q, %v; want %q", got, err, exe)
	}
}

// A variable naming nothing runnable must fail, not fall back to the PATH's binary: the second
// stack of `make test` would otherwise quietly run the first one again.
func TestBinaryDoesNotFallBackWhenTheEnvironmentIsWrong(t *testing.T) {
	dir := t.TempDir()
	notExec := filepath.Join(dir, "alertmanager")
	if err := os.WriteFile(notExec, []byte("not a program"), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{filepath.Join(dir, "missing"), notExec, dir} {
		t.Setenv("VECTORHEAL_ALERTMANAGER", path)
		got, err := AlertmanagerBinary()
		if err == nil {
			t.Fatalf("VECTORHEAL_ALERTMANAGER=%s: got %q, want an error", path, got)
		}
		if !strings.Contains(err.Error(), "VECTORHEAL_ALERTMANAGER="+path) {
			t.Errorf("error %q does not name the variable and its value", err)
		}
	}
}
