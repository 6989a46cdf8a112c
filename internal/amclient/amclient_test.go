package amclient_test

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/config"
)

func TestNewRefusesBadURL(t *testing.T) {
	for _, u := range []string{"", "localhost:9093", "ftp://am:9093", "http://"} {
		if _, err := amclient.New(config.Alertmanager{URL: u}); err == nil || !strings.Contains(err.Error(), "alertmanager.url") {
			t.Errorf("URL %q: %v, want an error naming alertmanager.url", u, err)
		}
	}
}

// TestCredentialsAndPathPrefix: credentials go on every request, and an Alertmanager behind a
// path prefix is reached under it. The real API is exercised by the engine and api tests.
func TestCredentialsAndPathPrefix(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  config.Alertmanager
		want string
	}{
		{"bearer", config.Alertmanager{BearerToken: config.Secret{Value: "tok"}}, "Bearer tok"},
		{"basic", config.Alertmanager{Username: "u", Password: config.Secret{Value: "p"}}, "Basic dTpw"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotAuth, gotPath string
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				gotAuth, gotPath = r.Header.Get("Authorization"), r.URL.Path
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte("[]"))
			}))
			defer srv.Close()
			tc.cfg.URL = srv.URL + "/am/"
			c, err := amclient.New(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			st, err := c.Alert(t.Context(), map[string]string{"alertname": `x"y`}, "")
			if err != nil || st.Found {
				t.Fatalf("alert: %+v %v", st, err)
			}
			if gotAuth != tc.want || gotPath != "/am/api/v2/alerts" {
				t.Fatalf("request to %s with Authorization %q", gotPath, gotAuth)
			}
		})
	}
}
