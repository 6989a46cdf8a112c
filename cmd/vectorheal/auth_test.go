package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// authConfig is a serve configuration with every credential set apart: the webhook's token,
// the API's read and admin tokens.
func authConfig(t *testing.T, dir, dsn, extra string) string {
	t.Helper()
	return writeFile(t, dir, "vectorheal.yml", fmt.Sprintf(`
state_store:
  dsn: {value: %q}
targets:
  - name: db1
    dsn: {value: %q}
webhook:
  bearer_token: {value: hook-token}
remediation:
  api_token: {value: admin-token}
  api_read_token: {value: read-token}
%s`, dsn, dsn, extra))
}

// TestEndpointCredentials: each endpoint with each credential, through the real serve (its
// router, its --web.config.file handling), without and with a web configuration that sets TLS
// and basic_auth_users. The probes never need credentials; the webhook takes only its own;
// API reads take the read or admin token (or a web user); changes the admin token only;
// /metrics is open unless the web configuration has users.
func TestEndpointCredentials(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	dir := t.TempDir()
	cfg := authConfig(t, dir, dsn, "")
	caFile, webCfg := webConfigWithTLS(t, dir, "web", "web-pw")

	type creds struct{ name, header string }
	basic := func(u, p string) string {
		r, _ := http.NewRequest("GET", "/", nil)
		r.SetBasicAuth(u, p)
		return r.Header.Get("Authorization")
	}
	credentials := []creds{
		{"none", ""}, {"webhook token", "Bearer hook-token"}, {"read token", "Bearer read-token"},
		{"admin token", "Bearer admin-token"}, {"basic right", basic("web", "web-pw")}, {"basic wrong", basic("web", "nope")},
	}
	type endpoint struct {
		name, method, path, body string
		// want is the status per credential, in the order of credentials.
		plain, web [6]int
	}
	notification := `{"version":"4","groupKey":"{}:{alertname=\"X\"}","status":"firing","receiver":"vectorheal",
		"groupLabels":{},"commonLabels":{},"commonAnnotations":{},"externalURL":"http://am","truncatedAlerts":0,
		"alerts":[{"status":"firing","labels":{"alertname":"X","target":"db1"},"annotations":{},
		"startsAt":"2026-01-01T00:00:00Z","endsAt":"0001-01-01T00:00:00Z","generatorURL":"","fingerprint":"f1"}]}`
	endpoints := []endpoint{
		//                                                                none hook read admin basicOK basicBad
		{"webhook receiver", "POST", "/webhook/alertmanager", notification, [6]int{401, 200, 403, 403, 401, 401}, [6]int{401, 200, 403, 403, 401, 401}},
		{"API read", "GET", "/api/v1/status", "", [6]int{401, 403, 200, 200, 403, 403}, [6]int{401, 403, 200, 200, 200, 403}},
		{"API change", "POST", "/api/v1/checks", `{"target":"db1"}`, [6]int{401, 403, 403, 202, 403, 403}, [6]int{401, 403, 403, 202, 403, 403}},
		{"reload", "POST", "/-/reload", "", [6]int{401, 403, 403, 200, 403, 403}, [6]int{401, 403, 403, 200, 403, 403}},
		{"metrics", "GET", "/metrics", "", [6]int{200, 200, 200, 200, 200, 200}, [6]int{401, 401, 401, 401, 200, 401}},
		{"healthy", "GET", "/-/healthy", "", [6]int{200, 200, 200, 200, 200, 200}, [6]int{200, 200, 200, 200, 200, 200}},
		{"ready", "GET", "/-/ready", "", [6]int{200, 200, 200, 200, 200, 200}, [6]int{200, 200, 200, 200, 200, 200}},
	}

	for _, variant := range []struct {
		name   string
		args   []string
		scheme string
		client *http.Client
	}{
		{"no web config", nil, "http", http.DefaultClient},
		{"web config with TLS and basic_auth_users", []string{"--web.config.file", webCfg}, "https", tlsClient(t, caFile)},
	} {
		t.Run(variant.name, func(t *testing.T) {
			port, err := testenv.FreePort()
			if err != nil {
				t.Fatal(err)
			}
			url := fmt.Sprintf("%s://127.0.0.1:%d", variant.scheme, port)
			v := startVectorheal(t, append([]string{"serve", "--config.file", cfg, "--web.listen-address",
				fmt.Sprintf("127.0.0.1:%d", port)}, variant.args...)...)
			waitStatus(t, v, variant.client, url+"/-/ready", 200)
			for _, ep := range endpoints {
				want := ep.plain
				if variant.scheme == "https" {
					want = ep.web
				}
				for i, c := range credentials {
					var body io.Reader
					if ep.body != "" {
						body = strings.NewReader(ep.body)
					}
					req, err := http.NewRequest(ep.method, url+ep.path, body)
					if err != nil {
						t.Fatal(err)
					}
					if ep.body != "" {
						req.Header.Set("Content-Type", "application/json")
					}
					if c.header != "" {
						req.Header.Set("Authorization", c.header)
					}
					res, err := variant.client.Do(req)
					if err != nil {
						t.Fatal(err)
					}
					msg, _ := io.ReadAll(res.Body)
					res.Body.Close()
					if res.StatusCode != want[i] {
						t.Errorf("%s with %s: %d, want %d (%s)", ep.name, c.name, res.StatusCode, want[i], bytes.TrimSpace(msg))
					}
				}
			}
			if variant.scheme != "https" {
				return
			}
			// The CLI over TLS (CA from --http.config.file): basic auth reads, a token
			// changes; basic auth cannot change.
			clientCfg := writeFile(t, dir, "http.yml", fmt.Sprintf("tls_config:\n  ca_file: %s\n", caFile))
			pw := writeFile(t, dir, "web-pw", "web-pw\n")
			cli := func(args ...string) (int, string) {
				var out, errOut bytes.Buffer
				code := run(append(args, "--url", url, "--http.config.file", clientCfg), &out, &errOut)
				return code, out.String() + errOut.String()
			}
			if code, out := cli("status", "--basic-auth.username", "web", "--basic-auth.password-file", pw); code != 0 || !strings.Contains(out, "healing:") {
				t.Errorf("status with basic auth over TLS: %d %s", code, out)
			}
			if code, out := cli("request-check", "--target", "db1", "--basic-auth.username", "web", "--basic-auth.password-file", pw); code != 1 || !strings.Contains(out, "HTTP 403") {
				t.Errorf("request-check with basic auth: %d %s", code, out)
			}
			if code, out := cli("request-check", "--target", "db1", "--token", "admin-token"); code != 0 || !strings.Contains(out, "recorded") {
				t.Errorf("request-check with the admin token: %d %s", code, out)
			}
			if code, out := cli("status"); code != 1 || !strings.Contains(out, "HTTP 401") {
				t.Errorf("status without credentials: %d %s", code, out)
			}
		})
	}
}

