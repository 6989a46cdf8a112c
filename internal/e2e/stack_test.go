package e2e_test

import (
	"context"
	"encoding/json"
	"net/http"
	"path/filepath"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/e2e"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// TestStackAssembles checks the harness itself: Prometheus loads every shipped rule file with
// the shortened interval, scrapes vectorheal, and knows the Alertmanager; vectorheal restarts.
func TestStackAssembles(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, err := e2e.Start(ctx, e2e.Config{
		Root: root, Dir: t.TempDir(), Vectorheal: vectorhealBin,
		Targets:            []e2e.Target{{Name: "main", DSN: dsn}},
		AlertmanagerConfig: "testdata/alertmanager.yml",
		Runbook:            "testdata/runbook.yml",
	})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()

	var rules struct {
		Data struct {
			Groups []struct {
				Name     string  `json:"name"`
				Interval float64 `json:"interval"`
			} `json:"groups"`
		} `json:"data"`
	}
	getJSON(t, s.Prometheus.URL+"/api/v1/rules", &rules)
	if len(rules.Data.Groups) == 0 {
		t.Fatal("Prometheus loaded no rule group")
	}
	for _, g := range rules.Data.Groups {
		if g.Interval != s.Config.Timing.EvaluationInterval.Seconds() {
			t.Errorf("group %s evaluates every %vs", g.Name, g.Interval)
		}
	}
	var ams struct {
		Data struct {
			Active []struct {
				URL string `json:"url"`
			} `json:"activeAlertmanagers"`
		} `json:"data"`
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		up, err := e2e.QueryValue(ctx, s.Prometheus.URL, `up{job="vectorheal"}`)
		getJSON(t, s.Prometheus.URL+"/api/v1/alertmanagers", &ams)
		if err == nil && up == 1 && len(ams.Data.Active) == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("up = %v (%v), active alertmanagers %+v", up, err, ams.Data.Active)
		}
		time.Sleep(500 * time.Millisecond)
	}
	v := s.Vectorheals[0]
	if err := v.Kill(); err != nil {
		t.Fatal(err)
	}
	if v.Running() {
		t.Fatal("still running after Kill")
	}
	if err := v.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if err := v.Stop(); err != nil {
		t.Errorf("clean stop: %v", err)
	}
}

func getJSON(t *testing.T, url string, v any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", url, err)
	}
}
