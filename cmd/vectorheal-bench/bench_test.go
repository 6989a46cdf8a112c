package main

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"regexp"
	"runtime"
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
// dataDir makes the directory of the tool's private cluster, removed after the test. Not
// t.TempDir: its parent is private to this user, and the server may run as another.
func dataDir(t *testing.T) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "vectorheal-bench-test-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	return dir
}

// runOK runs the tool with args and returns what it printed; a PostgreSQL that cannot start
// here makes the test unavailable, any other failure fails it.
func runOK(t *testing.T, args []string) string {
	t.Helper()
	var out, errs bytes.Buffer
	if code := run(args, &out, &errs); code != 0 {
		if strings.Contains(errs.String(), "start PostgreSQL") {
			testenv.Unavailable(t, errors.New(strings.TrimSpace(errs.String())))
		}
		t.Fatalf("exit %d: %s\n%s", code, errs.String(), out.String())
	}
	return out.String()
}

func TestRunSmall(t *testing.T) {
	args := []string{"-dir", dataDir(t), "-rows", "2000", "-dim", "8", "-runs", "2", "-pairs", "1", "-phase", "1s", "-clients", "2"}
	got := runOK(t, args)
	var out, errs bytes.Buffer
	for _, re := range []string{
		`index public\.items_v_idx: \d+ pages`,
		`(?m)^\| 1 \| fetch \| [0-9.]+ s \| [0-9.]+ s \| [0-9.]+ \|`,
		`(?m)^\| 2 \| analysis \| [0-9.]+ s \| [0-9.]+ s \| [0-9.]+ \|`,
		`ratio analysis / fetch: min [0-9.]+, median [0-9.]+, max [0-9.]+ over 2 runs`,
		`elements 2000, pages \d+`,
		`(?m)^\| primary \| 1 \| without \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| [1-9]\d* \(`,
		`p99 with / without analysis reading on the primary: min [0-9.]+, median [0-9.]+, max [0-9.]+ over 1 pairs`,
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
		`(?m)^\| primary \| 1 \| without \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| [1-9]\d* \(`,
	} {
		if !regexp.MustCompile(re).MatchString(out.String()) {
			t.Errorf("adaptive run's output lacks %s:\n%s", re, out.String())
		}
	}
}

// TestRunStandby runs the standby mode on a small data set: a streaming replica of the private
// cluster is made, a scan reads the index on it, and the query load phases print pairs and a
// median ratio for the analysis reading on the standby, for the adaptive one on the primary
// and for control pairs without an analysis. With at least 2 CPUs and taskset, the servers
// are pinned to halves of the CPUs.
func TestRunStandby(t *testing.T) {
	got := runOK(t, []string{"-dir", dataDir(t), "-rows", "2000", "-dim", "8", "-skip-analysis", "-pairs", "2", "-phase", "3s", "-clients", "2",
		"-standby", "-max-pages-per-second", "5000", "-adaptive", "-adjust-interval", "100ms", "-control"})
	want := []string{
		`standby: a streaming replica made with pg_basebackup -R, port \d+, replayed the primary's position`,
		`one structure scan reading the index on the standby, its buffer cache cold: [0-9.]+ s`,
		`page budget adaptive, 500 to 5000 pages/s`,
		`(?m)^\| standby \| 1 \| without \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| \d+ \(`,
		`(?m)^\| primary \| 1 \| without \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| \d+ \(`,
		`(?m)^\| primary \| 2 \| with \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| \d+ \(`,
		`(?m)^\| standby \| 2 \| with \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| \d+ \(`,
		// Scans completed on the standby, in one phase at least: in a phase of seconds, the
		// exporter's wait for the standby to replay the primary's position may take it all.
		`(?m)^\| standby \| \d \| \w+ \|( [0-9.]+ ms \|){4} [0-9.]+ \| [1-9]\d* \(`,
		`p99 with / without analysis reading on the standby: min [0-9.]+, median [0-9.]+, max [0-9.]+ over 2 pairs; over all their phases, p99 [0-9.]+ ms without and [0-9.]+ ms with \([0-9.]+\)`,
		`p99 with / without analysis reading on the primary: min [0-9.]+, median [0-9.]+, max [0-9.]+ over 2 pairs; over all their phases, p99 [0-9.]+ ms without and [0-9.]+ ms with \([0-9.]+\)`,
		`(?m)^\| control \| 2 \| with \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ ms \| [0-9.]+ \| 0 \(`,
		`p99 ratio of the control pairs \(no analysis in either phase\): min [0-9.]+, median [0-9.]+, max [0-9.]+ over 2 pairs; over all their phases, p99 [0-9.]+ ms without and [0-9.]+ ms with \([0-9.]+\)`,
	}
	if _, err := exec.LookPath("taskset"); err == nil && runtime.NumCPU() >= 2 {
		want = append(want, `CPUs pinned, a model of separate hosts: the primary server \(\d+ processes; its postmaster now on CPUs [0-9,]+\) `+
			`and the query clients on CPUs [0-9,]+; the standby \(\d+ processes; its postmaster now on CPUs [0-9,]+\) and the analysing process on CPUs [0-9,]+`)
	}
	for _, re := range want {
		if !regexp.MustCompile(re).MatchString(got) {
			t.Errorf("output lacks %s:\n%s", re, got)
		}
	}
}

func TestCPUList(t *testing.T) {
	for in, want := range map[string]string{"0": "0", "0-3": "0,1,2,3", "0-1,4,6-7": "0,1,4,6,7"} {
		cpus, err := parseCPUList(in)
		if err != nil || joinCPUs(cpus) != want {
			t.Errorf("parseCPUList(%q) = %v, %v; want %s", in, cpus, err, want)
		}
	}
	if _, err := parseCPUList("0-x"); err == nil {
		t.Error("parseCPUList(\"0-x\") accepted")
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
		{"-standby -dsn postgres://x/y", "-standby: makes a replica of the private cluster, not of -dsn"},
		{"-standby -skip-load", "-standby: measures under the query load, not with -skip-load"},
		{"-pin -dsn postgres://x/y", "-pin: pins the private cluster's server, not that of -dsn"},
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
