package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"net/url"
	"os"
	"slices"
	"testing"
	"time"

	amalert "github.com/prometheus/alertmanager/alert"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/webhook"
)

// The payloads of current Alertmanager releases cannot come from the Alertmanager these tests
// start (releases from 0.32 on do not build with go install), so they are rendered here by the
// code of the Alertmanager module vectorheal links, the code those releases run: its
// template.Data (notification_reason, routeLabels) wrapped as notify/webhook.Message wraps it,
// and its payload templating. The renders are kept in testdata/ so that a change in a newer
// Alertmanager module shows up as a diff; -update rewrites them.
var update = flag.Bool("update", false, "rewrite testdata/am-current*.json from the Alertmanager module")

// message is notify/webhook.Message (that package is not imported: it would link
// Alertmanager's whole notification pipeline).
type message struct {
	*template.Data
	Version         string `json:"version"`
	GroupKey        string `json:"groupKey"`
	TruncatedAlerts uint64 `json:"truncatedAlerts"`
}

// currentStart is when the alerts of the rendered payloads started.
var currentStart = time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC)

// amTemplate is Alertmanager's template set with its default templates, as a running
// Alertmanager has it.
func amTemplate(t *testing.T) *template.Template {
	t.Helper()
	tmpl, err := template.FromGlobs(nil)
	if err != nil {
		t.Fatal(err)
	}
	if tmpl.ExternalURL, err = url.Parse("http://alertmanager:9093"); err != nil {
		t.Fatal(err)
	}
	return tmpl
}

// currentData is the template data of a notification of two dead-tuple alerts, routed by a
// route with labels, as Alertmanager's notify.GetTemplateData builds it.
func currentData(t *testing.T, reason string, resolved bool) *template.Data {
	t.Helper()
	var as []*amalert.Alert
	for _, idx := range []string{"items_embedding_idx", "docs_embedding_idx"} {
		a := model.Alert{
			Labels: model.LabelSet{"alertname": "PgvectorHNSWDeadTuples", "severity": "high", "target": "main",
				"datname": "app", "schemaname": "public", "relname": "items", "indexrelname": model.LabelValue(idx)},
			Annotations:  model.LabelSet{"summary": "Dead tuples in the HNSW graph of public." + model.LabelValue(idx)},
			StartsAt:     currentStart,
			GeneratorURL: "http://prometheus:9090/graph?g0.expr=pgvector_hnsw_heap_tids",
		}
		if resolved {
			a.EndsAt = currentStart.Add(30 * time.Minute)
		}
		as = append(as, amalert.New(a, currentStart, false))
	}
	// The root route's labels, rendered, as the dispatcher hands them to the notifier.
	route := model.LabelSet{"team": "dba", "reason": "database app"}
	data := amTemplate(t).Data("vectorheal", model.LabelSet{"alertname": "PgvectorHNSWDeadTuples"}, route, reason, as...)
	template.MarkRouteLabelsRendered(data)
	return data
}

// currentMessage renders the default body of Alertmanager's webhook notifier. The group key
// has the form of 0.28 and later: route key (with the route's matchers) and group labels.
func currentMessage(t *testing.T, reason string, resolved bool) []byte {
	t.Helper()
	msg := &message{Version: "4", Data: currentData(t, reason, resolved), TruncatedAlerts: 0,
		GroupKey: `{}/{vectorheal="repair"}:{alertname="PgvectorHNSWDeadTuples"}`}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(msg); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// customPayload renders a webhook_config payload: template (Alertmanager 0.32) the way the
// notifier's renderPayload does.
func customPayload(t *testing.T, payloadYAML string) []byte {
	t.Helper()
	var conf any
	if err := yaml.Unmarshal([]byte(payloadYAML), &conf); err != nil {
		t.Fatal(err)
	}
	tmpl, data := amTemplate(t), currentData(t, "first notification", false)
	var tmplErr error
	text := func(s string) (string, error) {
		if tmplErr != nil {
			return "", tmplErr
		}
		var out string
		out, tmplErr = tmpl.ExecuteTextString(s, data)
		return out, tmplErr
	}
	rendered, err := template.DeepCopyWithTemplate(conf, text)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := json.NewEncoder(&buf).Encode(rendered); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// golden compares got with testdata/name, or rewrites it with -update.
func golden(t *testing.T, name string, got []byte) []byte {
	t.Helper()
	path := "testdata/" + name
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the Alertmanager module renders (go test -run %s -update rewrites it):\n got: %s\nwant: %s",
			path, t.Name(), got, want)
	}
	return want
}

