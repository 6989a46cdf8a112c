package deploy_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

const installDeps = "../scripts/install-deps.sh"

// TestInstallDepsDetectsPlatform checks scripts/install-deps.sh without installing anything: it
// parses (bash -n), and its --detect dry check gives each supported system its own packages
// and stops on any other with an error naming the system and what is supported.
func TestInstallDepsDetectsPlatform(t *testing.T) {
	if out, err := exec.Command("bash", "-n", installDeps).CombinedOutput(); err != nil {
		t.Fatalf("bash -n: %v\n%s", err, out)
	}
	dir := t.TempDir()
	for _, c := range []struct {
		name, osRelease string
		ok              bool
		want            []string
	}{
		{"debian 12", "PRETTY_NAME=\"Debian GNU/Linux 12 (bookworm)\"\nID=debian\nVERSION_ID=\"12\"\n", true,
			[]string{"packages: postgresql-15 postgresql-contrib postgresql-server-dev-15 prometheus prometheus-alertmanager", "sid source package"}},
		{"ubuntu 24.04", "PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nID=ubuntu\nID_LIKE=debian\nVERSION_ID=\"24.04\"\n", true,
			[]string{"packages: postgresql-16 postgresql-contrib postgresql-server-dev-16 prometheus prometheus-alertmanager", "resolute source package"}},
		{"ubuntu 22.04", "PRETTY_NAME=\"Ubuntu 22.04.4 LTS\"\nID=ubuntu\nVERSION_ID=\"22.04\"\n", false,
			[]string{"unsupported system: Ubuntu 22.04.4 LTS", "supported: Debian 12 (PostgreSQL 15) and Ubuntu 24.04 (PostgreSQL 16)"}},
		{"debian 13", "ID=debian\nVERSION_ID=\"13\"\n", false, []string{"unsupported system: debian 13"}},
		{"fedora", "PRETTY_NAME=\"Fedora Linux 40\"\nID=fedora\nVERSION_ID=40\n", false, []string{"unsupported system: Fedora Linux 40", "VECTORHEAL_PG_BIN"}},
	} {
		f := filepath.Join(dir, strings.ReplaceAll(c.name, " ", "-"))
		if err := os.WriteFile(f, []byte(c.osRelease), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command("bash", installDeps, "--detect")
		cmd.Env = append(os.Environ(), "VECTORHEAL_OS_RELEASE="+f)
		out, err := cmd.CombinedOutput()
		if (err == nil) != c.ok {
			t.Errorf("%s: exit error %v, want success %v\n%s", c.name, err, c.ok, out)
		}
		for _, w := range c.want {
			if !strings.Contains(string(out), w) {
				t.Errorf("%s: output lacks %q:\n%s", c.name, w, out)
			}
		}
	}
}
