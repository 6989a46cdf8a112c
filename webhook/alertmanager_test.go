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
	am := testenv.StartAlertmanager(t, fmt.Sprintf(`
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
`, b.srv.URL, tokenFile))

	labels := template.KV{"alertname": "PgvectorHNSWDeadTuples", "severity": "high", "target": "main",
		"datname": "app", "schemaname": "public", "relname": "items", "indexrelname": `items_idx"; DROP TABLE alerts; --`}
	startsAt := time.Now().UTC().Truncate(time.Second)
	body, _ := json.Marshal([]map[string]any{{"labels": labels, "annotations": map[string]string{"summary": "dead tuples"},
		"startsAt": startsAt, "generatorURL": "http://prometheus/graph"}})
	resp, err := http.Post(am.URL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("post alert to Alertmanager: %s", resp.Status)
	}

	ctx := context.Background()
	deadline := time.Now().Add(30 * time.Second)
	for countRows(t, b.pool) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("Alertmanager's notification was not recorded within 30s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var (
		fp, status, receiver, alertname string
		got                             map[string]string
		gotStart                        time.Time
	)
	err = b.pool.QueryRow(ctx, `SELECT fingerprint, status, receiver, alertname, labels, starts_at FROM alerts`).
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