// Custom payload templates of the kind Alertmanager's documentation and examples show.
const (
	// gotifyPayload is from examples/webhook/gotify.yml of Alertmanager, shortened.
	gotifyPayload = `
title: '{{ .Status | toUpper }} {{ .CommonLabels.alertname }}'
priority: '{{ if eq .Status "firing" }}5{{ else }}0{{ end }}'
message: '{{ range .Alerts.Firing }}{{ .Annotations.summary }} {{ end }}'
`
	// forwardPayload passes some of the notification on, but not as a version 4 notification.
	forwardPayload = `
custom: forwarded by Alertmanager
status: '{{ .Status }}'
commonLabels: '{{ .CommonLabels | toJson }}'
`
	// listPayload is a body that is a JSON array (Alertmanager's TestWebhookCustomPayloadList).
	listPayload = `
- commonLabels: '{{ .CommonLabels | toJson }}'
- foo: bar
`
)

func TestDecodeCurrentAlertmanager(t *testing.T) {
	cases := []struct {
		file, reason, status string
		resolved             bool
	}{
		{"am-current-firing.json", "first notification", "firing", false},
		{"am-current-resolved.json", "all alerts resolved", "resolved", true},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := golden(t, c.file, currentMessage(t, c.reason, c.resolved))
			n, err := webhook.Decode(data)
			if err != nil {
				t.Fatal(err)
			}
			if n.NotificationReason != c.reason || n.Status != c.status || len(n.Alerts) != 2 {
				t.Fatalf("decoded reason %q status %q, %d alerts", n.NotificationReason, n.Status, len(n.Alerts))
			}
			if n.RouteLabels["team"] != "dba" || n.RouteLabels["reason"] != "database app" || len(n.RouteLabels) != 2 {
				t.Errorf("route labels %v", n.RouteLabels)
			}
			for _, a := range n.Alerts {
				if a.NotificationReason != c.reason || a.RouteLabels["team"] != "dba" {
					t.Errorf("alert %s: reason %q, route labels %v", a.Labels["indexrelname"], a.NotificationReason, a.RouteLabels)
				}
				if want := fingerprint(template.KV(a.Labels)); a.Fingerprint != want {
					t.Errorf("fingerprint %q, want %q", a.Fingerprint, want)
				}
				if !a.StartsAt.Equal(currentStart) || c.resolved == a.EndsAt.IsZero() {
					t.Errorf("startsAt %v endsAt %v", a.StartsAt, a.EndsAt)
				}
			}
		})
	}
}

func TestDecodeCustomPayload(t *testing.T) {
	cases := []struct {
		file, payload string
		missing       []string
		want          string
	}{
		{"am-current-custom-gotify.json", gotifyPayload, []string{"version", "status", "alerts"},
			"the body lacks version, status, alerts"},
		{"am-current-custom-forward.json", forwardPayload, []string{"version", "alerts"},
			"the body lacks version, alerts"},
		{"am-current-custom-list.json", listPayload, []string{"version", "status", "alerts"},
			"expected an object, got JSON array"},
	}
	for _, c := range cases {
		t.Run(c.file, func(t *testing.T) {
			data := golden(t, c.file, customPayload(t, c.payload))
			_, err := webhook.Decode(data)
			pe, ok := err.(*webhook.PayloadError)
			if !ok {
				t.Fatalf("error %v (%T), want a *PayloadError", err, err)
			}
			want := "not an Alertmanager webhook notification (version 4): " + c.want +
				"; a custom payload template replaces the notification, so remove payload from the webhook_config that sends to vectorheal"
			if pe.Error() != want || !slices.Equal(pe.Missing, c.missing) {
				t.Errorf("error\n got: %s (missing %v)\nwant: %s (missing %v)", pe, pe.Missing, want, c.missing)
			}
		})
	}
}

