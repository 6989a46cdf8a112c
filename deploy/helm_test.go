package deploy_test

import (
	"bytes"
	"cmp"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
	"helm.sh/helm/v4/pkg/chart/common"
	chartutil "helm.sh/helm/v4/pkg/chart/common/util"
	"helm.sh/helm/v4/pkg/chart/v2/lint"
	"helm.sh/helm/v4/pkg/chart/v2/lint/support"
	"helm.sh/helm/v4/pkg/chart/v2/loader"
	"helm.sh/helm/v4/pkg/engine"

	"github.com/vectorheal/vectorheal/deploy/rulegen"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/shard"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/rules"
)

const chartDir = "helm/vectorheal"

// manifest is one rendered object: its kind, name and the document itself.
type manifest struct {
	source, kind, name string
	data               []byte
	doc                map[string]any
}

// renderChart renders the chart as `helm install <release> --namespace <ns>` would, with
// values over the chart's own, and returns every object, by kind and name.
func renderChart(t *testing.T, release, namespace string, values map[string]any) ([]manifest, error) {
	t.Helper()
	chrt, err := loader.Load(chartDir)
	if err != nil {
		t.Fatalf("load the chart: %v", err)
	}
	vals, err := chartutil.ToRenderValues(chrt, values, common.ReleaseOptions{Name: release, Namespace: namespace, IsInstall: true}, nil)
	if err != nil {
		return nil, err
	}
	out, err := engine.Render(chrt, vals)
	if err != nil {
		return nil, err
	}
	var ms []manifest
	for source, text := range out {
		if strings.HasSuffix(source, ".tpl") || strings.TrimSpace(text) == "" {
			continue
		}
		for _, part := range regexp.MustCompile(`(?m)^---\s*$`).Split(text, -1) {
			var doc map[string]any
			if err := yaml.Unmarshal([]byte(part), &doc); err != nil {
				t.Fatalf("%s renders invalid YAML: %v\n%s", source, err, part)
			}
			if doc == nil {
				continue
			}
			ms = append(ms, manifest{source: source, kind: fmt.Sprint(doc["kind"]), name: fmt.Sprint(mapAt(doc, "metadata")["name"]),
				data: []byte(part), doc: doc})
		}
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].kind+" "+ms[i].name < ms[j].kind+" "+ms[j].name })
	return ms, nil
}

func only(t *testing.T, ms []manifest, kind, name string) manifest {
	t.Helper()
	for _, m := range ms {
		if m.kind == kind && m.name == name {
			return m
		}
	}
	t.Fatalf("the chart renders no %s %s", kind, name)
	return manifest{}
}

// TestHelmChartLints runs Helm's own linter on the chart (Chart.yaml, values, every template
// rendered and checked as Kubernetes objects).
func TestHelmChartLints(t *testing.T) {
	res := lint.RunAll(chartDir, nil, "vectorheal")
	for _, m := range res.Messages {
		t.Log(m)
	}
	if res.HighestSeverity >= support.WarningSev {
		t.Errorf("helm lint: highest severity %d (warning or error)", res.HighestSeverity)
	}
}

