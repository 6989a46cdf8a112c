package e2e

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/vectorheal/vectorheal/internal/shard"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// Vectorheal is one `vectorheal serve` process of the stack.
type Vectorheal struct {
	Name    string // replica name, e.g. "vectorheal-1"
	URL     string // http://127.0.0.1:PORT
	Config  string // path of its vectorheal.yml
	LogFile string // its output is appended there too
	// Measures says whether it runs the background checks and is scraped.
	Measures bool
	// Shard is the part of the indexes it measures when Config.Shards > 1; the zero value
	// otherwise.
	Shard shard.Shard

	bin      string
	addr     string
	args     []string // more flags of serve
	logLevel string   // --log.level; debug when empty

	mu     sync.Mutex
	cmd    *exec.Cmd
	logs   *lockedBuffer
	exited chan struct{}
}

type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.buf.Len() > 8<<20 { // bounded: a long demo must not grow without end
		b.buf.Reset()
		b.buf.WriteString("[earlier output dropped]\n")
	}
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

// NewVectorheal prepares a `vectorheal serve` of bin named name on config, listening on a
// free port, its output appended to logFile, at logLevel (--log.level; debug when empty), with
// more flags args. Start starts it.
func NewVectorheal(bin, name, config, logFile, logLevel string, args ...string) (*Vectorheal, error) {
	port, err := testenv.FreePort()
	if err != nil {
		return nil, err
	}
	return &Vectorheal{Name: name, bin: bin, Config: config, LogFile: logFile, logLevel: logLevel, args: args,
		addr: fmt.Sprintf("127.0.0.1:%d", port), URL: fmt.Sprintf("http://127.0.0.1:%d", port)}, nil
}

// Start starts the process and waits until /-/ready answers.
func (v *Vectorheal) Start(ctx context.Context) error {
	v.mu.Lock()
	if v.logs == nil {
		v.logs = &lockedBuffer{}
	}
	fmt.Fprintf(v.logs, "--- start %s\n", time.Now().Format(time.RFC3339))
	level := v.logLevel
	if level == "" {
		level = "debug"
	}
	cmd := exec.Command(v.bin, append([]string{"serve", "--config.file", v.Config, "--web.listen-address", v.addr, "--log.level", level}, v.args...)...)
	var out io.Writer = v.logs
	var logFile *os.File
	if v.LogFile != "" {
		f, err := os.OpenFile(v.LogFile, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
		if err != nil {
			v.mu.Unlock()
			return err
		}
		logFile = f
		out = io.MultiWriter(v.logs, f)
	}
	cmd.Stdout, cmd.Stderr = out, out
	// Its own process group: a Ctrl-C meant for the caller reaches it only through Stop.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		if logFile != nil {
			logFile.Close()
		}
		v.mu.Unlock()
		return fmt.Errorf("start %s: %w", v.Name, err)
	}
	exited := make(chan struct{})
	go func() {
		_ = cmd.Wait() // returns after the output is copied
		if logFile != nil {
			logFile.Close()
		}
		close(exited)
	}()
	v.cmd, v.exited = cmd, exited
	v.mu.Unlock()

	deadline := time.Now().Add(90 * time.Second)
	client := &http.Client{Timeout: 2 * time.Second}
	for {
		resp, err := client.Get(v.URL + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return nil
			}
		}
		select {
		case <-exited:
			return fmt.Errorf("%s exited before it was ready:\n%s", v.Name, tail(v.Logs(), 40))
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s not ready after 90s:\n%s", v.Name, tail(v.Logs(), 40))
		}
	}
}

// Stop sends SIGTERM and waits for a clean exit (SIGKILL after 30s).
func (v *Vectorheal) Stop() error { return v.signal(syscall.SIGTERM, 30*time.Second) }

// Kill ends the process with SIGKILL, as a crash would: nothing is cleaned up.
func (v *Vectorheal) Kill() error { return v.signal(syscall.SIGKILL, 10*time.Second) }

func (v *Vectorheal) signal(sig syscall.Signal, grace time.Duration) error {
	v.mu.Lock()
	cmd, exited := v.cmd, v.exited
	v.mu.Unlock()
	if cmd == nil {
		return nil
	}
	select {
	case <-exited:
		return nil
	default:
	}
	if err := cmd.Process.Signal(sig); err != nil && !errors.Is(err, os.ErrProcessDone) {
		return err
	}
	select {
	case <-exited:
		return nil
	case <-time.After(grace):
		_ = cmd.Process.Kill()
		<-exited
		return fmt.Errorf("%s did not exit within %s of %s", v.Name, grace, sig)
	}
}

// Running reports whether the process is alive.
func (v *Vectorheal) Running() bool {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.exited == nil {
		return false
	}
	select {
	case <-v.exited:
		return false
	default:
		return true
	}
}

// Pid is the process id of the running process, 0 when it is not running. vectorheal names
// its repair runner after it (hostname-pid).
func (v *Vectorheal) Pid() int {
	v.mu.Lock()
	defer v.mu.Unlock()
	if v.cmd == nil || v.cmd.Process == nil {
		return 0
	}
	return v.cmd.Process.Pid
}

// Logs returns everything the process wrote so far, over restarts.
func (v *Vectorheal) Logs() string {
	if v.logs == nil {
		return ""
	}
	return v.logs.String()
}

// LogTail returns the last n lines the process wrote, for error messages.
func (v *Vectorheal) LogTail(n int) string { return tail(v.Logs(), n) }

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
