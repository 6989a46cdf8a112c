// Package alertmanager_test checks the shipped Alertmanager configuration with amtool and with a
// real Alertmanager delivering to a local receiver.
package alertmanager_test

import (
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

const configFile = "alertmanager.yml"

func TestAmtoolCheckConfig(t *testing.T) {
	bin, err := testenv.AmtoolBinary()
	if err != nil {
		testenv.Unavailable(t, err)
	}
	out, err := exec.Command(bin, "check-config", configFile).CombinedOutput()
	if err != nil || !bytes.Contains(out, []byte("SUCCESS")) {
		t.Fatalf("amtool check-config: %v\n%s", err, out)
	}
}

// TestShippedReceiver checks what vectorheal's webhook relies on in the shipped file.
func TestShippedReceiver(t *testing.T) {
	cfg := readConfig(t)
	wc := vectorhealWebhook(t, cfg)
	if wc["url"] != "http://vectorheal:9877/webhook/alertmanager" {
		t.Errorf("url %v", wc["url"])
	}
	if wc["send_resolved"] != true {
		t.Error("send_resolved is not true: queued repairs of resolved alerts would never be cancelled")
	}
	if n, _ := wc["max_alerts"].(int); n <= 0 {
		t.Errorf("max_alerts %v, want a positive bound", wc["max_alerts"])
	}
	auth := wc["http_config"].(map[string]any)["authorization"].(map[string]any)
	if auth["credentials_file"] == nil || auth["credentials"] != nil {
		t.Errorf("authorization %v: the token must come from a credentials_file, not the config", auth)
	}
}

func readConfig(t *testing.T) map[string]any {
	t.Helper()
	data, err := os.ReadFile(configFile)
	if err != nil {
		t.Fatal(err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	return cfg
}

func vectorhealWebhook(t *testing.T, cfg map[string]any) map[string]any {
	t.Helper()
	for _, r := range cfg["receivers"].([]any) {
		r := r.(map[string]any)
		if r["name"] == "vectorheal" {
			return r["webhook_configs"].([]any)[0].(map[string]any)
		}
	}
	t.Fatal("no vectorheal receiver")
	return nil
}

// receiver is a stand-in for vectorheal's webhook that records what Alertmanager sends.
type receiver struct {
	mu     sync.Mutex
	auth   []string
	alerts map[string]bool // alertname/indexrelname/vectorheal_severity/status
}

func (rc *receiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var msg struct {
		Receiver string `json:"receiver"`
		Alerts   []struct {
			Status string            `json:"status"`
			Labels map[string]string `json:"labels"`
		} `json:"alerts"`
	}
	if r.URL.Path != "/webhook/alertmanager" || json.NewDecoder(r.Body).Decode(&msg) != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	rc.mu.Lock()
	defer rc.mu.Unlock()
	rc.auth = append(rc.auth, r.Header.Get("Authorization"))
	for _, a := range msg.Alerts {
		rc.alerts[a.Labels["alertname"]+"/"+a.Labels["indexrelname"]+"/"+a.Labels["vectorheal_severity"]+"/"+a.Status] = true
	}
}

func (rc *receiver) snapshot() (map[string]bool, []string) {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	out := map[string]bool{}
	for k, v := range rc.alerts {
		out[k] = v
	}
	return out, slices.Clone(rc.auth)
}

// shortTimings makes the test fast: grouping waits of a second instead of minutes.
func shortTimings(route map[string]any) {
	for _, k := range []string{"group_wait", "group_interval"} {
		if _, ok := route[k]; ok {
			route[k] = "1s"
		}
	}
	if routes, ok := route["routes"].([]any); ok {
		for _, r := range routes {
			shortTimings(r.(map[string]any))
		}
	}
}

func index(name string) map[string]string {
	return map[string]string{"target": "prod", "datname": "app", "schemaname": "public", "relname": "items", "indexrelname": name}
}

func alert(name string, labels map[string]string, extra ...string) map[string]any {
	l := map[string]string{"alertname": name}
	for k, v := range labels {
		l[k] = v
	}
	for i := 0; i+1 < len(extra); i += 2 {
		l[extra[i]] = extra[i+1]
	}
	return map[string]any{"labels": l, "startsAt": time.Now().Add(-time.Minute).UTC().Format(time.RFC3339)}
}

// TestDeliveryAndInhibition runs a real Alertmanager on the shipped configuration (receiver URL,
// token file and grouping waits rewritten for the test) and checks that a cause alert reaches
// vectorheal with the bearer token, that a symptom on the same index is inhibited while a symptom
// on another index is not, that a lower severity tier is inhibited by a higher one, and that
// vectorheal's own alerts do not go to vectorheal.
func TestDeliveryAndInhibition(t *testing.T) {
	rc := &receiver{alerts: map[string]bool{}}
	srv := httptest.NewServer(rc)
	defer srv.Close()

	token := "s3cret-token"
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := readConfig(t)
	wc := vectorhealWebhook(t, cfg)
	wc["url"] = srv.URL + "/webhook/alertmanager"
	wc["http_config"].(map[string]any)["authorization"].(map[string]any)["credentials_file"] = tokenFile
	shortTimings(cfg["route"].(map[string]any))
	out, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	am := testenv.StartAlertmanager(t, string(out))

	cause := alert("PgvectorHNSWDeadTuplesPending", index("items_idx"), "severity", "warning", "vectorheal_severity", "medium", "vectorheal_role", "cause")
	symptom := alert("PgvectorRecallBelowTarget", index("items_idx"), "k", "10", "severity", "warning", "vectorheal_severity", "high", "vectorheal_role", "symptom")
	otherSymptom := alert("PgvectorRecallBelowTarget", index("docs_idx"), "k", "10", "severity", "warning", "vectorheal_severity", "high", "vectorheal_role", "symptom")
	tierLow := alert("PgvectorLatencySpike", index("docs_idx"), "severity", "warning", "vectorheal_severity", "medium", "vectorheal_role", "symptom")
	tierHigh := alert("PgvectorLatencySpike", index("docs_idx"), "severity", "critical", "vectorheal_severity", "critical", "vectorheal_role", "symptom")
	self := alert("VectorhealTargetDown", map[string]string{"target": "prod"}, "severity", "critical", "vectorheal_severity", "critical")
	// Causes and the higher tier first: Alertmanager inhibits against alerts it already holds.
	post(t, am.URL, cause, tierHigh)
	post(t, am.URL, symptom, otherSymptom, tierLow, self)

	want := []string{"PgvectorHNSWDeadTuplesPending/items_idx/medium/firing", "PgvectorRecallBelowTarget/docs_idx/high/firing", "PgvectorLatencySpike/docs_idx/critical/firing"}
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, _ := rc.snapshot()
		if len(missing(got, want)) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("vectorheal's receiver did not get %v; got %v", missing(got, want), got)
		}
		time.Sleep(200 * time.Millisecond)
	}
	// Give Alertmanager a few more group intervals to (wrongly) send the inhibited alerts.
	time.Sleep(4 * time.Second)
	got, auth := rc.snapshot()
	for _, k := range []string{"PgvectorRecallBelowTarget/items_idx/high/firing", "PgvectorLatencySpike/docs_idx/medium/firing", "VectorhealTargetDown//critical/firing"} {
		if got[k] {
			t.Errorf("%s reached vectorheal's receiver", k)
		}
	}
	for _, a := range auth {
		if a != "Bearer "+token {
			t.Errorf("Authorization header %q, want the bearer token from the credentials file", a)
		}
	}
	inhibited := inhibitedAlerts(t, am.URL)
	for _, k := range []string{"PgvectorRecallBelowTarget/items_idx", "PgvectorLatencySpike/docs_idx/medium"} {
		if !inhibited[k] {
			t.Errorf("Alertmanager does not report %s as inhibited (inhibited: %v)", k, inhibited)
		}
	}
	for _, k := range []string{"PgvectorRecallBelowTarget/docs_idx", "PgvectorHNSWDeadTuplesPending/items_idx", "PgvectorLatencySpike/docs_idx/critical"} {
		if inhibited[k] {
			t.Errorf("Alertmanager inhibits %s, which nothing should mute", k)
		}
	}
}

func missing(got map[string]bool, want []string) []string {
	var out []string
	for _, w := range want {
		if !got[w] {
			out = append(out, w)
		}
	}
	return out
}

func post(t *testing.T, base string, alerts ...map[string]any) {
	t.Helper()
	body, _ := json.Marshal(alerts)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, base+"/api/v2/alerts", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alerts: %s", resp.Status)
	}
}

// inhibitedAlerts asks Alertmanager which alerts it holds as inhibited, keyed like the receiver's
// records (plus the seed level for tiered anomaly alerts).
func inhibitedAlerts(t *testing.T, base string) map[string]bool {
	t.Helper()
	resp, err := http.Get(base + "/api/v2/alerts?inhibited=true&silenced=false&active=true")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var alerts []struct {
		Labels map[string]string `json:"labels"`
		Status struct {
			InhibitedBy []string `json:"inhibitedBy"`
		} `json:"status"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&alerts); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, a := range alerts {
		if len(a.Status.InhibitedBy) == 0 {
			continue
		}
		k := a.Labels["alertname"] + "/" + a.Labels["indexrelname"]
		if a.Labels["alertname"] == "PgvectorLatencySpike" {
			k += "/" + a.Labels["vectorheal_severity"]
		}
		out[k] = true
	}
	if len(alerts) == 0 {
		t.Fatal("Alertmanager holds no alerts")
	}
	return out
}
