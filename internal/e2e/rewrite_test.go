package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"
)

var testTiming = Timing{ScrapeInterval: 2 * time.Second, EvaluationInterval: 2 * time.Second, MaxFor: 6 * time.Second,
	GroupWait: time.Second, GroupInterval: 2 * time.Second, RepeatInterval: 30 * time.Second, CheckInterval: 2 * time.Second,
	MaxValidateWait: 2 * time.Second, MaxCooldown: 20 * time.Second}

func TestRewriteAlertmanager(t *testing.T) {
	out, err := RewriteAlertmanager("testdata/alertmanager.yml", "http://127.0.0.1:1234/webhook/alertmanager", "/x/token", testTiming)
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Route struct {
			GroupWait      string `yaml:"group_wait"`
			GroupInterval  string `yaml:"group_interval"`
			RepeatInterval string `yaml:"repeat_interval"`
			Routes         []struct {
				GroupWait string `yaml:"group_wait"`
				Receiver  string `yaml:"receiver"`
			} `yaml:"routes"`
		} `yaml:"route"`
		Receivers []struct {
			Name           string `yaml:"name"`
			WebhookConfigs []struct {
				URL          string `yaml:"url"`
				SendResolved bool   `yaml:"send_resolved"`
				HTTPConfig   struct {
					Authorization struct {
						CredentialsFile string `yaml:"credentials_file"`
					} `yaml:"authorization"`
				} `yaml:"http_config"`
			} `yaml:"webhook_configs"`
		} `yaml:"receivers"`
		Templates []string `yaml:"templates"`
	}
	if err := yaml.Unmarshal(out, &c); err != nil {
		t.Fatal(err)
	}
	if c.Route.GroupWait != "1s" || c.Route.GroupInterval != "2s" || c.Route.RepeatInterval != "30s" || c.Route.Routes[0].GroupWait != "1s" {
		t.Errorf("route timings not rewritten: %+v", c.Route)
	}
	wc := c.Receivers[0].WebhookConfigs[0]
	if wc.URL != "http://127.0.0.1:1234/webhook/alertmanager" || wc.HTTPConfig.Authorization.CredentialsFile != "/x/token" || !wc.SendResolved {
		t.Errorf("webhook not rewritten: %+v", wc)
	}
	abs, _ := filepath.Abs("testdata/templates/*.tmpl")
	if c.Templates[0] != abs {
		t.Errorf("template path %q, want %q", c.Templates[0], abs)
	}
}

func TestRewriteAlertmanagerWithoutWebhook(t *testing.T) {
	f := filepath.Join(t.TempDir(), "am.yml")
	if err := os.WriteFile(f, []byte("route:\n  receiver: x\nreceivers:\n  - name: x\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, err := RewriteAlertmanager(f, "http://x", "/t", testTiming)
	if err == nil || !strings.Contains(err.Error(), "no webhook receiver") {
		t.Errorf("err = %v", err)
	}
}

func TestRewriteRules(t *testing.T) {
	dir := t.TempDir()
	files, err := RewriteRules("testdata", dir, testTiming)
	if err != nil {
		t.Fatal(err)
	}
	if len(files) != 1 {
		t.Fatalf("files %v", files)
	}
	var r struct {
		Groups []struct {
			Interval string `yaml:"interval"`
			Rules    []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
				For   string `yaml:"for"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	data, _ := os.ReadFile(files[0])
	if err := yaml.Unmarshal(data, &r); err != nil {
		t.Fatal(err)
	}
	g := r.Groups[0]
	if g.Interval != "2s" || g.Rules[0].For != "" || g.Rules[1].For != "6s" || g.Rules[2].For != "1s" || g.Rules[1].Expr != "vector(1) > 0" {
		t.Errorf("rewritten group: %+v", g)
	}
}

func TestRewriteRunbook(t *testing.T) {
	out, err := RewriteRunbook("testdata/runbook.yml", testTiming)
	if err != nil {
		t.Fatal(err)
	}
	s := string(out)
	for _, want := range []string{"cooldown: 20s", "wait: 2s", `matchers: ['alertname="PgvectorHNSWDeadTuplesPending"']`} {
		if !strings.Contains(s, want) {
			t.Errorf("rewritten runbook lacks %q:\n%s", want, s)
		}
	}
	if strings.Contains(s, "1h") || strings.Contains(s, "1m") {
		t.Errorf("long durations left:\n%s", s)
	}
}

func TestFloor(t *testing.T) {
	if got := testTiming.Floor(); got != 7*time.Second {
		t.Errorf("floor %s, want 6+1 = 7s", got)
	}
	if got := testTiming.Bound(); got != 15*time.Second {
		t.Errorf("bound %s, want 2+2+2*2+7 = 15s", got)
	}
}
