package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/prometheus/alertmanager/template"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestRealAlertmanager has a real Alertmanager route a firing alert to the handler with a
// bearer token read from a credentials file, and checks the alert is recorded as sent.
func TestRealAlertmanager(t *testing.T) {
	b := setup(t, nil)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	am := testenv.StartAlertmanager(t, amConfig(b.srv.URL, tokenFile))

	labels := template.KV{"alertname": "PgvectorHNSWDeadTuples", "severity": "high", "target": "main",
		"datname": "app", "schemaname": "public", "relname": "items", "indexrelname": `items_idx"; DROP TABLE alerts; --`}
	startsAt := time.Now().UTC().Truncate(time.Second)
	sendAlert(t, am, labels, startsAt)

	ctx := context.Background()
	waitFor(t, "Alertmanager's notification recorded", func() bool { return countRows(t, b.pool) > 0 })
	var (
		fp, status, receiver, alertname string
		got                             map[string]string
		gotStart                        time.Time
	)
	err := b.pool.QueryRow(ctx, `SELECT fingerprint, status, receiver, alertname, labels, starts_at FROM alerts`).
		Scan(&fp, &status, &receiver, &alertname, &got, &gotStart)
	if err != nil {
		t.Fatal(err)
	}
	if status != "firing" || receiver != "vectorheal" || alertname != "PgvectorHNSWDeadTuples" || !gotStart.Equal(startsAt) {
		t.Errorf("recorded %s %s %s %v", status, receiver, alertname, gotStart)
	}
	if got["indexrelname"] != labels["indexrelname"] {
		t.Errorf("indexrelname recorded as %q", got["indexrelname"])
	}
	// The fingerprint Alertmanager sent is the one computed from labels when none is sent.
	if want := fingerprint(labels); fp != want {
		t.Errorf("fingerprint %q, want %q", fp, want)
	}
	if b.hook.count(fp+"/firing") != 1 {
		t.Errorf("hook calls for the alert: %d, want 1", b.hook.count(fp+"/firing"))
	}
}

// TestTwoAlertmanagers has both members of an HA pair (clustering off, as when the peers
// cannot see each other) deliver the same alert: it is recorded once, counted twice, and
// reaches the hook once.
func TestTwoAlertmanagers(t *testing.T) {
	b := setup(t, nil)
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte(token), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := amConfig(b.srv.URL, tokenFile)
	ams := []*testenv.Service{testenv.StartAlertmanager(t, cfg), testenv.StartAlertmanager(t, cfg)}
	labels := template.KV{"alertname": "PgvectorHNSWOrphans", "target": "main", "datname": "app",
		"schemaname": "public", "relname": "items", "indexrelname": "items_embedding_idx"}
	startsAt := time.Now().UTC().Truncate(time.Second)
	for _, am := range ams {
		sendAlert(t, am, labels, startsAt)
	}
	var times int
	waitFor(t, "both deliveries counted", func() bool {
		_ = b.pool.QueryRow(context.Background(), "SELECT coalesce(sum(times_received), 0) FROM alerts").Scan(&times)
		return times >= 2
	})
	if n := countRows(t, b.pool); n != 1 || times != 2 {
		t.Errorf("%d rows received %d times, want 1 row received twice", n, times)
	}
	if got := b.hook.count(fingerprint(labels) + "/firing"); got != 1 {
		t.Errorf("hook calls for the alert: %d, want 1", got)
	}
}

func amConfig(receiverURL, tokenFile string) string {
	return fmt.Sprintf(`
route:
  receiver: vectorheal
  group_by: [alertname, indexrelname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 1h
receivers:
  - name: vectorheal
    webhook_configs:
      - url: %s/webhook/alertmanager
        send_resolved: true
        http_config:
          authorization:
            type: Bearer
            credentials_file: %s
`, receiverURL, tokenFile)
}

func sendAlert(t *testing.T, am *testenv.Service, labels template.KV, startsAt time.Time) {
	t.Helper()
	body, _ := json.Marshal([]map[string]any{{"labels": labels, "annotations": map[string]string{"summary": "s"},
		"startsAt": startsAt, "generatorURL": "http://prometheus/graph"}})
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alert to Alertmanager: %s", resp.Status)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("not within 30s: %s", what)
		}
		time.Sleep(200 * time.Millisecond)
	}
}
