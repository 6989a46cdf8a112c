package main

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// runMainEnv makes the test binary act as the vectorheal binary, so tests run the real
// process (signals, exit codes) without a separate build.
const runMainEnv = "VECTORHEAL_TEST_RUN_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(testenv.Main(m))
}

// vectorheal is a started vectorheal process.
type vectorheal struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	url    string
	exited chan error
}

func startVectorheal(t *testing.T, args ...string) *vectorheal {
	t.Helper()
	cmd := exec.Command(os.Args[0], args...)
	cmd.Env = append(os.Environ(), runMainEnv+"=1")
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
	return v
}

func writeFile(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func httpGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return 0, err.Error()
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

// TestServeReadyMetricsAndSIGTERM runs serve with one reachable and one unreachable target:
// it must become ready, report the unreachable one as down (naming it in the log), keep
// serving, and exit 0 on SIGTERM.
func TestServeReadyMetricsAndSIGTERM(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	deadPort, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := writeFile(t, dir, "vectorheal.yml", fmt.Sprintf(`
state_store:
  dsn: {value: %q}
targets:
  - name: live
    dsn: {value: %q}
  - name: gone
    dsn: {value: "postgres://nobody@127.0.0.1:%d/none?connect_timeout=2"}
webhook:
  bearer_token: {value: hook-token}
`, dsn, dsn, deadPort))
	// Two listen addresses (exporter-toolkit's repeatable --web.listen-address): both serve.
	port2, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	v := startVectorheal(t, "serve", "--config.file", cfg, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port),
		"--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port2))
	v.url = fmt.Sprintf("http://127.0.0.1:%d", port)

	deadline := time.Now().Add(60 * time.Second)
	for {
		if code, _ := httpGet(t, v.url+"/-/ready"); code == 200 {
			break
		}
		select {
		case err := <-v.exited:
			t.Fatalf("vectorheal exited before ready: %v", err)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatal("vectorheal not ready after 60s")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code, body := httpGet(t, v.url+"/-/healthy"); code != 200 {
		t.Errorf("/-/healthy = %d %s", code, body)
	}
	code, body := httpGet(t, v.url+"/metrics")
	if code != 200 {
		t.Fatalf("/metrics = %d", code)
	}
	for _, want := range []string{`vectorheal_up{target="live"} 1`, `vectorheal_up{target="gone"} 0`} {
		if !strings.Contains(body, want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	second := fmt.Sprintf("http://127.0.0.1:%d", port2)
	if code, _ := httpGet(t, second+"/-/ready"); code != 200 {
		t.Errorf("second listen address: /-/ready = %d", code)
	}
	if code, body := httpGet(t, second+"/metrics"); code != 200 || !strings.Contains(body, `vectorheal_up{target="live"} 1`) {
		t.Errorf("second listen address: /metrics = %d", code)
	}
	// Still serving after the failed target was scraped.
	if code, _ := httpGet(t, v.url+"/-/ready"); code != 200 {
		t.Errorf("not ready after scraping a down target: %d", code)
	}
	if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-v.exited:
		if err != nil {
			t.Fatalf("exit after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("vectorheal did not exit within 30s of SIGTERM")
	}
	if log := v.out.String(); !strings.Contains(log, `target=gone`) {
		t.Errorf("log does not name the down target:\n%s", log)
	}
}

func TestConfigCheck(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "good.yml", "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n")
	bad := writeFile(t, dir, "bad.yml", "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n    pool: 3\n")
	var out, errOut bytes.Buffer
	if code := run([]string{"config", "check", good}, &out, &errOut); code != 0 {
		t.Errorf("good config: exit %d, %s", code, errOut.String())
	}
	out.Reset()
	errOut.Reset()
	if code := run([]string{"config", "check", bad}, &out, &errOut); code != 1 {
		t.Errorf("bad config: exit %d", code)
	}
	if want := bad + `:4: targets[0].pool: unknown key "pool"`; !strings.Contains(errOut.String(), want) {
		t.Errorf("bad config message %q lacks %q", errOut.String(), want)
	}
}

// TestConfigCheckRunsServesChecks: config check refuses what serve refuses (secrets that
// cannot be read, a missing or invalid runbook, a token serving two roles) and what would
// keep serve from ever being ready (a receiver without credentials), each problem named; and
// serve refuses the same file with the same message.
func TestConfigCheckRunsServesChecks(t *testing.T) {
	dir := t.TempDir()
	good := writeFile(t, dir, "runbook.yml", "entries:\n  - name: a\n    matchers: ['alertname=\"X\"']\n    steps:\n      - strategy: analyze\n")
	unknown := writeFile(t, dir, "unknown.yml", "entries:\n  - name: a\n    matchers: ['alertname=\"X\"']\n    steps:\n      - strategy: defragment\n")
	base := `state_store:
  dsn: {value: 'postgres://state'}
targets:
  - name: a
    dsn: {value: 'postgres://x'}
alertmanager:
  url: http://am:9093
`
	for _, tc := range []struct {
		name, yml string
		code      int
		want      []string
	}{
		{"complete", base + "webhook: {bearer_token: {value: h}}\nremediation: {runbook: " + good + ", api_token: {value: a}, api_read_token: {value: r}}\n", 0, []string{"OK"}},
		{"admin token unset", base + "webhook: {bearer_token: {value: h}}\nremediation: {runbook: " + good + "}\n", 0,
			[]string{"warning: no remediation.api_token", "OK"}},
		{"unset environment secret", base + "webhook: {bearer_token: {env: VECTORHEAL_TEST_UNSET_TOKEN}}\nremediation: {runbook: " + good + "}\n", 1,
			[]string{"webhook.bearer_token: environment variable VECTORHEAL_TEST_UNSET_TOKEN is not set"}},
		{"unreadable token file", base + "webhook: {bearer_token: {value: h}}\nremediation: {runbook: " + good + ", api_token: {file: " + filepath.Join(dir, "none") + "}}\n", 1,
			[]string{"remediation.api_token: read secret file"}},
		{"unset target DSN", "targets:\n  - name: a\n    dsn: {env: VECTORHEAL_TEST_UNSET_DSN}\n", 1,
			[]string{"dsn: environment variable VECTORHEAL_TEST_UNSET_DSN is not set", `target "a"`}},
		{"unset standby DSN", "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n    standby: {dsn: {env: VECTORHEAL_TEST_UNSET_SB}}\n", 1,
			[]string{"standby.dsn: environment variable VECTORHEAL_TEST_UNSET_SB is not set", `target "a"`}},
		{"unset migrate DSN", "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n    migrate_dsn: {env: VECTORHEAL_TEST_UNSET_MIG}\n", 1,
			[]string{"migrate_dsn: environment variable VECTORHEAL_TEST_UNSET_MIG is not set", `target "a"`}},
		{"missing runbook", base + "webhook: {bearer_token: {value: h}}\nremediation: {runbook: " + filepath.Join(dir, "none.yml") + "}\n", 1,
			[]string{"remediation.runbook: read runbook"}},
		{"runbook with an unknown strategy", base + "webhook: {bearer_token: {value: h}}\nremediation: {runbook: " + unknown + "}\n", 1,
			[]string{"remediation.runbook:", "defragment"}},
		{"webhook token as admin token", base + "webhook: {bearer_token: {value: h}}\nremediation: {runbook: " + good + ", api_token: {value: h}}\n", 1,
			[]string{"remediation.api_token: is the webhook's bearer_token"}},
		{"no receiver credentials", base + "remediation: {runbook: " + good + ", api_token: {value: a}}\n", 1,
			[]string{"serve would never be ready: the webhook receiver has no credentials"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			file := writeFile(t, dir, "vectorheal.yml", tc.yml)
			var out, errOut bytes.Buffer
			code := run([]string{"config", "check", file}, &out, &errOut)
			all := out.String() + errOut.String()
			if code != tc.code {
				t.Errorf("exit %d, want %d:\n%s", code, tc.code, all)
			}
			for _, w := range tc.want {
				if !strings.Contains(all, w) {
					t.Errorf("output lacks %q:\n%s", w, all)
				}
			}
			if tc.code == 0 || strings.Contains(tc.name, "receiver") {
				return
			}
			// serve stops on the same problem before it opens anything.
			out.Reset()
			errOut.Reset()
			if code := run([]string{"serve", "--config.file", file, "--web.listen-address", "127.0.0.1:0"}, &out, &errOut); code != 1 ||
				!strings.Contains(errOut.String(), tc.want[0]) {
				t.Errorf("serve: exit %d, want 1 naming %q:\n%s", code, tc.want[0], errOut.String())
			}
		})
	}
}

// TestReadyNeedsTheReceiver: /-/ready answers 503 with the reason while the receiver cannot
// accept alerts: without credentials, and while the state store does not answer.
func TestReadyNeedsTheReceiver(t *testing.T) {
	pg, err := testenv.StartPostgres(t.Context())
	if err != nil {
		testenv.Unavailable(t, err)
	}
	t.Cleanup(pg.Destroy)
	dsn := pg.DSN("postgres")
	dir := t.TempDir()
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	noCreds := writeFile(t, dir, "nocreds.yml", fmt.Sprintf("state_store: {dsn: {value: %q}}\ntargets: [{name: a, dsn: {value: %q}}]\n", dsn, dsn))
	v := startVectorheal(t, "serve", "--config.file", noCreds, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port))
	body := waitStatus(t, v, http.DefaultClient, url+"/-/ready", 503)
	if !strings.Contains(body, "the webhook receiver has no credentials") {
		t.Errorf("/-/ready without receiver credentials: %q", body)
	}
	if code, _ := httpGet(t, url+"/-/healthy"); code != 200 {
		t.Errorf("/-/healthy: %d", code)
	}
	_ = v.cmd.Process.Kill()
	<-v.exited

	withCreds := writeFile(t, dir, "creds.yml", fmt.Sprintf("state_store: {dsn: {value: %q}}\ntargets: [{name: a, dsn: {value: %q}}]\nwebhook: {bearer_token: {value: h}}\n", dsn, dsn))
	v = startVectorheal(t, "serve", "--config.file", withCreds, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port))
	waitStatus(t, v, http.DefaultClient, url+"/-/ready", 200)
	pg.Stop()
	body = waitStatus(t, v, http.DefaultClient, url+"/-/ready", 503)
	if !strings.Contains(body, "the state store does not answer") {
		t.Errorf("/-/ready with the state store down: %q", body)
	}
	if err := pg.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	waitStatus(t, v, http.DefaultClient, url+"/-/ready", 200)
}

func TestUsageErrorExit2(t *testing.T) {
	var out, errOut bytes.Buffer
	if code := run([]string{"no-such-command"}, &out, &errOut); code != 2 {
		t.Errorf("exit %d, want 2", code)
	}
	if !strings.Contains(errOut.String(), "no-such-command") {
		t.Errorf("message %q does not name the bad command", errOut.String())
	}
}
