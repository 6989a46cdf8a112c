// Package testenv starts real, private instances of the services vectorheal's tests need:
// a PostgreSQL cluster with pgvector, Prometheus and Alertmanager, each on a free loopback port
// in its own temporary directory, so tests never depend on what a machine left running.
//
// A test that needs a service fails when the service's binaries are missing. Setting
// VECTORHEAL_SKIP_INTEGRATION=1 makes such tests skip instead; CI never sets it.
package testenv

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// SkipEnv is the environment variable that turns missing services into skips.
const SkipEnv = "VECTORHEAL_SKIP_INTEGRATION"

// Unavailable handles a service that cannot be started: it skips when the user opted out
// through SkipEnv and fails otherwise.
func Unavailable(t testing.TB, err error) {
	t.Helper()
	if os.Getenv(SkipEnv) == "1" {
		t.Skipf("%s=1 and a service is unavailable: %v", SkipEnv, err)
	}
	t.Fatalf("%v\n(run scripts/install-deps.sh, or set %s=1 to skip integration tests)", err, SkipEnv)
}

// PositiveInt is the positive whole number in the environment variable name, def when it is
// unset: the size of a benchmark, which a run may change. Any other value fails t.
func PositiveInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s=%q: want a positive whole number", name, v)
	}
	return n
}

// FreePort returns a loopback TCP port that was free a moment ago.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, fmt.Errorf("find free port: %w", err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// lookBin returns the first candidate that is an executable file, or an error naming them.
func lookBin(candidates ...string) (string, error) {
	for _, c := range candidates {
		if c == "" {
			continue
		}
		if strings.Contains(c, "/") {
			if st, err := os.Stat(c); err == nil && !st.IsDir() && st.Mode()&0o111 != 0 {
				return c, nil
			}
			continue
		}
		if p, err := exec.LookPath(c); err == nil {
			return p, nil
		}
	}
	return "", fmt.Errorf("none of %s found", strings.Join(candidates, ", "))
}

// logBuffer keeps a process's output for showing when a test fails.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.buf.Len() > 4<<20 { // keep memory bounded on chatty processes
		l.buf.Reset()
		l.buf.WriteString("[earlier output dropped]\n")
	}
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// tail returns the last n lines of s.
func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// waitHTTP polls url until it answers 200 or ctx ends.
func waitHTTP(ctx context.Context, url string, exited <-chan struct{}) error {
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("%s not ready: %w", url, ctx.Err())
		case <-exited:
			return errors.New("process exited before it was ready")
		case <-time.After(100 * time.Millisecond):
		}
	}
}

// process is a started child with its output captured.
type process struct {
	name   string
	cmd    *exec.Cmd
	logs   *logBuffer
	exited chan struct{}
}

func startProcess(name string, cmd *exec.Cmd) (*process, error) {
	p := &process{name: name, cmd: cmd, logs: &logBuffer{}, exited: make(chan struct{})}
	cmd.Stdout = p.logs
	cmd.Stderr = p.logs
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", name, err)
	}
	go func() {
		_ = cmd.Wait()
		close(p.exited)
	}()
	return p, nil
}

// stop sends SIGTERM and waits, then kills after a grace period.
func (p *process) stop() {
	select {
	case <-p.exited:
		return
	default:
	}
	_ = p.cmd.Process.Signal(os.Interrupt)
	select {
	case <-p.exited:
	case <-time.After(10 * time.Second):
		_ = p.cmd.Process.Kill()
		<-p.exited
	}
}
