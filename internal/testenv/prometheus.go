package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// Service is a started Prometheus or Alertmanager.
type Service struct {
	URL  string // http://127.0.0.1:PORT
	Port int
	Dir  string
	proc *process
}

// Logs returns the service's output so far.
func (s *Service) Logs() string { return s.proc.logs.String() }

// Stop stops the service; tests need not call it, cleanup does.
func (s *Service) Stop() { s.proc.stop() }

// PrometheusBinary finds Prometheus: $VECTORHEAL_PROMETHEUS, else prometheus on the PATH.
func PrometheusBinary() (string, error) { return binary("VECTORHEAL_PROMETHEUS", "prometheus") }

// PromtoolBinary finds promtool: $VECTORHEAL_PROMTOOL, else promtool on the PATH.
func PromtoolBinary() (string, error) { return binary("VECTORHEAL_PROMTOOL", "promtool") }

// AlertmanagerBinary finds Alertmanager: $VECTORHEAL_ALERTMANAGER, else the PATH's
// prometheus-alertmanager (Debian's name) or alertmanager.
func AlertmanagerBinary() (string, error) {
	return binary("VECTORHEAL_ALERTMANAGER", "prometheus-alertmanager", "alertmanager")
}

// AmtoolBinary finds amtool: $VECTORHEAL_AMTOOL, else amtool on the PATH.
func AmtoolBinary() (string, error) { return binary("VECTORHEAL_AMTOOL", "amtool") }

// binary returns the executable the environment variable env names when it is set, else the
// first of names on the PATH. A set variable that names no executable is an error, never a
// fall back to the PATH: `make test` points these variables at a second Prometheus stack,
// and a typo must not quietly test the first one again.
func binary(env string, names ...string) (string, error) {
	if p := os.Getenv(env); p != "" {
		b, err := lookBin(p)
		if err != nil {
			return "", fmt.Errorf("%s=%s is not an executable file", env, p)
		}
		return b, nil
	}
	return lookBin(names...)
}

// StartPrometheus starts Prometheus with configYAML (rule_files paths should be absolute)
// and flags added to its command line (e.g. --enable-feature=native-histograms), and waits
// for /-/ready. It is stopped when the test ends; its log is shown if the test fails.
func StartPrometheus(t testing.TB, configYAML string, flags ...string) *Service {
	t.Helper()
	if _, err := PrometheusBinary(); err != nil {
		Unavailable(t, fmt.Errorf("prometheus: %w", err))
	}
	return started(t, "prometheus")(LaunchPrometheus(context.Background(), t.TempDir(), configYAML, flags...))
}

// StartAlertmanager starts Alertmanager with configYAML, clustering off, and waits for /-/ready.
func StartAlertmanager(t testing.TB, configYAML string) *Service {
	t.Helper()
	if _, err := AlertmanagerBinary(); err != nil {
		Unavailable(t, fmt.Errorf("alertmanager: %w", err))
	}
	return started(t, "alertmanager")(LaunchAlertmanager(context.Background(), t.TempDir(), configYAML))
}

// started ties a launched service to the test: a failed launch fails it, and at its end the
// service is stopped, its log shown if the test failed.
func started(t testing.TB, name string) func(*Service, error) *Service {
	return func(s *Service, err error) *Service {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("%s log (tail):\n%s", name, tail(s.Logs(), 40))
			}
			s.Stop()
		})
		return s
	}
}

// PrometheusVersion is the major and minor version of the Prometheus PrometheusBinary finds,
// from its --version output ("prometheus, version 3.16.0 (branch: ...)"): tests configure
// what changed between releases (e.g. native histograms, a feature flag up to 3.7 and a scrape
// setting from 3.8 on) by it.
func PrometheusVersion() (major, minor int, err error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return 0, 0, err
	}
	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		return 0, 0, fmt.Errorf("%s --version: %w", bin, err)
	}
	if _, err := fmt.Sscanf(string(out), "prometheus, version %d.%d", &major, &minor); err != nil {
		return 0, 0, fmt.Errorf("%s --version: no version in %q: %w", bin, firstLine(string(out)), err)
	}
	return major, minor, nil
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
