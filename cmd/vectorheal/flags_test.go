package main

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestConfigFileFlags: --config.file, its short -c and the earlier --config all name the file.
func TestConfigFileFlags(t *testing.T) {
	missing := filepath.Join(t.TempDir(), "none.yml")
	for _, flag := range []string{"--config.file", "-c", "--config"} {
		for _, cmd := range []string{"migrate", "serve"} {
			var out, errOut bytes.Buffer
			if code := run([]string{cmd, flag, missing}, &out, &errOut); code != 1 {
				t.Errorf("%s %s: exit %d, want 1 (%s)", cmd, flag, code, errOut.String())
			}
			if !strings.Contains(errOut.String(), missing) {
				t.Errorf("%s %s: the error does not name %s:\n%s", cmd, flag, missing, errOut.String())
			}
		}
	}
}

// TestOutputFlag: check takes --output like the client commands, and --format as before.
func TestOutputFlag(t *testing.T) {
	for _, args := range [][]string{{"--output", "json"}, {"-o", "json"}, {"--format", "json"}} {
		var out, errOut bytes.Buffer
		// --probe.k=0 stops check after parsing, before it connects anywhere.
		code := run(append([]string{"check", "--dsn", "postgres://127.0.0.1:1/x", "--probe.k", "0"}, args...), &out, &errOut)
		if code != 2 || !strings.Contains(errOut.String(), "must be positive") {
			t.Errorf("check %v: exit %d, %s", args, code, errOut.String())
		}
	}
	var out, errOut bytes.Buffer
	if code := run([]string{"check", "--dsn", "postgres://x", "--output", "yaml"}, &out, &errOut); code != 2 ||
		!strings.Contains(errOut.String(), "yaml") {
		t.Errorf("--output yaml: exit %d, %s", code, errOut.String())
	}
}

// deadTargetConfig is a configuration serve can start with without any database: one target
// that is down, no state store.
func deadTargetConfig(t *testing.T, extra string) string {
	t.Helper()
	deadPort, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	return writeFile(t, t.TempDir(), "vectorheal.yml", fmt.Sprintf(`%s
targets:
  - name: gone
    dsn: {value: "postgres://nobody@127.0.0.1:%d/none?connect_timeout=2"}
`, extra, deadPort))
}

func waitServing(t *testing.T, v *vectorheal, url string) {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := httpGet(t, url+"/-/ready"); code == 200 {
			return
		}
		select {
		case err := <-v.exited:
			t.Fatalf("vectorheal exited before ready: %v\n%s", err, v.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("vectorheal not ready at %s after 60s", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestServeListensWhereTheConfigSays: without --web.listen-address, listen_address applies.
func TestServeListensWhereTheConfigSays(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := deadTargetConfig(t, fmt.Sprintf("listen_address: 127.0.0.1:%d", port))
	v := startVectorheal(t, "serve", "--config.file", cfg)
	waitServing(t, v, fmt.Sprintf("http://127.0.0.1:%d", port))
}

// TestServeSystemdSocket hands serve a listening socket the way systemd's socket activation
// does (fd 3, LISTEN_FDS, LISTEN_PID of the process itself) and expects it served there.
func TestServeSystemdSocket(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfg := deadTargetConfig(t, "")
	// LISTEN_PID must be the pid of the process that reads it: a shell exports its own pid
	// and replaces itself with vectorheal, keeping the pid.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$ exec "$@"`, "sh",
		os.Args[0], "serve", "--config.file", cfg, "--web.systemd-socket")
	cmd.Env = append(os.Environ(), runMainEnv+"=1", "LISTEN_FDS=1")
	cmd.ExtraFiles = []*os.File{f}
	out := &bytes.Buffer{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	v := &vectorheal{cmd: cmd, out: out, exited: make(chan error, 1)}
	go func() { v.exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		if t.Failed() {
			t.Logf("vectorheal output:\n%s", out.String())
		}
	})
	waitServing(t, v, "http://"+l.Addr().String())
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-v.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("no exit within 30s of SIGTERM")
	}
}

// TestServeShardBy: --exporter.shard-by takes index or target, and anything else stops serve
// with a message that names the flag and the values it takes, as does VECTORHEAL_SHARD_BY.
// Sharded by target, each of two shards says so in vectorheal_shard_info and only the one that
// owns the configured target publishes anything of it.
func TestServeShardBy(t *testing.T) {
	cfg := deadTargetConfig(t, "")
	upOf := 0
	for i := range 2 {
		port, err := testenv.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		url := fmt.Sprintf("http://127.0.0.1:%d", port)
		v := startVectorheal(t, "serve", "--config.file", cfg, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port),
			"--exporter.shard", fmt.Sprint(i), "--exporter.total-shards", "2", "--exporter.shard-by", "target")
		waitServing(t, v, url)
		_, body := httpGet(t, url+"/metrics")
		if want := fmt.Sprintf(`vectorheal_shard_info{by="target",shard="%d",total_shards="2"} 1`, i); !strings.Contains(body, want) {
			t.Errorf("shard %d: no %s on /metrics", i, want)
		}
		if strings.Contains(body, `vectorheal_up{target="gone"}`) {
			upOf++
		}
	}
	if upOf != 1 {
		t.Errorf("%d of 2 shards by target publish vectorheal_up of the one target, want 1", upOf)
	}
	var out, errOut bytes.Buffer
	code := run([]string{"serve", "--config.file", cfg, "--exporter.total-shards", "2", "--exporter.shard-by", "database"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), `--exporter.shard-by: shard by \"database\": must be index or target`) {
		t.Errorf("--exporter.shard-by database: exit %d, %s", code, errOut.String())
	}
	t.Setenv("VECTORHEAL_SHARD_BY", "tenant")
	errOut.Reset()
	code = run([]string{"serve", "--config.file", cfg, "--exporter.total-shards", "2"}, &out, &errOut)
	if code != 1 || !strings.Contains(errOut.String(), `shard by \"tenant\": must be index or target`) {
		t.Errorf("VECTORHEAL_SHARD_BY=tenant: exit %d, %s", code, errOut.String())
	}
}
