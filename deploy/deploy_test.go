// Tests of the deployment files: the example configuration is accepted by vectorheal, the
// Prometheus configuration by promtool, the Kubernetes manifests agree with each other, and the
// checked-in PrometheusRule and the Helm chart's rule groups are what rules/*.yml generate
// (`make deploy-rules` rewrites them).
package deploy_test

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/deploy/rulegen"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

var (
	update     = flag.Bool("update", false, "rewrite the files generated from ../rules/*.yml and ../deploy/runbook.yml")
	grafanaURL = flag.String("grafana-url", "", "with -update: the Grafana address of the alerts' dashboard links in kubernetes/prometheusrule.yaml (default: the one it was generated for)")
)

const (
	prometheusRuleFile = "kubernetes/prometheusrule.yaml"
	chartGroupsFile    = "helm/vectorheal/files/rule-groups.yaml"
	chartRunbookFile   = "helm/vectorheal/files/runbook.yml"
)

// TestPrometheusRuleIsCurrent checks the files generated from rules/*.yml (and the chart's
// copy of the default runbook) against what generation gives now; -update rewrites them.
// The PrometheusRule is regenerated for the Grafana address its header names, so a copy made
// for another Grafana (`make deploy-rules GRAFANA_URL=...`) stays current.
func TestPrometheusRuleIsCurrent(t *testing.T) {
	old, err := os.ReadFile(prometheusRuleFile)
	if err != nil && !*update {
		t.Fatalf("%v (generate it with `make deploy-rules`)", err)
	}
	u := rulegen.GrafanaURLOf(old)
	if *grafanaURL != "" {
		u = *grafanaURL
	}
	rule, err := rulegen.PrometheusRule("../rules", u)
	if err != nil {
		t.Fatal(err)
	}
	groups, err := rulegen.ChartGroups("../rules")
	if err != nil {
		t.Fatal(err)
	}
	runbook, err := os.ReadFile("runbook.yml")
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][]byte{prometheusRuleFile: rule, chartGroupsFile: groups, chartRunbookFile: runbook}
	for _, f := range []string{prometheusRuleFile, chartGroupsFile, chartRunbookFile} {
		if *update {
			if err := os.WriteFile(f, want[f], 0o644); err != nil {
				t.Fatal(err)
			}
			continue
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatalf("%v (generate it with `make deploy-rules`)", err)
		}
		if !bytes.Equal(got, want[f]) {
			t.Errorf("deploy/%s is stale: rules/ or deploy/runbook.yml changed since it was generated; run `make deploy-rules` and commit it", f)
		}
	}
}

// TestPrometheusRuleGrafanaURL: generation points every dashboard link, and only those, at
// the Grafana address asked for, and refuses an address a path cannot be appended to.
func TestPrometheusRuleGrafanaURL(t *testing.T) {
	def, err := rulegen.PrometheusRule("../rules", rulegen.DefaultGrafanaURL)
	if err != nil {
		t.Fatal(err)
	}
	other, err := rulegen.PrometheusRule("../rules", "https://grafana.example.com/sub/")
	if err != nil {
		t.Fatal(err)
	}
	links := bytes.Count(def, []byte("dashboard_url: "+rulegen.DefaultGrafanaURL+"/d/"))
	if links == 0 || bytes.Count(def, []byte(rulegen.DefaultGrafanaURL)) != links+1 { // +1: the header
		t.Fatalf("%d dashboard links to the default Grafana, %d mentions", links, bytes.Count(def, []byte(rulegen.DefaultGrafanaURL)))
	}
	if n := bytes.Count(other, []byte("dashboard_url: https://grafana.example.com/sub/d/")); n != links {
		t.Errorf("%d of %d dashboard links point at the Grafana asked for", n, links)
	}
	if bytes.Contains(other, []byte(rulegen.DefaultGrafanaURL)) {
		t.Error("the default Grafana address is left in a file generated for another")
	}
	if got := rulegen.GrafanaURLOf(other); got != "https://grafana.example.com/sub/" {
		t.Errorf("GrafanaURLOf = %q", got)
	}
	for _, bad := range []string{"grafana:3000", "ftp://grafana", "http://grafana/?orgId=1", "https://"} {
		if _, err := rulegen.PrometheusRule("../rules", bad); err == nil {
			t.Errorf("grafana URL %q accepted", bad)
		}
	}
}