// TestCurrentPayloadRecorded posts what current Alertmanager releases send: the notification
// reason and route labels are recorded with the alerts, and the same alerts sent again after
// an upgrade (another group key and reason, older payload) land on the same rows.
func TestCurrentPayloadRecorded(t *testing.T) {
	b := setup(t, nil)
	if r := post(t, b.srv.URL, currentMessage(t, "first notification", false), nil); r.code != 200 || r.body["new"] != 2.0 {
		t.Fatalf("current payload: %d %v", r.code, r.body)
	}
	ctx := context.Background()
	check := func(when string) {
		t.Helper()
		rows, err := b.pool.Query(ctx, `SELECT notification_reason, route_labels, group_key, times_received FROM alerts ORDER BY id`)
		if err != nil {
			t.Fatal(err)
		}
		defer rows.Close()
		n := 0
		for rows.Next() {
			var (
				reason, key string
				route       map[string]string
				times       int
			)
			if err := rows.Scan(&reason, &route, &key, &times); err != nil {
				t.Fatal(err)
			}
			n++
			if reason != "first notification" || route["team"] != "dba" || len(route) != 2 ||
				key != `{}/{vectorheal="repair"}:{alertname="PgvectorHNSWDeadTuples"}` {
				t.Errorf("%s: recorded reason %q, route labels %v, group key %q", when, reason, route, key)
			}
		}
		if n != 2 {
			t.Errorf("%s: %d rows, want 2", when, n)
		}
	}
	check("first notification")

	// The same alerts from an Alertmanager of another release: a group key of another form, no
	// route labels, another reason. They are the same alerts: no new row, no second hook call.
	again := currentMessage(t, "repeat interval elapsed", false)
	var doc map[string]any
	if err := json.Unmarshal(again, &doc); err != nil {
		t.Fatal(err)
	}
	doc["groupKey"] = `{}:{alertname="PgvectorHNSWDeadTuples"}`
	delete(doc, "routeLabels")
	body, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	if r := post(t, b.srv.URL, body, nil); r.code != 200 || r.body["new"] != 0.0 {
		t.Fatalf("resent after an upgrade: %d %v", r.code, r.body)
	}
	check("resent")
	var times int
	if err := b.pool.QueryRow(ctx, `SELECT min(times_received) FROM alerts`).Scan(&times); err != nil || times != 2 {
		t.Errorf("times_received %d (%v), want 2", times, err)
	}
	for _, idx := range []string{"items_embedding_idx", "docs_embedding_idx"} {
		l := template.KV{"alertname": "PgvectorHNSWDeadTuples", "severity": "high", "target": "main",
			"datname": "app", "schemaname": "public", "relname": "items", "indexrelname": idx}
		if got := b.hook.count(fingerprint(l) + "/firing"); got != 1 {
			t.Errorf("hook saw %s %d times, want 1", idx, got)
		}
	}
}

// TestCustomPayloadRefused posts a custom-template body: 400 naming what it lacks, nothing
// recorded, counted as a bad request.
func TestCustomPayloadRefused(t *testing.T) {
	b := setup(t, nil)
	r := post(t, b.srv.URL, customPayload(t, gotifyPayload), nil)
	if r.code != 400 {
		t.Fatalf("status %d, want 400: %v", r.code, r.body)
	}
	msg, _ := r.body["error"].(string)
	if !bytes.Contains([]byte(msg), []byte("the body lacks version, status, alerts")) ||
		!bytes.Contains([]byte(msg), []byte("remove payload from the webhook_config")) {
		t.Errorf("error %q", msg)
	}
	if got, _ := json.Marshal(r.body["missing"]); string(got) != `["version","status","alerts"]` {
		t.Errorf("missing %s", got)
	}
	if n := countRows(t, b.pool); n != 0 {
		t.Errorf("%d rows recorded", n)
	}
	if got := value(t, b.reg, "vectorheal_webhook_notifications_total", "bad_request"); got != 1 {
		t.Errorf("notifications{outcome=bad_request} = %v, want 1", got)
	}
}
