package webhook

import (
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/model"
)

func TestDecodeAlertmanager025(t *testing.T) {
	data, err := os.ReadFile("testdata/am-0.25.json")
	if err != nil {
		t.Fatal(err)
	}
	n, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if n.Receiver != "vectorheal" || n.Status != "firing" || len(n.Alerts) != 1 {
		t.Fatalf("decoded %+v", n)
	}
	a := n.Alerts[0]
	if a.Fingerprint != "8c5f2e4b7d1a9c03" {
		t.Errorf("fingerprint %q: the one sent must be kept", a.Fingerprint)
	}
	if !a.EndsAt.IsZero() {
		t.Errorf("EndsAt %v: Alertmanager's 0001-01-01 means none", a.EndsAt)
	}
	if a.Labels["indexrelname"] != "items_embedding_idx" || a.Receiver != "vectorheal" || a.GroupKey == "" {
		t.Errorf("alert %+v", a)
	}
	if a.StartsAt.Nanosecond() != 123456789 {
		t.Errorf("StartsAt %v lost precision", a.StartsAt)
	}
}

func TestDecodeNewerAlertmanager(t *testing.T) {
	data, err := os.ReadFile("testdata/am-newer.json")
	if err != nil {
		t.Fatal(err)
	}
	n, err := Decode(data)
	if err != nil {
		t.Fatal(err)
	}
	if n.NotificationReason != "all alerts resolved" || n.TruncatedAlerts != 2 || n.RouteLabels["team"] != "db" {
		t.Errorf("notification %+v", n)
	}
	a := n.Alerts[0]
	if a.Labels["service.name"] != "vector-api" || a.Labels["ünïcödé"] != "ja" {
		t.Errorf("UTF-8 label names lost: %v", a.Labels)
	}
	// No fingerprint sent: it is computed from the labels as Alertmanager computes it.
	ls := model.LabelSet{}
	for k, v := range a.Labels {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	if want := ls.Fingerprint().String(); a.Fingerprint != want || len(a.Fingerprint) != 16 {
		t.Errorf("fingerprint %q, want %q", a.Fingerprint, want)
	}
	if want := time.Date(2026, 11, 27, 9, 30, 0, 0, time.UTC); !a.EndsAt.Equal(want) {
		t.Errorf("EndsAt %v, want %v", a.EndsAt, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	const ok = `{"status":"firing","labels":{"alertname":"A"},"startsAt":"2026-01-01T00:00:00Z"}`
	wrap := func(alerts string) string {
		return `{"version":"4","status":"firing","receiver":"r","alerts":[` + alerts + `]}`
	}
	cases := []struct{ name, in, want string }{
		{"empty body", ``, "empty body; a JSON object was expected"},
		{"syntax", `{"version":4x}`, "malformed JSON at byte 13: invalid character 'x' after object key:value pair"},
		{"trailing data", wrap(ok) + `{}`, "unexpected data after the JSON object"},
		{"version number", `{"version":4}`, "version: expected a string, got JSON number"},
		{"missing version", `{"status":"firing","alerts":[` + ok + `]}`, "version: missing; this receiver takes Alertmanager webhook payload version 4"},
		{"wrong status", `{"version":"4","status":"burning","alerts":[` + ok + `]}`, `status: "burning" is not "firing" or "resolved"`},
		{"missing alerts", `{"version":"4","status":"firing"}`, "alerts: missing"},
		{"empty alerts", `{"version":"4","status":"firing","alerts":[]}`, "alerts: empty; a notification carries at least one alert"},
		{"alerts not a list", `{"version":"4","status":"firing","alerts":{}}`, "alerts: expected an array, got JSON object"},
		{"alert not an object", wrap(ok + `,7`), "alerts[1]: expected an object, got JSON number"},
		{"alert status", wrap(`{"labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z"}`), `alerts[0].status: missing; must be "firing" or "resolved"`},
		{"labels wrong type", wrap(ok + `,{"status":"firing","labels":{"a":1}}`), "alerts[1].labels: expected a string, got JSON number"},
		{"no labels", wrap(`{"status":"firing","startsAt":"2026-01-01T00:00:00Z"}`), "alerts[0].labels: missing or empty; an alert is identified by its labels"},
		{"no startsAt", wrap(`{"status":"firing","labels":{"a":"b"}}`), "alerts[0].startsAt: missing"},
		{"bad endsAt", wrap(`{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","endsAt":"soon"}`), `alerts[0].endsAt: "soon" is not an RFC 3339 time`},
		{"bad fingerprint", wrap(`{"status":"firing","labels":{"a":"b"},"startsAt":"2026-01-01T00:00:00Z","fingerprint":"'; DROP TABLE alerts"}`), `alerts[0].fingerprint: "'; DROP TABLE alerts" is not a fingerprint (hex digits expected)`},
		{"NUL in notification reason", `{"version":"4","status":"firing","notification_reason":"a\u0000","alerts":[` + ok + `]}`, "notification_reason: contains a NUL character"},
		{"NUL in route label", `{"version":"4","status":"firing","routeLabels":{"team":"\u0000"},"alerts":[` + ok + `]}`, "routeLabels.team: value contains a NUL character"},
		{"route labels wrong type", `{"version":"4","status":"firing","routeLabels":["team"],"alerts":[` + ok + `]}`, "routeLabels: expected an object of strings, got JSON array"},
		{"NUL in annotation", wrap(`{"status":"firing","labels":{"a":"b"},"annotations":{"x":"\u0000"},"startsAt":"2026-01-01T00:00:00Z"}`), "alerts[0].annotations.x: value contains a NUL character"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Decode([]byte(c.in))
			if err == nil {
				t.Fatal("no error")
			}
			if err.Error() != c.want {
				t.Errorf("error\n got: %s\nwant: %s", err, c.want)
			}
			if _, ok := err.(*PayloadError); !ok {
				t.Errorf("error is %T, want *PayloadError", err)
			}
		})
	}
}

// FuzzDecode checks that no payload makes the decoder panic and that whatever it accepts is
// something the state store can record.
func FuzzDecode(f *testing.F) {
	f.Fuzz(func(t *testing.T, data []byte) {
		n, err := Decode(data)
		if err != nil {
			if _, ok := err.(*PayloadError); !ok {
				t.Fatalf("error %T is not a *PayloadError: %v", err, err)
			}
			return
		}
		if len(n.Alerts) == 0 {
			t.Fatal("accepted a notification without alerts")
		}
		for _, a := range n.Alerts {
			if !fingerprintRE.MatchString(a.Fingerprint) {
				t.Fatalf("accepted fingerprint %q", a.Fingerprint)
			}
			if a.Status != "firing" && a.Status != "resolved" {
				t.Fatalf("accepted status %q", a.Status)
			}
			if len(a.Labels) == 0 || a.StartsAt.IsZero() {
				t.Fatalf("accepted alert without labels or start: %+v", a)
			}
			for k, v := range a.Labels {
				if strings.ContainsRune(k+v, 0) {
					t.Fatalf("accepted a NUL in label %q", k)
				}
			}
			roundTrip(t, a.Labels)
			roundTrip(t, a.Annotations)
		}
	})
}

// roundTrip checks that the labels written for the state store read back unchanged.
func roundTrip(t *testing.T, m map[string]string) {
	t.Helper()
	enc := appendJSONObject(nil, m)
	var back map[string]string
	if err := json.Unmarshal(enc, &back); err != nil {
		t.Fatalf("%q is not JSON: %v", enc, err)
	}
	if len(back) != len(m) {
		t.Fatalf("%v read back as %v", m, back)
	}
	for k, v := range m {
		if back[k] != v {
			t.Fatalf("%q: %q read back as %q", k, v, back[k])
		}
	}
}

func TestAppendJSONObject(t *testing.T) {
	roundTrip(t, map[string]string{})
	roundTrip(t, map[string]string{
		"alertname": "X", `q"uote`: `back\slash`, "ctl": "a\x01\x1f\n\r\t\x7f", "ünï": "日本 \u2028",
		"sql": `'; DROP TABLE alerts; --`, "shell": "$(rm -rf /) `id`", "": "empty name",
	})
}
