package webhook_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/model"

	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/webhook"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	schema = "vectorheal"
	token  = "s3cret-token"
)

// hookLog records what the hook was given, per alert fingerprint.
type hookLog struct {
	mu    sync.Mutex
	calls int
	seen  map[string]int
}

func (h *hookLog) hook(ctx context.Context, tx pgx.Tx, alerts []webhook.Alert) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.calls++
	for _, a := range alerts {
		if a.ID == 0 {
			return fmt.Errorf("alert %s given to the hook without an ID", a.Fingerprint)
		}
		h.seen[a.Fingerprint+"/"+a.Status]++
	}
	// The hook's writes share the notification's transaction.
	var n int
	return tx.QueryRow(ctx, "SELECT count(*) FROM alerts").Scan(&n)
}

func (h *hookLog) count(key string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.seen[key]
}

type bundle struct {
	pool *pgxpool.Pool
	srv  *httptest.Server
	reg  *prometheus.Registry
	hook *hookLog
}

func logger(t testing.TB) *slog.Logger {
	return slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimSpace(string(p)))
	return len(p), nil
}

// setup gives a test its own state store (a fresh database, migrated) and a served handler.
func setup(t testing.TB, mod func(*webhook.Options)) *bundle {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := context.Background()
	pool, err := store.Open(ctx, dsn, schema, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, schema, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	b := &bundle{pool: pool, reg: prometheus.NewRegistry(), hook: &hookLog{seen: map[string]int{}}}
	o := webhook.Options{Pool: pool, Hook: b.hook.hook, BearerToken: token, BasicUser: "am", BasicPassword: "pw",
		MaxBodyBytes: 64 << 10, Logger: logger(t), Registerer: b.reg}
	if mod != nil {
		mod(&o)
	}
	h, err := webhook.NewHandler(o)
	if err != nil {
		t.Fatal(err)
	}
	b.srv = httptest.NewServer(h)
	t.Cleanup(b.srv.Close)
	return b
}

func alert(name string, extra map[string]string) template.Alert {
	l := template.KV{"alertname": name, "target": "main", "datname": "app", "schemaname": "public",
		"relname": "items", "indexrelname": "items_embedding_idx"}
	for k, v := range extra {
		l[k] = v
	}
	return template.Alert{Status: "firing", Labels: l, Annotations: template.KV{"summary": "s"},
		StartsAt: time.Date(2026, 11, 27, 10, 0, 0, 123456789, time.UTC), GeneratorURL: "http://prom/graph"}
}

// payload renders a version 4 notification the way Alertmanager's notify/webhook does.
func payload(t testing.TB, alerts ...template.Alert) []byte {
	t.Helper()
	msg := map[string]any{
		"version": "4", "groupKey": `{}:{alertname="X"}`, "truncatedAlerts": 0, "receiver": "vectorheal",
		"status": "firing", "alerts": alerts, "groupLabels": map[string]string{}, "commonLabels": map[string]string{},
		"commonAnnotations": map[string]string{}, "externalURL": "http://am",
	}
	b, err := json.Marshal(msg)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

type response struct {
	code int
	hdr  http.Header
	body map[string]any
}

func post(t testing.TB, url string, body []byte, hdr map[string]string) response {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, url+webhook.Path, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	for k, v := range hdr {
		if v == "" {
			req.Header.Del(k)
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	r := response{code: resp.StatusCode, hdr: resp.Header}
	if err := json.Unmarshal(raw, &r.body); err != nil {
		t.Fatalf("response %d is not JSON: %q", resp.StatusCode, raw)
	}
	return r
}

func countRows(t testing.TB, pool *pgxpool.Pool) int {
	t.Helper()
	var n int
	if err := pool.QueryRow(context.Background(), "SELECT count(*) FROM alerts").Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestHandlerAnswers(t *testing.T) {
	b := setup(t, nil)
	good := payload(t, alert("PgvectorHNSWDeadTuples", nil))
	huge := payload(t, alert("Big", map[string]string{"pad": strings.Repeat("x", 70<<10)}))
	basic := "Basic " + base64("am:pw")
	cases := []struct {
		name      string
		method    string
		body      []byte
		hdr       map[string]string
		code      int
		field     string
		errSubstr string
		outcome   string
	}{
		{name: "missing auth", body: good, hdr: map[string]string{"Authorization": ""}, code: 401, errSubstr: "credentials required", outcome: "unauthorized"},
		{name: "unknown scheme", body: good, hdr: map[string]string{"Authorization": "Digest x"}, code: 401, outcome: "unauthorized"},
		{name: "wrong token", body: good, hdr: map[string]string{"Authorization": "Bearer nope"}, code: 403, errSubstr: "wrong credentials", outcome: "forbidden"},
		{name: "wrong basic password", body: good, hdr: map[string]string{"Authorization": "Basic " + base64("am:nope")}, code: 403, outcome: "forbidden"},
		{name: "basic auth accepted", body: payload(t, alert("Basic", nil)), hdr: map[string]string{"Authorization": basic}, code: 200, outcome: "recorded"},
		{name: "wrong content type", body: good, hdr: map[string]string{"Content-Type": "text/plain"}, code: 415, errSubstr: "application/json", outcome: "unsupported_media_type"},
		{name: "json with charset", body: good, hdr: map[string]string{"Content-Type": "application/json; charset=utf-8"}, code: 200, outcome: "recorded"},
		{name: "huge body", body: huge, code: 413, errSubstr: "limit of 65536 bytes", outcome: "too_large"},
		{name: "malformed JSON", body: []byte(`{"version":"4",`), code: 400, errSubstr: "malformed JSON", outcome: "bad_request"},
		{name: "not an object", body: []byte(`[1,2]`), code: 400, errSubstr: "expected an object, got JSON array", outcome: "bad_request"},
		{name: "wrong version", body: bytes.Replace(good, []byte(`"version":"4"`), []byte(`"version":"3"`), 1), code: 400, field: "version", errSubstr: `unsupported version "3"`, outcome: "bad_request"},
		{name: "missing status", body: bytes.Replace(good, []byte(`"status":"firing","truncatedAlerts"`), []byte(`"truncatedAlerts"`), 1), code: 400, field: "status", errSubstr: "missing", outcome: "bad_request"},
		{name: "bad startsAt", body: bytes.Replace(good, []byte(`"2026-11-27T10:00:00.123456789Z"`), []byte(`"yesterday"`), 1), code: 400, field: "alerts[0].startsAt", errSubstr: `"yesterday" is not an RFC 3339 time`, outcome: "bad_request"},
		{name: "GET", method: http.MethodGet, code: 405, outcome: "method_not_allowed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			before := value(t, b.reg, "vectorheal_webhook_notifications_total", c.outcome)
			var r response
			if c.method == http.MethodGet {
				resp, err := http.Get(b.srv.URL + webhook.Path)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				r.code, r.hdr = resp.StatusCode, resp.Header
			} else {
				r = post(t, b.srv.URL, c.body, c.hdr)
			}
			if r.code != c.code {
				t.Fatalf("status %d, want %d; body %v", r.code, c.code, r.body)
			}
			if c.field != "" && r.body["field"] != c.field {
				t.Errorf("field %v, want %q (body %v)", r.body["field"], c.field, r.body)
			}
			if c.errSubstr != "" && !strings.Contains(fmt.Sprint(r.body["error"]), c.errSubstr) {
				t.Errorf("error %q does not contain %q", r.body["error"], c.errSubstr)
			}
			if c.code == 401 && !strings.Contains(r.hdr.Get("WWW-Authenticate"), `Bearer realm="vectorheal"`) {
				t.Errorf("401 without a Bearer challenge: %q", r.hdr.Get("WWW-Authenticate"))
			}
			after := value(t, b.reg, "vectorheal_webhook_notifications_total", c.outcome)
			if after != before+1 {
				t.Errorf("notifications{outcome=%q} went from %v to %v", c.outcome, before, after)
			}
		})
	}
	// Only the accepted notifications left rows.
	if n := countRows(t, b.pool); n != 2 {
		t.Errorf("%d alert rows, want 2 (basic auth and charset cases; the charset case repeats no alert of another)", n)
	}
}

func base64(s string) string {
	req, _ := http.NewRequest(http.MethodGet, "http://x", nil)
	user, pass, _ := strings.Cut(s, ":")
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}

// value returns the value of a counter child registered in reg.
func value(t testing.TB, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			for _, lp := range m.GetLabel() {
				if lp.GetName() == "outcome" && lp.GetValue() == outcome {
					return m.GetCounter().GetValue()
				}
			}
		}
	}
	t.Fatalf("no %s{outcome=%q}", name, outcome)
	return 0
}

// fingerprint is Alertmanager's fingerprint of a label set.
func fingerprint(l template.KV) string {
	ls := model.LabelSet{}
	for k, v := range l {
		ls[model.LabelName(k)] = model.LabelValue(v)
	}
	return ls.Fingerprint().String()
}

func TestLabelsAreData(t *testing.T) {
	b := setup(t, nil)
	evil := map[string]string{
		"indexrelname":  `items_idx"; DROP TABLE alerts; --`,
		"relname":       `$(rm -rf /) ` + "`reboot`",
		"datname":       `app'); DELETE FROM alerts; --`,
		"ünïcödé label": "ok",
	}
	body := payload(t, alert("PgvectorHNSWDeadTuples", evil))
	if r := post(t, b.srv.URL, body, nil); r.code != 200 {
		t.Fatalf("status %d: %v", r.code, r.body)
	}
	var labels map[string]string
	if err := b.pool.QueryRow(context.Background(), "SELECT labels FROM alerts").Scan(&labels); err != nil {
		t.Fatal(err)
	}
	for k, v := range evil {
		if labels[k] != v {
			t.Errorf("label %q stored as %q, want %q", k, labels[k], v)
		}
	}
	if n := countRows(t, b.pool); n != 1 {
		t.Errorf("%d rows, want 1", n)
	}
	// A NUL byte cannot be stored; it is refused at once instead of failing on every retry.
	nul := payload(t, alert("X", map[string]string{"relname": "a\x00b"}))
	r := post(t, b.srv.URL, nul, nil)
	if r.code != 400 || r.body["field"] != "alerts[0].labels.relname" {
		t.Errorf("NUL label: %d %v", r.code, r.body)
	}
}

func TestIdempotentIntake(t *testing.T) {
	b := setup(t, nil)
	alerts := []template.Alert{alert("A", nil), alert("B", nil), alert("C", nil)}
	resolved := alert("A", nil)
	resolved.Status = "resolved"
	resolved.EndsAt = resolved.StartsAt.Add(time.Hour)
	body := payload(t, alerts...)

	// The same notification twice (a retry), then from two senders at once (an HA pair).
	for i := 0; i < 2; i++ {
		if r := post(t, b.srv.URL, body, nil); r.code != 200 {
			t.Fatalf("post %d: %d %v", i, r.code, r.body)
		}
	}
	var wg sync.WaitGroup
	for i := 0; i < 2; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := post(t, b.srv.URL, body, nil); r.code != 200 {
				t.Errorf("concurrent post: %d %v", r.code, r.body)
			}
		}()
	}
	wg.Wait()
	// A resolved notification for A is a new event for the hook.
	if r := post(t, b.srv.URL, payload(t, resolved), nil); r.code != 200 {
		t.Fatalf("resolved: %d %v", r.code, r.body)
	}
	if n := countRows(t, b.pool); n != 4 {
		t.Errorf("%d rows, want 4 (3 firing, 1 resolved)", n)
	}
	for _, a := range alerts {
		fp := fingerprint(a.Labels)
		if got := b.hook.count(fp + "/firing"); got != 1 {
			t.Errorf("hook saw %s firing %d times, want 1", a.Labels["alertname"], got)
		}
	}
	if got := b.hook.count(fingerprint(resolved.Labels) + "/resolved"); got != 1 {
		t.Errorf("hook saw the resolved alert %d times, want 1", got)
	}
	var times int
	if err := b.pool.QueryRow(context.Background(),
		"SELECT times_received FROM alerts WHERE alertname = 'B'").Scan(&times); err != nil {
		t.Fatal(err)
	}
	if times != 4 {
		t.Errorf("B received %d times, want 4", times)
	}
	if got := value(t, b.reg, "vectorheal_webhook_alerts_total", "new"); got != 4 {
		t.Errorf("alerts{outcome=new} = %v, want 4", got)
	}
	if got := value(t, b.reg, "vectorheal_webhook_alerts_total", "duplicate"); got != 9 {
		t.Errorf("alerts{outcome=duplicate} = %v, want 9", got)
	}
}

