package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"
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
	bin, err := PrometheusBinary()
	if err != nil {
		Unavailable(t, fmt.Errorf("prometheus: %w", err))
	}
	return startService(t, "prometheus", configYAML, func(dir, cfg string, port int) *exec.Cmd {
		return exec.Command(bin,
			"--config.file="+cfg,
			"--storage.tsdb.path="+filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
			"--web.enable-lifecycle",
			"--log.level=warn",
		)
	})
}

// StartAlertmanager starts Alertmanager with configYAML, clustering off, and waits for /-/ready.
func StartAlertmanager(t testing.TB, configYAML string) *Service {
	t.Helper()
	bin, err := AlertmanagerBinary()
	if err != nil {
		Unavailable(t, fmt.Errorf("alertmanager: %w", err))
	}
	return startService(t, "alertmanager", configYAML, func(dir, cfg string, port int) *exec.Cmd {
		return exec.Command(bin,
			"--config.file="+cfg,
			"--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
			"--cluster.listen-address=",
			"--log.level=warn",
		)
	})
}

func startService(t testing.TB, name, configYAML string, build func(dir, cfg string, port int) *exec.Cmd) *Service {
	t.Helper()
	dir := t.TempDir()
	cfg := filepath.Join(dir, name+".yml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		t.Fatalf("write %s config: %v", name, err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between lookup and bind
		port, err := FreePort()
		if err != nil {
			t.Fatal(err)
		}
		p, err := startProcess(name, build(dir, cfg, port))
		if err != nil {
			Unavailable(t, err)
		}
		s := &Service{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, Dir: dir, proc: p}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		err = waitHTTP(ctx, s.URL+"/-/ready", p.exited)
		cancel()
		if err == nil {
			t.Cleanup(func() {
				if t.Failed() {
					t.Logf("%s log (tail):\n%s", name, tail(s.Logs(), 40))
				}
				s.Stop()
			})
			return s
		}
		p.stop()
		lastErr = fmt.Errorf("%s: %w\n%s", name, err, tail(p.logs.String(), 30))
	}
	t.Fatal(lastErr)
	return nil
}