// waitStatus polls url until it answers code.
func waitStatus(t *testing.T, v *vectorheal, c *http.Client, url string, code int) string {
	t.Helper()
	deadline := time.Now().Add(60 * time.Second)
	for {
		res, err := c.Get(url)
		if err == nil {
			b, _ := io.ReadAll(res.Body)
			res.Body.Close()
			if res.StatusCode == code {
				return string(b)
			}
		}
		select {
		case err := <-v.exited:
			t.Fatalf("vectorheal exited: %v\n%s", err, v.out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s did not answer %d within 60s (last: %v)", url, code, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// webConfigWithTLS writes a self-signed certificate for 127.0.0.1 and a web configuration
// serving it, with one basic auth user; it returns the certificate file (the CA) and the
// configuration file.
func webConfigWithTLS(t *testing.T, dir, user, password string) (string, string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "vectorheal test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	cert := filepath.Join(dir, "tls.crt")
	if err := os.WriteFile(cert, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	writeFile(t, dir, "tls.key", string(pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb})))
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	// Relative paths are taken from the configuration file's directory, as exporter-toolkit does.
	web := writeFile(t, dir, "web.yml", fmt.Sprintf(`tls_server_config:
  cert_file: tls.crt
  key_file: tls.key
basic_auth_users:
  %s: %s
`, user, hash))
	return cert, web
}

func tlsClient(t *testing.T, caFile string) *http.Client {
	t.Helper()
	pem, err := os.ReadFile(caFile)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	return &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}}
}