func TestHookFailureRollsBack(t *testing.T) {
	failing := true
	b := setup(t, func(o *webhook.Options) {
		inner := o.Hook
		o.Hook = func(ctx context.Context, tx pgx.Tx, alerts []webhook.Alert) error {
			if failing {
				return fmt.Errorf("queue full")
			}
			return inner(ctx, tx, alerts)
		}
	})
	body := payload(t, alert("A", nil))
	if r := post(t, b.srv.URL, body, nil); r.code != 500 {
		t.Fatalf("failing hook: %d %v", r.code, r.body)
	}
	if n := countRows(t, b.pool); n != 0 {
		t.Fatalf("%d rows after a failed hook, want 0: the alert and its repair are durable together", n)
	}
	failing = false
	if r := post(t, b.srv.URL, body, nil); r.code != 200 {
		t.Fatalf("retry: %d %v", r.code, r.body)
	}
	if got := b.hook.count(fingerprint(alert("A", nil).Labels) + "/firing"); got != 1 {
		t.Errorf("hook saw the retried alert %d times, want 1", got)
	}
}

func TestStoreDown(t *testing.T) {
	port, err := testenv.FreePort()
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens on port: the state store is down.
	pool, err := store.Open(context.Background(), fmt.Sprintf("postgres://x@127.0.0.1:%d/x?sslmode=disable&connect_timeout=2", port), schema, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	reg := prometheus.NewRegistry()
	h, err := webhook.NewHandler(webhook.Options{Pool: pool, BearerToken: token, Registerer: reg, Logger: logger(t)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	r := post(t, srv.URL, payload(t, alert("A", nil)), nil)
	if r.code != 503 {
		t.Fatalf("status %d, want 503: %v", r.code, r.body)
	}
	if r.hdr.Get("Retry-After") == "" {
		t.Error("503 without Retry-After")
	}
	if got := value(t, reg, "vectorheal_webhook_notifications_total", "store_unavailable"); got != 1 {
		t.Errorf("store_unavailable = %v, want 1", got)
	}
}

func TestNewHandlerRefusesOpenByDefault(t *testing.T) {
	pool, err := pgxpool.New(context.Background(), "postgres://x@127.0.0.1:1/x")
	if err != nil {
		t.Fatal(err)
	}
	defer pool.Close()
	_, err = webhook.NewHandler(webhook.Options{Pool: pool})
	if err == nil || !strings.Contains(err.Error(), "no bearer token or basic auth configured") {
		t.Errorf("err = %v", err)
	}
	if _, err := webhook.NewHandler(webhook.Options{Pool: pool, AllowUnauthenticated: true}); err != nil {
		t.Errorf("explicitly open: %v", err)
	}
}

// TestStoreGoesDownAndComesBack stops the state store's PostgreSQL under a running handler:
// notifications get 503 (Alertmanager retries), and the retry after the restart is recorded.
func TestStoreGoesDownAndComesBack(t *testing.T) {
	b := setup(t, nil)
	pg := testenv.SharedPostgres(t)
	if r := post(t, b.srv.URL, payload(t, alert("Before", nil)), nil); r.code != 200 {
		t.Fatalf("before: %d %v", r.code, r.body)
	}
	pg.Stop()
	body := payload(t, alert("During", nil))
	r := post(t, b.srv.URL, body, nil)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if err := pg.Start(ctx); err != nil {
		t.Fatal(err)
	}
	if r.code != 503 {
		t.Fatalf("store down: %d %v, want 503", r.code, r.body)
	}
	// The pool's connections died with the server; the retry gets a new one.
	var last response
	for i := 0; i < 20; i++ {
		if last = post(t, b.srv.URL, body, nil); last.code == 200 {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	if last.code != 200 {
		t.Fatalf("after restart: %d %v", last.code, last.body)
	}
	if n := countRows(t, b.pool); n != 2 {
		t.Errorf("%d rows, want 2", n)
	}
	if got := b.hook.count(fingerprint(alert("During", nil).Labels) + "/firing"); got != 1 {
		t.Errorf("hook saw the retried alert %d times, want 1", got)
	}
}

// TestHugeChunkedBody sends a body larger than the limit without a Content-Length, so the
// limit is found while reading.
func TestHugeChunkedBody(t *testing.T) {
	b := setup(t, nil)
	body := payload(t, alert("Big", map[string]string{"pad": strings.Repeat("x", 70<<10)}))
	req, err := http.NewRequest(http.MethodPost, b.srv.URL+webhook.Path, io.MultiReader(bytes.NewReader(body)))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestEntityTooLarge || req.ContentLength != 0 {
		t.Errorf("status %d (content length %d), want 413 for a chunked body", resp.StatusCode, req.ContentLength)
	}
	if n := countRows(t, b.pool); n != 0 {
		t.Errorf("%d rows", n)
	}
}

// The test cluster runs with synchronous_commit off; the intake transaction must still ask
// for its commit to be flushed before the 200.
func TestIntakeCommitIsFlushed(t *testing.T) {
	var setting string
	b := setup(t, func(o *webhook.Options) {
		inner := o.Hook
		o.Hook = func(ctx context.Context, tx pgx.Tx, alerts []webhook.Alert) error {
			if err := tx.QueryRow(ctx, `SELECT current_setting('synchronous_commit')`).Scan(&setting); err != nil {
				return err
			}
			return inner(ctx, tx, alerts)
		}
	})
	var def string
	if err := b.pool.QueryRow(context.Background(), `SHOW synchronous_commit`).Scan(&def); err != nil || def != "off" {
		t.Fatalf("precondition: server default synchronous_commit = %q (%v), want off", def, err)
	}
	if r := post(t, b.srv.URL, payload(t, alert("A", nil)), nil); r.code != 200 {
		t.Fatalf("post: %d %v", r.code, r.body)
	}
	if setting != "on" {
		t.Errorf("synchronous_commit inside the intake transaction = %q, want on", setting)
	}
}

// TestDefaultBodyLimitIsTheConfigs: without a limit set the handler takes the default of
// webhook.max_body_bytes, the one the config file gets when it sets none.
func TestDefaultBodyLimitIsTheConfigs(t *testing.T) {
	b := setup(t, func(o *webhook.Options) { o.MaxBodyBytes = 0 })
	cfg, err := config.Parse("vectorheal.yml", []byte("targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n"))
	if err != nil {
		t.Fatal(err)
	}
	limit := cfg.Webhook.MaxBodyBytes
	pad := func(n int64) []byte {
		body := payload(t, alert("Big", map[string]string{"pad": ""}))
		return bytes.Replace(body, []byte(`"pad":""`), []byte(`"pad":"`+strings.Repeat("x", int(n-int64(len(body))))+`"`), 1)
	}
	if r := post(t, b.srv.URL, pad(limit), nil); r.code != 200 {
		t.Errorf("body of exactly %d bytes: %d %v", limit, r.code, r.body)
	}
	r := post(t, b.srv.URL, pad(limit+1), nil)
	if want := fmt.Sprintf("body larger than the limit of %d bytes", limit); r.code != 413 || r.body["error"] != want {
		t.Errorf("body of %d bytes: %d %v, want 413 %q", limit+1, r.code, r.body, want)
	}
}
