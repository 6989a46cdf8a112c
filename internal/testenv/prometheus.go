package testenv

import (
	"context"
	"fmt"
	"os"
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

// PrometheusBinary and AlertmanagerBinary find the binaries (Debian names first).
func PrometheusBinary() (string, error) {
	return lookBin(os.Getenv("VECTORHEAL_PROMETHEUS"), "prometheus")
}

// PromtoolBinary finds promtool.
func PromtoolBinary() (string, error) { return lookBin(os.Getenv("VECTORHEAL_PROMTOOL"), "promtool") }

// AlertmanagerBinary finds Alertmanager (Debian calls it prometheus-alertmanager).
func AlertmanagerBinary() (string, error) {
	return lookBin(os.Getenv("VECTORHEAL_ALERTMANAGER"), "prometheus-alertmanager", "alertmanager")
}

// AmtoolBinary finds amtool.
func AmtoolBinary() (string, error) { return lookBin(os.Getenv("VECTORHEAL_AMTOOL"), "amtool") }

// StartPrometheus starts Prometheus with configYAML (rule_files paths should be absolute)
// and waits for /-/ready. It is stopped when the test ends; its log is shown if the test fails.
func StartPrometheus(t testing.TB, configYAML string) *Service {
	t.Helper()
	if _, err := PrometheusBinary(); err != nil {
		Unavailable(t, fmt.Errorf("prometheus: %w", err))
	}
	return started(t, "prometheus")(LaunchPrometheus(context.Background(), t.TempDir(), configYAML))
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