// TestPrometheusRuleLoadsInPromtool checks the generated groups are valid rules for Prometheus:
// the spec is written out as a plain rule file and given to promtool check rules.
func TestPrometheusRuleLoadsInPromtool(t *testing.T) {
	promtool, err := testenv.PromtoolBinary()
	if err != nil {
		testenv.Unavailable(t, err)
	}
	data, err := os.ReadFile(prometheusRuleFile)
	if err != nil {
		t.Fatal(err)
	}
	var m struct {
		Kind string
		Spec struct {
			Groups []any `yaml:"groups"`
		}
	}
	if err := yaml.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	if m.Kind != "PrometheusRule" || len(m.Spec.Groups) == 0 {
		t.Fatalf("kind %q with %d groups", m.Kind, len(m.Spec.Groups))
	}
	out, err := yaml.Marshal(map[string]any{"groups": m.Spec.Groups})
	if err != nil {
		t.Fatal(err)
	}
	f := filepath.Join(t.TempDir(), "rules.yml")
	if err := os.WriteFile(f, out, 0o644); err != nil {
		t.Fatal(err)
	}
	if b, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, b)
	}
}

func TestExampleConfigIsAccepted(t *testing.T) {
	c, err := config.Load("vectorheal.yml")
	if err != nil {
		t.Fatalf("deploy/vectorheal.yml: %v", err)
	}
	if len(c.Targets) == 0 || !c.StateStore.DSN.IsSet() || c.Remediation.Runbook == "" || c.Alertmanager.URL == "" || !c.Webhook.BearerToken.IsSet() {
		t.Errorf("the example leaves out a part operators need: %+v", c)
	}
	// Secrets stay out of the file.
	for _, s := range []config.Secret{c.StateStore.DSN, c.Targets[0].DSN, c.Webhook.BearerToken} {
		if s.Value != "" {
			t.Errorf("the example has an inline secret %q", s.Value)
		}
	}
}

// TestKubernetesConfigIsAccepted decodes both configurations embedded in the ConfigMap: the
// exporting instance's runs the background checks, the replicas' does not.
func TestKubernetesConfigIsAccepted(t *testing.T) {
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	readYAML(t, "kubernetes/configmap.yaml", &cm)
	for key, measures := range map[string]bool{"vectorheal.yml": true, "vectorheal-replica.yml": false} {
		c, err := config.Parse("kubernetes/configmap.yaml:data."+key, []byte(cm.Data[key]))
		if err != nil {
			t.Fatal(err)
		}
		e := c.Exporter
		if got := !e.Structure.Disabled && !e.Recall.Disabled && !e.Drift.Disabled; got != measures {
			t.Errorf("%s runs the background checks: %v, want %v", key, got, measures)
		}
	}
}

func TestPrometheusConfigIsAccepted(t *testing.T) {
	promtool, err := testenv.PromtoolBinary()
	if err != nil {
		testenv.Unavailable(t, err)
	}
	// promtool resolves rule_files; point them at the repository's rules.
	data, err := os.ReadFile("prometheus/prometheus.yml")
	if err != nil {
		t.Fatal(err)
	}
	rules, err := filepath.Abs("../rules")
	if err != nil {
		t.Fatal(err)
	}
	cfg := strings.Replace(string(data), "/etc/prometheus/rules/vectorheal/", rules+"/", 1)
	if cfg == string(data) {
		t.Fatal("prometheus.yml no longer names /etc/prometheus/rules/vectorheal/")
	}
	f := filepath.Join(t.TempDir(), "prometheus.yml")
	if err := os.WriteFile(f, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(promtool, "check", "config", f).CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check config: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "rules found") {
		t.Errorf("promtool found no rules through rule_files:\n%s", out)
	}
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// TestKubernetesManifestsAgree checks what kubectl would only find at run time: every file
// of the kustomization exists, probes use the endpoints vectorheal serves, the Secret and
// ConfigMaps referenced are the documented ones, and the config's paths are mounted.
func TestKubernetesManifestsAgree(t *testing.T) {
	var k struct {
		Resources []string `yaml:"resources"`
	}
	readYAML(t, "kubernetes/kustomization.yaml", &k)
	entries, err := filepath.Glob("kubernetes/*.yaml")
	if err != nil {
		t.Fatal(err)
	}
	listed := map[string]bool{}
	for _, r := range k.Resources {
		listed[r] = true
		if _, err := os.Stat(filepath.Join("kubernetes", r)); err != nil {
			t.Errorf("kustomization.yaml lists %s: %v", r, err)
		}
	}
	for _, e := range entries {
		if b := filepath.Base(e); b != "kustomization.yaml" && !listed[b] {
			t.Errorf("%s is not listed in kustomization.yaml", e)
		}
	}

	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	readYAML(t, "kubernetes/configmap.yaml", &cm)
	for _, f := range []string{"kubernetes/deployment.yaml", "kubernetes/deployment-replica.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		t.Run(filepath.Base(f), func(t *testing.T) { checkDeployment(t, f, data, cm.Data, "vectorheal") })
	}

	// The ServiceMonitor scrapes only the exporting instance, through vectorheal-metrics.
	var sm struct {
		Spec struct {
			Selector struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
		} `yaml:"spec"`
	}
	readYAML(t, "kubernetes/servicemonitor.yaml", &sm)
	services := readDocs(t, "kubernetes/service.yaml")
	var scraped []string
	for _, svc := range services {
		labels := mapAt(svc, "metadata", "labels")
		if matches(sm.Spec.Selector.MatchLabels, labels) {
			scraped = append(scraped, fmt.Sprint(mapAt(svc, "metadata")["name"]))
			if sel := mapAt(svc, "spec", "selector"); sel["app.kubernetes.io/component"] != "exporter" {
				t.Errorf("scraped service selects pods %v, not only the exporter", sel)
			}
		}
	}
	if len(scraped) != 1 || scraped[0] != "vectorheal-metrics" {
		t.Errorf("ServiceMonitor selects services %v, want [vectorheal-metrics]", scraped)
	}
}

func readDocs(t *testing.T, path string) []map[string]any {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var out []map[string]any
	dec := yaml.NewDecoder(f)
	for {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			break
		}
		out = append(out, m)
	}
	return out
}

