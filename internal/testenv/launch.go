package testenv

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// LaunchPrometheus starts Prometheus like StartPrometheus but without a test: its files go to
// dir, and the caller stops it with Stop. For programs such as the demo.
func LaunchPrometheus(ctx context.Context, dir, configYAML string, flags ...string) (*Service, error) {
	bin, err := PrometheusBinary()
	if err != nil {
		return nil, fmt.Errorf("prometheus: %w", err)
	}
	return launchService(ctx, "prometheus", dir, configYAML, func(cfg string, port int) *exec.Cmd {
		return exec.Command(bin, append([]string{
			"--config.file=" + cfg,
			"--storage.tsdb.path=" + filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:" + strconv.Itoa(port),
			"--web.enable-lifecycle",
			"--log.level=warn",
		}, flags...)...)
	})
}

// LaunchAlertmanager starts Alertmanager like StartAlertmanager (clustering off) but without a
// test: its files go to dir, and the caller stops it with Stop.
func LaunchAlertmanager(ctx context.Context, dir, configYAML string) (*Service, error) {
	bin, err := AlertmanagerBinary()
	if err != nil {
		return nil, fmt.Errorf("alertmanager: %w", err)
	}
	return launchService(ctx, "alertmanager", dir, configYAML, func(cfg string, port int) *exec.Cmd {
		return exec.Command(bin,
			"--config.file="+cfg,
			"--storage.path="+filepath.Join(dir, "data"),
			"--web.listen-address=127.0.0.1:"+strconv.Itoa(port),
			"--cluster.listen-address=",
			"--log.level=warn",
		)
	})
}

func launchService(ctx context.Context, name, dir, configYAML string, build func(cfg string, port int) *exec.Cmd) (*Service, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("%s dir: %w", name, err)
	}
	cfg := filepath.Join(dir, name+".yml")
	if err := os.WriteFile(cfg, []byte(configYAML), 0o644); err != nil {
		return nil, fmt.Errorf("write %s config: %w", name, err)
	}
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ { // a free port can be taken between lookup and bind
		port, err := FreePort()
		if err != nil {
			return nil, err
		}
		cmd := build(cfg, port)
		// Its own process group, so a Ctrl-C meant for the caller reaches it only through Stop.
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
		p, err := startProcess(name, cmd)
		if err != nil {
			return nil, err
		}
		s := &Service{URL: fmt.Sprintf("http://127.0.0.1:%d", port), Port: port, Dir: dir, proc: p}
		wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		err = waitHTTP(wctx, s.URL+"/-/ready", p.exited)
		cancel()
		if err == nil {
			return s, nil
		}
		p.stop()
		lastErr = fmt.Errorf("%s: %w\n%s", name, err, tail(p.logs.String(), 30))
	}
	return nil, lastErr
}
