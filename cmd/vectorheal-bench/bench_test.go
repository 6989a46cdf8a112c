package main

import (
	"bytes"
	"errors"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestMain lets the test binary stand in for the command when the benchmark starts its
// analysing process (os.Args[0] is the test binary then).
func TestMain(m *testing.M) {
	if slices.Contains(os.Args[1:], "-analyze-loop") {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(testenv.Main(m))
}

// TestRunSmall runs the whole benchmark on a small data set in a private PostgreSQL: it builds
// the table and index, measures, and prints both tables with a ratio for every run and pair.
// A second run finds the data set kept in the directory.
func TestRunSmall(t *testing.T) {
	// Not t.TempDir: its parent is private to this user, and the server may run as another.
	dir, err := os.MkdirTemp("", "vectorheal-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	args := []string{"-dir", dir, "-rows", "2000", "-dim", "8", "-runs", "2", "-pairs", "1", "-phase", "1s", "-clients", "2"}
	var out, errs bytes.Buffer
	if code := run(args, &out, &errs); code != 0 {
		if strings.Contains(errs.String(), "start PostgreSQL") {
			testenv.Unavailable(t, errors.New(strings.TrimSpace(errs.String())))
		}
		t.Fatalf("exit %d: %s\n%s", code, errs.String(), out.String())
	}
	got := out.String()
	for _, re := range []string{
		`index public\.items_v_idx: \d+ pages`,
		`(?m)^\| 1 \| fetch \| [0-9.]+ s \| [0-9.]+ s \| [0-9.]+ \|`,
		`(?m)^\| 2 \| analysis \| [0-9.]+ s \| [0-9.]+ s \| [0-9.]+ \|`,
		`ratio analysis / fetch: min [0-9.]+, median [0-9.]+, max [0-9.]+ over 2 runs`,
		`elements 2000, pages \d+`,
		`(?m)^\| 1 \| without \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| [1-9]\d* \(`,
		`p99 with / without analysis: min [0-9.]+, median [0-9.]+, max [0-9.]+ over 1 pairs`,
	} {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("output lacks %s:\n%s", re, got)
		}
	}
	out.Reset()
	if code := run(append(args, "-skip-load", "-runs", "1", "-max-pages-per-second", "5000"), &out, &errs); code != 0 {
		t.Fatalf("second run: exit %d: %s", code, errs.String())
	}
	if !strings.Contains(out.String(), "kept from an earlier run") {
		t.Errorf("second run rebuilt the data set:\n%s", out.String())
	}
	// The exporter's own scan with an adaptive budget as the concurrent analysis.
	out.Reset()
	adaptive := append(args, "-skip-analysis", "-max-pages-per-second", "5000", "-adaptive", "-adjust-interval", "100ms")
	if code := run(adaptive, &out, &errs); code != 0 {
		t.Fatalf("adaptive run: exit %d: %s", code, errs.String())
	}
	for _, re := range []string{
		`page budget adaptive, 500 to 5000 pages/s, latency factor 2, judged every 100ms`,
		`(?m)^\| 1 \| without \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| [1-9]\d* \(`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("adaptive run's output lacks %s:\n%s", re, out.String())
		}
	}
}

func TestOptionsRefused(t *testing.T) {
	for _, tc := range []struct{ args, want string }{
		{"-rows 10", "-rows 10: at least 1000"},
		{"-load-share 1.5", "-load-share 1.5: above 0 and at most 1"},
		{"-max-pages-per-second -1", "-max-pages-per-second -1: not negative"},
		{"-phase 10ms", "-phase 10ms: at least 1s"},
		{"-adaptive", "-adaptive: needs -max-pages-per-second above 0, the ceiling"},
		{"-latency-factor 1", "-latency-factor 1: above 1"},
	} {
		var out, errs bytes.Buffer
		if code := run(strings.Fields(tc.args), &out, &errs); code != 2 || !strings.Contains(errs.String(), tc.want) {
			t.Errorf("%s: exit %d, %q; want 2 and %q", tc.args, code, errs.String(), tc.want)
		}
	}
}

func TestSpreadAndQuantile(t *testing.T) {
	if lo, med, hi := spread([]float64{3, 1, 2, 10}); lo != 1 || med != 2.5 || hi != 10 {
		t.Errorf("spread = %v %v %v", lo, med, hi)
	}
	var r phaseResult
	for i := 1; i <= 200; i++ {
		r.lat = append(r.lat, time.Duration(i)*time.Millisecond)
	}
	if p := r.quantile(0.99); p != 198*time.Millisecond {
		t.Errorf("p99 of 1..200 ms = %v, want 198ms", p)
	}
	if p := r.quantile(0.5); p != 100*time.Millisecond {
		t.Errorf("p50 of 1..200 ms = %v, want 100ms", p)
	}
}
