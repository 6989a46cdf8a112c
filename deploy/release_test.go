package deploy_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// releaseVersion is the release the VERSION file at the repository root names.
func releaseVersion(t *testing.T) string {
	t.Helper()
	b, err := os.ReadFile("../VERSION")
	if err != nil {
		t.Fatal(err)
	}
	v := strings.TrimSpace(string(b))
	if !regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`).MatchString(v) {
		t.Fatalf("VERSION %q is not a semantic version", v)
	}
	return v
}

// gitOr answers a git question about the checkout, or def when git cannot (the Makefile's
// own fallback).
func gitOr(def string, args ...string) string {
	out, err := exec.Command("git", append([]string{"-C", ".."}, args...)...).Output()
	if err != nil {
		return def
	}
	return strings.TrimSpace(string(out))
}

// TestMakeBuildStampsVersion builds the binary the way a release is built (`make build`) and
// checks that the version, revision, branch and build date reach `vectorheal --version` and
// vectorheal_build_info on /metrics.
func TestMakeBuildStampsVersion(t *testing.T) {
	makeBin, err := exec.LookPath("make")
	if err != nil {
		t.Fatalf("make is needed to build a release: %v", err)
	}
	version := releaseVersion(t)
	revision := gitOr("unknown", "rev-parse", "HEAD")
	branch := gitOr("unknown", "rev-parse", "--abbrev-ref", "HEAD")
	bin := filepath.Join(t.TempDir(), "vectorheal")
	started := time.Now().UTC().Truncate(time.Second)
	if out, err := exec.Command(makeBin, "-C", "..", "build", "BIN="+bin).CombinedOutput(); err != nil {
		t.Fatalf("make build: %v\n%s", err, out)
	}

	out, err := exec.Command(bin, "--version").CombinedOutput()
	if err != nil {
		t.Fatalf("vectorheal --version: %v\n%s", err, out)
	}
	head := fmt.Sprintf("vectorheal, version %s (branch: %s, revision: %s)", version, branch, revision)
	if !strings.HasPrefix(string(out), head) {
		t.Errorf("--version:\n%s\nwant it to start with %q", out, head)
	}
	m := regexp.MustCompile(`build date:\s+(\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("--version shows no build date:\n%s", out)
	}
	date, err := time.Parse(time.RFC3339, string(m[1]))
	if err != nil || date.Before(started) || date.After(time.Now().Add(time.Minute)) {
		t.Errorf("build date %s (%v), want the time of this build (after %s)", m[1], err, started.Format(time.RFC3339))
	}
	if v, _ := exec.Command(bin, "version").CombinedOutput(); !bytes.Equal(v, out) {
		t.Errorf("vectorheal version:\n%s\ndiffers from --version:\n%s", v, out)
	}

	// /metrics: a server with one target that cannot be reached still serves build_info.
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(t.TempDir(), "vectorheal.yml")
	if err := os.WriteFile(cfg, []byte("targets:\n  - name: gone\n    dsn: {value: 'postgres://nobody@127.0.0.1:1/none?connect_timeout=1'}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	var log bytes.Buffer
	cmd := exec.CommandContext(ctx, bin, "serve", "--config.file", cfg, "--web.listen-address", fmt.Sprintf("127.0.0.1:%d", port))
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
	}()
	want := fmt.Sprintf(`vectorheal_build_info{branch=%q,goarch=`, branch)
	wantTail := fmt.Sprintf(`revision=%q,tags="unknown",version=%q} 1`, revision, version)
	var body string
	for ctx.Err() == nil {
		body = get(fmt.Sprintf("http://127.0.0.1:%d/metrics", port))
		if strings.Contains(body, "vectorheal_build_info{") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	line := ""
	for l := range strings.Lines(body) {
		if strings.HasPrefix(l, "vectorheal_build_info{") {
			line = strings.TrimSpace(l)
		}
	}
	if !strings.HasPrefix(line, want) || !strings.HasSuffix(line, wantTail) {
		t.Errorf("build_info on /metrics: %q\nwant %s…%s\nserver log:\n%s", line, want, wantTail, log.String())
	}
}

func get(url string) string {
	res, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return string(b)
}

// TestImagesArePinned: every image the manifests run is the release's own tag, never
// :latest, so a restart never changes what runs.
func TestImagesArePinned(t *testing.T) {
	version := releaseVersion(t)
	files, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	image := regexp.MustCompile(`(?m)^\s*(?:-\s*)?image:\s*(\S+)`)
	seen := 0
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range image.FindAllSubmatch(b, -1) {
			seen++
			if ref := string(m[1]); ref != "ghcr.io/vectorheal/vectorheal:"+version {
				t.Errorf("%s runs image %s, want ghcr.io/vectorheal/vectorheal:%s (the VERSION file)", f, ref, version)
			}
		}
	}
	if seen < 2 {
		t.Errorf("found %d images in deploy/kubernetes, want the exporter's and the replicas'", seen)
	}
}

// TestDockerfileStampsLikeMake: the image's binary is built by the Makefile's build target,
// the one TestMakeBuildStampsVersion checks, so the image carries the same build information.
func TestDockerfileStampsLikeMake(t *testing.T) {
	b, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	run := regexp.MustCompile(`(?m)^RUN .*\bmake build\b.*$`).Find(b)
	if run == nil {
		t.Fatal("deploy/Dockerfile does not build with `make build`")
	}
	if bytes.Contains(b, []byte("-X ")) {
		t.Error("deploy/Dockerfile sets linker variables itself; the Makefile's build target is the one place")
	}
	if !bytes.Contains(b, []byte("COPY . .")) {
		t.Error("deploy/Dockerfile does not copy the repository (the Makefile and VERSION)")
	}
}