// TestHelmChartRenders renders the chart with Helm's engine and checks what it installs: the
// objects deploy/kubernetes has plus an AlertmanagerConfig, the release's pinned image, a
// configuration vectorheal accepts, the rules of rules/*.yml with the Grafana asked for, and a
// route that sends vectorheal the alerts its runbook acts on and none of its own.
func TestHelmChartRenders(t *testing.T) {
	version := releaseVersion(t)
	const grafana = "https://grafana.example.com/g/"
	ms, err := renderChart(t, "vectorheal", "db-ops", map[string]any{"grafana": map[string]any{"url": grafana}})
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var kinds []string
	for _, m := range ms {
		kinds = append(kinds, m.kind+" "+m.name)
	}
	want := []string{"AlertmanagerConfig vectorheal", "ConfigMap vectorheal-config", "ConfigMap vectorheal-runbook",
		"Deployment vectorheal", "Deployment vectorheal-replica", "PrometheusRule vectorheal", "Service vectorheal",
		"Service vectorheal-metrics", "ServiceAccount vectorheal", "ServiceMonitor vectorheal"}
	if !slices.Equal(kinds, want) {
		t.Errorf("rendered objects:\n%v\nwant\n%v", kinds, want)
	}

	// Chart and image follow VERSION.
	var chartYAML struct {
		Version    string `yaml:"version"`
		AppVersion string `yaml:"appVersion"`
	}
	readYAML(t, chartDir+"/Chart.yaml", &chartYAML)
	if chartYAML.Version != version || chartYAML.AppVersion != version {
		t.Errorf("Chart.yaml version %s appVersion %s, want %s (VERSION)", chartYAML.Version, chartYAML.AppVersion, version)
	}

	// Configurations, runbook and Deployments, as for deploy/kubernetes.
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(only(t, ms, "ConfigMap", "vectorheal-config").data, &cm); err != nil {
		t.Fatal(err)
	}
	for key, measures := range map[string]bool{"vectorheal.yml": true, "vectorheal-replica.yml": false} {
		c, err := config.Parse("chart:"+key, []byte(cm.Data[key]))
		if err != nil {
			t.Fatalf("%s: %v\n%s", key, err, cm.Data[key])
		}
		if e := c.Exporter; (!e.Structure.Disabled && !e.Recall.Disabled && !e.Drift.Disabled) != measures {
			t.Errorf("%s runs the background checks: %v, want %v", key, !measures, measures)
		}
	}
	for _, name := range []string{"vectorheal", "vectorheal-replica"} {
		d := only(t, ms, "Deployment", name)
		t.Run(name, func(t *testing.T) { checkDeployment(t, d.source, d.data, cm.Data, "vectorheal") })
		for _, c := range mapAt(d.doc, "spec", "template", "spec")["containers"].([]any) {
			if img := c.(map[string]any)["image"]; img != "ghcr.io/vectorheal/vectorheal:"+version {
				t.Errorf("%s runs image %v, want the release's ghcr.io/vectorheal/vectorheal:%s", name, img, version)
			}
		}
	}
	var rb struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(only(t, ms, "ConfigMap", "vectorheal-runbook").data, &rb); err != nil {
		t.Fatal(err)
	}
	shipped, err := os.ReadFile("runbook.yml")
	if err != nil {
		t.Fatal(err)
	}
	if rb.Data["runbook.yml"] != string(shipped) {
		t.Error("the chart's runbook ConfigMap is not deploy/runbook.yml")
	}

	// The ServiceMonitor scrapes only the exporting instance.
	sel, _ := mapAt(only(t, ms, "ServiceMonitor", "vectorheal").doc, "spec", "selector")["matchLabels"].(map[string]any)
	var scraped []string
	for _, m := range ms {
		if m.kind == "Service" && matches(stringMap(sel), mapAt(m.doc, "metadata", "labels")) {
			scraped = append(scraped, m.name)
		}
	}
	if !slices.Equal(scraped, []string{"vectorheal-metrics"}) {
		t.Errorf("ServiceMonitor selects %v, want [vectorheal-metrics]", scraped)
	}
	checkInstanceIsPodName(t, only(t, ms, "ServiceMonitor", "vectorheal").doc)

	// The PrometheusRule holds rules/*.yml's groups, linked to the Grafana of the values.
	var pr struct {
		Spec struct {
			Groups any `yaml:"groups"`
		} `yaml:"spec"`
	}
	if err := yaml.Unmarshal(only(t, ms, "PrometheusRule", "vectorheal").data, &pr); err != nil {
		t.Fatal(err)
	}
	node, _, err := rulegen.Groups("../rules", grafana)
	if err != nil {
		t.Fatal(err)
	}
	var wantGroups any
	if err := node.Decode(&wantGroups); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(pr.Spec.Groups, wantGroups) {
		t.Error("the chart's PrometheusRule groups differ from rules/*.yml generated for grafana.url (run `make deploy-rules`)")
	}
	if bytes.Contains(only(t, ms, "PrometheusRule", "vectorheal").data, []byte(rulegen.DefaultGrafanaURL)) {
		t.Error("the PrometheusRule still links to the default Grafana")
	}

	checkAlertmanagerConfig(t, only(t, ms, "AlertmanagerConfig", "vectorheal"), "db-ops")
}

func stringMap(m map[string]any) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		out[k] = fmt.Sprint(v)
	}
	return out
}

