// Tests of the deployment files: the example configuration is accepted by vectorheal, the
// Prometheus configuration by promtool, the Kubernetes manifests agree with each other, and the
// checked-in PrometheusRule and the Helm chart's rule groups are what rules/*.yml generate
// (`make deploy-rules` rewrites them).
package deploy_test

import (
	"bytes"
	"cmp"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/deploy/rulegen"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/shard"
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
	checkInstanceIsPodName(t, readDocs(t, "kubernetes/servicemonitor.yaml")[0])
}

// checkInstanceIsPodName: the ServiceMonitor sets instance to the pod's name, so that an
// alert keeps its labels, and its identity in the repairs' record, when a pod comes back with
// a new address.
func checkInstanceIsPodName(t *testing.T, monitor map[string]any) {
	t.Helper()
	eps, _ := mapAt(monitor, "spec")["endpoints"].([]any)
	for i, ep := range eps {
		rels, _ := ep.(map[string]any)["relabelings"].([]any)
		found := false
		for _, r := range rels {
			rm, _ := r.(map[string]any)
			src, _ := rm["sourceLabels"].([]any)
			if rm["targetLabel"] == "instance" && len(src) == 1 && src[0] == "__meta_kubernetes_pod_name" {
				found = true
			}
		}
		if !found {
			t.Errorf("ServiceMonitor endpoint %d does not set instance from __meta_kubernetes_pod_name: %v", i, rels)
		}
	}
	if len(eps) == 0 {
		t.Error("ServiceMonitor has no endpoints")
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

// TestKubernetesShardedComponent checks the component that splits the measuring among shards
// (kubernetes/sharded): it deletes the exporting Deployment of the base and adds a StatefulSet
// that runs the exporting configuration with --exporter.shard auto and
// --exporter.total-shards, which kustomize copies from spec.replicas — the one value of the
// shard count — and its headless Service.
func TestKubernetesShardedComponent(t *testing.T) {
	var k struct {
		Kind      string   `yaml:"kind"`
		Resources []string `yaml:"resources"`
		Patches   []struct {
			Target struct{ Kind, Name string } `yaml:"target"`
			Patch  string                      `yaml:"patch"`
		} `yaml:"patches"`
		Replacements []struct {
			Source struct {
				Kind      string `yaml:"kind"`
				Name      string `yaml:"name"`
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"source"`
			Targets []struct {
				Select     struct{ Kind, Name string } `yaml:"select"`
				FieldPaths []string                    `yaml:"fieldPaths"`
				Options    struct {
					Delimiter string `yaml:"delimiter"`
					Index     int    `yaml:"index"`
				} `yaml:"options"`
			} `yaml:"targets"`
		} `yaml:"replacements"`
	}
	readYAML(t, "kubernetes/sharded/kustomization.yaml", &k)
	if k.Kind != "Component" {
		t.Fatalf("kubernetes/sharded is a %s, want a kustomize Component", k.Kind)
	}
	base, err := os.ReadFile("kubernetes/kustomization.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(base), "#   - sharded\n") {
		t.Error("kubernetes/kustomization.yaml does not say how to enable the component sharded")
	}
	var docs []map[string]any
	for _, r := range k.Resources {
		docs = append(docs, readDocs(t, filepath.Join("kubernetes/sharded", r))...)
	}
	var sts, headless map[string]any
	for _, d := range docs {
		switch d["kind"] {
		case "StatefulSet":
			sts = d
		case "Service":
			headless = d
		}
	}
	if sts == nil || headless == nil {
		t.Fatalf("the component adds %d objects, want a StatefulSet and its Service", len(docs))
	}

	// The Deployment it replaces is the base's exporting one.
	if len(k.Patches) != 1 || k.Patches[0].Target.Kind != "Deployment" || k.Patches[0].Target.Name != "vectorheal" ||
		!strings.Contains(k.Patches[0].Patch, "$patch: delete") {
		t.Errorf("patches %+v, want one that deletes the Deployment vectorheal", k.Patches)
	}
	var dep struct {
		Kind     string
		Metadata struct{ Name string }
	}
	readYAML(t, "kubernetes/deployment.yaml", &dep)
	if dep.Kind != "Deployment" || dep.Metadata.Name != "vectorheal" {
		t.Errorf("kubernetes/deployment.yaml is %s %s, not the Deployment the component deletes", dep.Kind, dep.Metadata.Name)
	}

	// spec.replicas is copied into the argument that holds --exporter.total-shards.
	if len(k.Replacements) != 1 || len(k.Replacements[0].Targets) != 1 || len(k.Replacements[0].Targets[0].FieldPaths) != 1 {
		t.Fatalf("replacements %+v, want one from spec.replicas to the flag", k.Replacements)
	}
	rp := k.Replacements[0]
	tg := rp.Targets[0]
	if rp.Source.Kind != "StatefulSet" || rp.Source.Name != "vectorheal" || rp.Source.FieldPath != "spec.replicas" ||
		tg.Select.Kind != "StatefulSet" || tg.Select.Name != "vectorheal" || tg.Options.Delimiter != "=" || tg.Options.Index != 1 {
		t.Errorf("replacement %+v, want spec.replicas of the StatefulSet vectorheal into the value after = of its flag", rp)
	}
	prefix := "spec.template.spec.containers.[name=vectorheal].args."
	at, err := strconv.Atoi(strings.TrimPrefix(tg.FieldPaths[0], prefix))
	if !strings.HasPrefix(tg.FieldPaths[0], prefix) || err != nil {
		t.Fatalf("replacement target %s, want %s<n>", tg.FieldPaths[0], prefix)
	}
	args := containerArgs(t, sts)
	if at >= len(args) || !strings.HasPrefix(args[at], "--exporter.total-shards=") {
		t.Errorf("the replacement rewrites args[%d] of %q, not --exporter.total-shards=", at, args)
	}

	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	readYAML(t, "kubernetes/configmap.yaml", &cm)
	var metrics map[string]any
	for _, svc := range readDocs(t, "kubernetes/service.yaml") {
		if mapAt(svc, "metadata")["name"] == "vectorheal-metrics" {
			metrics = svc
		}
	}
	var sm map[string]any
	readYAML(t, "kubernetes/servicemonitor.yaml", &sm)
	checkShards(t, "kubernetes/sharded/statefulset.yaml", sts, headless, cm.Data, shardedObjects{
		name: "vectorheal", configs: "vectorheal", metrics: metrics, monitor: sm, by: shard.ByIndex})
}

// shardedObjects are what a StatefulSet of shards is checked against.
type shardedObjects struct {
	name    string         // the StatefulSet's name, which its pods' names start with
	configs string         // the name the ConfigMaps are named after
	metrics map[string]any // the Service the ServiceMonitor scrapes
	monitor map[string]any // the ServiceMonitor
	by      shard.By       // the --exporter.shard-by the shards must be given; any valid one when empty
}

// checkShards checks a StatefulSet of shards and its headless Service: the pod is an exporting
// one as checkDeployment sees it, with --exporter.shard auto and --exporter.total-shards equal to
// spec.replicas; every pod's name gives a shard of them; the pods are behind the scraped Service,
// and the headless one is not scraped.
func checkShards(t *testing.T, path string, sts, headless map[string]any, configs map[string]string, o shardedObjects) {
	t.Helper()
	data, err := yaml.Marshal(sts)
	if err != nil {
		t.Fatal(err)
	}
	checkDeployment(t, path, data, configs, o.configs)
	args := containerArgs(t, sts)
	cfg, err := config.Parse(args[len(args)-1], []byte(configs[filepath.Base(args[len(args)-1])]))
	if err != nil {
		t.Fatal(err)
	}
	if e := cfg.Exporter; e.Structure.Disabled || e.Recall.Disabled || e.Drift.Disabled {
		t.Errorf("%s: the shards run %s, which does not measure", path, args[len(args)-1])
	}
	replicas, _ := mapAt(sts, "spec")["replicas"].(int)
	flags := shardFlags(args)
	if flags["--exporter.shard"] != "auto" || flags["--exporter.total-shards"] != strconv.Itoa(replicas) || replicas < 1 {
		t.Errorf("%s: %d replicas run %q, want --exporter.shard auto and --exporter.total-shards %d", path, replicas, args, replicas)
	}
	// Given explicitly, so that an operator sees where to change it; serve would refuse a
	// value it does not know.
	if by, err := shard.ParseBy(flags["--exporter.shard-by"]); err != nil || (o.by != "" && by != o.by) {
		t.Errorf("%s: --exporter.shard-by %q (%v), want %s", path, flags["--exporter.shard-by"], err, cmp.Or(o.by, "index or target"))
	}
	for i := range replicas {
		pod := fmt.Sprintf("%s-%d", o.name, i)
		if s, err := shard.Parse("auto", replicas, pod); err != nil || s.Index != i {
			t.Errorf("pod %s measures shard %+v (%v), want %d of %d", pod, s, err, i, replicas)
		}
	}
	if mapAt(sts, "metadata")["name"] != o.name {
		t.Errorf("%s: the StatefulSet is named %v, want %s", path, mapAt(sts, "metadata")["name"], o.name)
	}
	podLabels := mapAt(sts, "spec", "template", "metadata", "labels")
	if !matches(stringMap(mapAt(sts, "spec", "selector", "matchLabels")), podLabels) {
		t.Errorf("%s: selector does not select its pods %v", path, podLabels)
	}
	// Scraped through the metrics Service, each pod once: the headless Service is not scraped.
	if !matches(stringMap(mapAt(o.metrics, "spec", "selector")), podLabels) {
		t.Errorf("%s: pods %v are not behind the scraped Service %v", path, podLabels, mapAt(o.metrics, "metadata")["name"])
	}
	monitored := stringMap(mapAt(o.monitor, "spec", "selector", "matchLabels"))
	if !matches(monitored, mapAt(o.metrics, "metadata", "labels")) || matches(monitored, mapAt(headless, "metadata", "labels")) {
		t.Errorf("the ServiceMonitor %v should select %v and not the headless %v", monitored, mapAt(o.metrics, "metadata")["name"], mapAt(headless, "metadata")["name"])
	}
	if mapAt(sts, "spec")["serviceName"] != mapAt(headless, "metadata")["name"] || mapAt(headless, "spec")["clusterIP"] != "None" ||
		!matches(stringMap(mapAt(headless, "spec", "selector")), podLabels) {
		t.Errorf("%s: serviceName %v, want the headless Service %v that selects the pods", path, mapAt(sts, "spec")["serviceName"], mapAt(headless, "metadata")["name"])
	}
}

// containerArgs returns the args of the first container of a workload's pod template.
func containerArgs(t *testing.T, workload map[string]any) []string {
	t.Helper()
	cs, _ := mapAt(workload, "spec", "template", "spec")["containers"].([]any)
	if len(cs) == 0 {
		t.Fatal("no container")
	}
	raw, _ := cs[0].(map[string]any)["args"].([]any)
	var args []string
	for _, a := range raw {
		args = append(args, fmt.Sprint(a))
	}
	if len(args) == 0 {
		t.Fatal("the container has no args")
	}
	return args
}

// shardFlags reads --flag=value and --flag value arguments into a map.
func shardFlags(args []string) map[string]string {
	out := map[string]string{}
	for i, a := range args {
		if !strings.HasPrefix(a, "--") {
			continue
		}
		if name, value, ok := strings.Cut(a, "="); ok {
			out[name] = value
		} else if i+1 < len(args) {
			out[a] = args[i+1]
		}
	}
	return out
}