func mapAt(m map[string]any, keys ...string) map[string]any {
	for _, k := range keys {
		next, _ := m[k].(map[string]any)
		m = next
	}
	return m
}

func matches(selector map[string]string, labels map[string]any) bool {
	for k, v := range selector {
		if labels[k] != v {
			return false
		}
	}
	return len(selector) > 0
}

// checkDeployment checks one Deployment (data, read from path) against the ConfigMap's
// configurations; its ConfigMaps and Secret are named after name.
func checkDeployment(t *testing.T, path string, data []byte, configs map[string]string, name string) {
	var d struct {
		Spec struct {
			Template struct {
				Spec struct {
					Containers []struct {
						Args  []string `yaml:"args"`
						Ports []struct {
							Name          string `yaml:"name"`
							ContainerPort int    `yaml:"containerPort"`
						} `yaml:"ports"`
						Env []struct {
							Name      string `yaml:"name"`
							ValueFrom struct {
								SecretKeyRef struct{ Name, Key string } `yaml:"secretKeyRef"`
							} `yaml:"valueFrom"`
						} `yaml:"env"`
						LivenessProbe struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"livenessProbe"`
						ReadinessProbe struct {
							HTTPGet struct{ Path string } `yaml:"httpGet"`
						} `yaml:"readinessProbe"`
						VolumeMounts []struct{ Name, MountPath string } `yaml:"volumeMounts"`
					} `yaml:"containers"`
					Volumes []struct {
						Name      string                `yaml:"name"`
						ConfigMap struct{ Name string } `yaml:"configMap"`
						Secret    struct {
							SecretName string `yaml:"secretName"`
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(data, &d); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	c := d.Spec.Template.Spec.Containers[0]
	if c.LivenessProbe.HTTPGet.Path != "/-/healthy" || c.ReadinessProbe.HTTPGet.Path != "/-/ready" {
		t.Errorf("probes: liveness %q readiness %q", c.LivenessProbe.HTTPGet.Path, c.ReadinessProbe.HTTPGet.Path)
	}
	if len(c.Ports) != 1 || c.Ports[0].ContainerPort != 9877 {
		t.Errorf("ports %+v, want 9877", c.Ports)
	}
	if len(c.Args) < 3 || c.Args[0] != "serve" || c.Args[len(c.Args)-2] != "--config.file" {
		t.Fatalf("%s: args %q, want serve ... --config.file <path>", path, c.Args)
	}
	cfgPath := c.Args[len(c.Args)-1]
	key := filepath.Base(cfgPath)
	cfg, err := config.Parse(key, []byte(configs[key]))
	if err != nil {
		t.Fatalf("the Deployment runs %s: %v", cfgPath, err)
	}
	envs := map[string]bool{}
	for _, e := range c.Env {
		envs[e.Name] = true
		if e.ValueFrom.SecretKeyRef.Name != "vectorheal-secrets" {
			t.Errorf("env %s comes from secret %q", e.Name, e.ValueFrom.SecretKeyRef.Name)
		}
	}
	for _, s := range []config.Secret{cfg.StateStore.DSN, cfg.Targets[0].DSN} {
		if s.Env == "" || !envs[s.Env] {
			t.Errorf("config reads %+v, which the Deployment does not set", s)
		}
	}
	mounted := func(path string) bool {
		for _, m := range c.VolumeMounts {
			if strings.HasPrefix(path, m.MountPath+"/") {
				return true
			}
		}
		return false
	}
	for _, p := range []string{cfg.Webhook.BearerToken.File, cfg.Remediation.Runbook, cfgPath} {
		if !mounted(p) {
			t.Errorf("%s is under no volume mount", p)
		}
	}
	vols := map[string]string{}
	for _, v := range d.Spec.Template.Spec.Volumes {
		vols[v.Name] = v.ConfigMap.Name + v.Secret.SecretName
	}
	if vols["config"] != name+"-config" || vols["runbook"] != name+"-runbook" || vols["secrets"] != "vectorheal-secrets" {
		t.Errorf("volumes %v", vols)
	}
}