// checkAlertmanagerConfig: the route's matchers select every alert the default runbook acts
// on and none of vectorheal's own health alerts, and the receiver is vectorheal's webhook
// endpoint in the release's namespace, authenticated with the Secret's token.
func checkAlertmanagerConfig(t *testing.T, m manifest, namespace string) {
	var amc struct {
		Spec struct {
			Route struct {
				Receiver string
				Matchers []struct {
					Name      string `yaml:"name"`
					Value     string `yaml:"value"`
					MatchType string `yaml:"matchType"`
				}
				GroupBy []string `yaml:"groupBy"`
			}
			Receivers []struct {
				Name           string
				WebhookConfigs []struct {
					URL        string `yaml:"url"`
					HTTPConfig struct {
						Authorization struct {
							Type        string
							Credentials struct{ Name, Key string }
						}
					} `yaml:"httpConfig"`
				} `yaml:"webhookConfigs"`
			}
		}
	}
	if err := yaml.Unmarshal(m.data, &amc); err != nil {
		t.Fatal(err)
	}
	r := amc.Spec.Route
	if len(amc.Spec.Receivers) != 1 || amc.Spec.Receivers[0].Name != r.Receiver || len(amc.Spec.Receivers[0].WebhookConfigs) != 1 {
		t.Fatalf("AlertmanagerConfig receivers %+v for route receiver %q", amc.Spec.Receivers, r.Receiver)
	}
	wh := amc.Spec.Receivers[0].WebhookConfigs[0]
	if want := "http://vectorheal." + namespace + ".svc:9877/webhook/alertmanager"; wh.URL != want {
		t.Errorf("webhook URL %s, want %s", wh.URL, want)
	}
	if a := wh.HTTPConfig.Authorization; a.Type != "Bearer" || a.Credentials.Name != "vectorheal-secrets" || a.Credentials.Key != "webhook-token" {
		t.Errorf("webhook authorization %+v", a)
	}
	if !slices.Equal(r.GroupBy, indexLabelNames) {
		t.Errorf("groupBy %v, want one notification per index %v", r.GroupBy, indexLabelNames)
	}
	selects := func(alertname string) bool {
		for _, mt := range r.Matchers {
			if mt.Name != "alertname" {
				continue
			}
			ok := regexp.MustCompile("^(?:" + mt.Value + ")$").MatchString(alertname)
			if (mt.MatchType == "=~" && !ok) || (mt.MatchType == "=" && mt.Value != alertname) || mt.MatchType == "!~" && ok {
				return false
			}
		}
		return true
	}
	rb, err := runbook.Load("runbook.yml", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	acted := 0
	for _, e := range rb.Entries {
		for _, mt := range e.Matchers {
			if mt.Name == "alertname" && mt.Type.String() == "=" {
				acted++
				if !selects(mt.Value) {
					t.Errorf("the route does not send %s (runbook entry %s) to vectorheal", mt.Value, e.Name)
				}
			}
		}
	}
	files, err := rules.Load()
	if err != nil {
		t.Fatal(err)
	}
	own := 0
	for _, a := range rules.AlertNames(files) {
		if strings.HasPrefix(a, "Vectorheal") {
			own++
			if selects(a) {
				t.Errorf("the route sends vectorheal's own health alert %s to its receiver", a)
			}
		}
	}
	if acted == 0 || own == 0 {
		t.Errorf("checked %d runbook alerts and %d own alerts", acted, own)
	}
}

var indexLabelNames = []string{"target", "datname", "schemaname", "relname", "indexrelname"}

// TestHelmChartRefuses: the chart fails to render rather than run an unpinned image or link
// alerts to an address a dashboard path cannot follow; a release of another name names its
// objects after it.
func TestHelmChartRefuses(t *testing.T) {
	for name, vals := range map[string]map[string]any{
		"latest":    {"image": map[string]any{"tag": "latest"}},
		"bad url":   {"grafana": map[string]any{"url": "grafana:3000"}},
		"query url": {"grafana": map[string]any{"url": "http://grafana/?orgId=1"}},
		"no shards": {"shards": 0},
		"shardBy":   {"shards": 2, "shardBy": "database"},
	} {
		if _, err := renderChart(t, "vectorheal", "vectorheal", vals); err == nil {
			t.Errorf("%s: rendered", name)
		}
	}
	ms, err := renderChart(t, "prod", "vectorheal", map[string]any{"replicas": 0, "alertmanagerConfig": map[string]any{"enabled": false},
		"image": map[string]any{"tag": "9.9.9"}})
	if err != nil {
		t.Fatal(err)
	}
	d := only(t, ms, "Deployment", "prod-vectorheal")
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(only(t, ms, "ConfigMap", "prod-vectorheal-config").data, &cm); err != nil {
		t.Fatal(err)
	}
	checkDeployment(t, d.source, d.data, cm.Data, "prod-vectorheal")
	if !bytes.Contains(d.data, []byte("image: ghcr.io/vectorheal/vectorheal:9.9.9")) {
		t.Error("image.tag is not used")
	}
	for _, m := range ms {
		if m.kind == "AlertmanagerConfig" || m.name == "prod-vectorheal-replica" {
			t.Errorf("rendered %s %s although disabled", m.kind, m.name)
		}
	}
}

// TestHelmChartShards: with shards above 1 the chart replaces the exporting Deployment by a
// StatefulSet of that many pods, each given --exporter.shard auto, --exporter.total-shards
// equal to shards and --exporter.shard-by shardBy (index unless set), scraped through the
// -metrics Service, with its headless Service; the receiving replicas stay. Helm's linter
// accepts it.
func TestHelmChartShards(t *testing.T) {
	for _, by := range []shard.By{"", shard.ByTarget} {
		t.Run(cmp.Or(string(by), "default"), func(t *testing.T) { testHelmChartShards(t, by) })
	}
}

func testHelmChartShards(t *testing.T, by shard.By) {
	vals := map[string]any{"shards": 3}
	if by != "" {
		vals["shardBy"] = string(by)
	}
	res := lint.RunAll(chartDir, vals, "vectorheal")
	for _, m := range res.Messages {
		t.Log(m)
	}
	if res.HighestSeverity >= support.WarningSev {
		t.Errorf("helm lint with shards 3: highest severity %d (warning or error)", res.HighestSeverity)
	}
	ms, err := renderChart(t, "vectorheal", "db-ops", vals)
	if err != nil {
		t.Fatalf("render: %v", err)
	}
	var kinds []string
	for _, m := range ms {
		if m.kind == "Deployment" || m.kind == "StatefulSet" || m.kind == "Service" {
			kinds = append(kinds, m.kind+" "+m.name)
		}
	}
	want := []string{"Deployment vectorheal-replica", "Service vectorheal", "Service vectorheal-metrics",
		"Service vectorheal-shards", "StatefulSet vectorheal"}
	if !slices.Equal(kinds, want) {
		t.Errorf("rendered workloads and services:\n%v\nwant\n%v", kinds, want)
	}
	var cm struct {
		Data map[string]string `yaml:"data"`
	}
	if err := yaml.Unmarshal(only(t, ms, "ConfigMap", "vectorheal-config").data, &cm); err != nil {
		t.Fatal(err)
	}
	sts := only(t, ms, "StatefulSet", "vectorheal")
	if r := mapAt(sts.doc, "spec")["replicas"]; r != 3 {
		t.Errorf("StatefulSet replicas %v, want shards 3", r)
	}
	checkShards(t, sts.source, sts.doc, only(t, ms, "Service", "vectorheal-shards").doc, cm.Data, shardedObjects{
		name: "vectorheal", configs: "vectorheal",
		metrics: only(t, ms, "Service", "vectorheal-metrics").doc, monitor: only(t, ms, "ServiceMonitor", "vectorheal").doc,
		by: cmp.Or(by, shard.ByIndex)})
	// The receiving replicas do not measure and are not sharded.
	rep := only(t, ms, "Deployment", "vectorheal-replica")
	checkDeployment(t, rep.source, rep.data, cm.Data, "vectorheal")
	if f := shardFlags(containerArgs(t, rep.doc)); f["--exporter.shard"] != "" || f["--exporter.total-shards"] != "" || f["--exporter.shard-by"] != "" {
		t.Errorf("the receiving replicas are given shard flags %v", f)
	}
}
