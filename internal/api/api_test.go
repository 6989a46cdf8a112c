package api_test

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/alertmanager/pkg/labels"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/api"
	"github.com/vectorheal/vectorheal/internal/catalog"
	"github.com/vectorheal/vectorheal/internal/config"
	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/targets"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/remediation/runbook"
	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func TestMain(m *testing.M) { os.Exit(testenv.Main(m)) }

const (
	token     = "s3cret-token" // the admin token
	readToken = "read-only-token"
)

// noop runs SELECT 1 on the target. It is a strategy.Definition of its own, so it words its
// refusal of an unknown parameter itself.
type noop struct{}

func (noop) Spec() strategy.Spec { return strategy.Spec{Name: "noop", Description: "does nothing"} }
func (n noop) Bind(p strategy.Params) (strategy.Step, error) {
	for k := range p {
		if k != "fail" {
			return nil, errors.New("unknown parameter " + k)
		}
	}
	return noopStep{p: p}, nil
}

type noopStep struct{ p strategy.Params }

func (noopStep) Spec() strategy.Spec       { return noop{}.Spec() }
func (s noopStep) Params() strategy.Params { return s.p }
func (noopStep) Figures(string) []string   { return nil }
func (noopStep) Plan(context.Context, strategy.Env, catalog.Index) (strategy.Impact, error) {
	return strategy.Impact{LockLevel: "NONE", Statements: []string{"SELECT 1"}}, nil
}
func (noopStep) Run(ctx context.Context, env strategy.Env, _ catalog.Index) (strategy.Outcome, error) {
	_, err := env.Pool.Exec(ctx, "SELECT 1")
	return strategy.Outcome{Statements: []string{"SELECT 1"}}, err
}
func (noopStep) Rollback(context.Context, strategy.Env, catalog.Index, json.RawMessage) error {
	return nil
}

// measurer reads one figure that is always 1: the API's tests are about requests, not figures.
func measurer() strategy.Measurer {
	return strategy.Single([]string{"one"}, func(context.Context, *pgxpool.Pool, catalog.Index, string) (float64, error) {
		return 1, nil
	})
}

type client struct {
	t   *testing.T
	url string
}

// call sends a request and decodes the answer into out (when not nil); it returns the code.
func (c client) call(method, path, tok string, body any, out any) int {
	c.t.Helper()
	var rd io.Reader
	if s, ok := body.(string); ok {
		rd = strings.NewReader(s)
	} else if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, c.url+path, rd)
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(api.UserHeader, "tester")
	if tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		c.t.Fatal(err)
	}
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			c.t.Fatalf("%s %s: %d %s: %v", method, path, res.StatusCode, data, err)
		}
	}
	return res.StatusCode
}

func setup(t *testing.T) (client, *amclient.Client, *pgxpool.Pool, string) {
	t.Helper()
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	ctx := t.Context()
	state, err := store.Open(ctx, dsn, "vh", 10)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(state.Close)
	logger := slog.New(slog.DiscardHandler)
	if _, err := store.Migrate(ctx, state, "vh", logger); err != nil {
		t.Fatal(err)
	}
	for _, q := range []string{
		`CREATE TABLE public.t (id bigserial PRIMARY KEY, v vector(3))`,
		`CREATE INDEX t_v_idx ON public.t USING hnsw (v vector_l2_ops)`,
	} {
		if _, err := state.Exec(ctx, q); err != nil {
			t.Fatal(err)
		}
	}
	ts, err := targets.Open(ctx, []config.Target{{Name: "db1", DSN: config.Secret{Value: dsn}, MaxConnections: 4}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(ts.Close)
	// The real sql strategy: a manual request for it is refused by its capability.
	shipped, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	sqlStrategy, _ := shipped.Get("sql")
	reg, err := strategy.NewRegistry(noop{}, sqlStrategy)
	if err != nil {
		t.Fatal(err)
	}
	am := testenv.StartAlertmanager(t, "route: {receiver: 'null'}\nreceivers: [{name: 'null'}]\n")
	ac, err := amclient.New(config.Alertmanager{URL: am.URL})
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{State: state, Schema: "vh", Targets: ts, Strategies: reg, Measurer: measurer(),
		Runbook: func() *runbook.Runbook { return nil }, Config: config.DefaultRemediation(), Workers: true, PollInterval: 100 * time.Millisecond,
		Alertmanager: ac, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = e.StopAndCancel(context.Background()) })
	h, err := api.New(api.Options{Engine: e, Silences: ac, Access: api.Access{AdminToken: token, ReadToken: readToken},
		Runbook: func() *runbook.Runbook { return healingRunbook(t) }, Logger: logger})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return client{t: t, url: srv.URL + api.Prefix}, ac, state, am.URL
}

// postToAM sends an alert to Alertmanager as Prometheus would.
func postToAM(t *testing.T, amURL string, labels map[string]string) {
	t.Helper()
	body, _ := json.Marshal([]map[string]any{{"labels": labels, "endsAt": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}})
	res, err := http.Post(amURL+"/api/v2/alerts", "application/json", bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
}

func TestRepairsThroughAPI(t *testing.T) {
	c, _, state, _ := setup(t)
	trigger := map[string]any{"target": "db1", "index": "t_v_idx", "strategy": "noop"}

	var e api.ErrorBody
	if code := c.call("POST", "/repairs", "", trigger, &e); code != 401 || !strings.Contains(e.Error, "Bearer") {
		t.Fatalf("no token: %d %q", code, e.Error)
	}
	if code := c.call("POST", "/repairs", "wrong", trigger, &e); code != 403 {
		t.Fatalf("wrong token: %d", code)
	}
	for _, tc := range []struct {
		body any
		code int
		msg  string
	}{
		{`{"target": "db1",`, 400, "malformed JSON"},
		{map[string]any{"target": "db1", "index": "t_v_idx", "strategy": "noop", "bogus": 1}, 400, `unknown field "bogus"`},
		{map[string]any{"target": "db1", "index": "t_v_idx", "strategy": "nope"}, 400, `strategy "nope" is unknown`},
		{map[string]any{"target": "db1", "index": "t_v_idx", "strategy": "sql", "params": map[string]any{"statements": []string{"DROP TABLE t"}}}, 400, "only statements written in the runbook"},
		{map[string]any{"target": "db1", "index": "t_v_idx", "strategy": "noop", "params": map[string]any{"x": 1}}, 400, "unknown parameter x"},
		{map[string]any{"target": "db1", "index": "t_v_idx; DROP TABLE t", "strategy": "noop"}, 404, "no such index"},
		{map[string]any{"target": "nowhere", "index": "t_v_idx", "strategy": "noop"}, 404, `target "nowhere"`},
		{map[string]any{"target": "db1", "index": "t_v_idx", "strategy": "noop", "timeout": "soon"}, 400, "timeout"},
	} {
		if code := c.call("POST", "/repairs", token, tc.body, &e); code != tc.code || !strings.Contains(e.Error, tc.msg) {
			t.Errorf("POST %v: %d %q, want %d containing %q", tc.body, code, e.Error, tc.code, tc.msg)
		}
	}
	var exists bool
	if err := state.QueryRow(t.Context(), `SELECT to_regclass('public.t') IS NOT NULL`).Scan(&exists); err != nil || !exists {
		t.Fatal("table t is gone")
	}

	var created struct{ ID int64 }
	if code := c.call("POST", "/repairs", token, trigger, &created); code != 202 || created.ID == 0 {
		t.Fatalf("trigger: %d %+v", code, created)
	}
	var rep engine.Repair
	deadline := time.Now().Add(30 * time.Second)
	for rep.State != "succeeded" {
		if time.Now().After(deadline) {
			t.Fatalf("repair %+v did not succeed", rep)
		}
		time.Sleep(100 * time.Millisecond)
		if code := c.call("GET", "/repairs/"+itoa(created.ID), readToken, nil, &rep); code != 200 {
			t.Fatalf("get repair: %d", code)
		}
	}
	if rep.RequestedBy != "tester" || len(rep.Steps) != 1 || rep.Steps[0].Statements[0] != "SELECT 1" {
		t.Fatalf("repair %+v", rep)
	}
	var list []engine.Repair
	if code := c.call("GET", "/repairs?target=db1&index=t_v_idx&outcome=succeeded", readToken, nil, &list); code != 200 || len(list) != 1 {
		t.Fatalf("list: %d %+v", code, list)
	}
	if code := c.call("GET", "/repairs?outcome=exploded", readToken, nil, &e); code != 400 {
		t.Fatalf("bad outcome: %d", code)
	}
	if code := c.call("GET", "/repairs?colour=red", readToken, nil, &e); code != 400 || !strings.Contains(e.Error, "colour") {
		t.Fatalf("unknown filter: %d %q", code, e.Error)
	}
	if code := c.call("GET", "/repairs/abc", readToken, nil, &e); code != 400 {
		t.Fatalf("bad id: %d", code)
	}
	if code := c.call("GET", "/repairs/99999", readToken, nil, &e); code != 404 {
		t.Fatalf("missing repair: %d", code)
	}
	if code := c.call("POST", "/repairs/"+itoa(created.ID)+"/approve", token, nil, &e); code != 409 {
		t.Fatalf("approve finished repair: %d %q", code, e.Error)
	}
	if code := c.call("POST", "/repairs/"+itoa(created.ID)+"/cancel", token, nil, &e); code != 409 {
		t.Fatalf("cancel finished repair: %d %q", code, e.Error)
	}
	if code := c.call("POST", "/circuits/reset", token, map[string]string{"target": "db1", "index": "t_v_idx"}, &e); code != 200 {
		t.Fatalf("reset circuit: %d %q", code, e.Error)
	}
	// The manual repair counts in the index's budget; it holds nothing back.
	var budgets []engine.IndexBudget
	if code := c.call("GET", "/budgets", readToken, nil, &budgets); code != 200 || len(budgets) != 1 {
		t.Fatalf("budgets: %d %+v", code, budgets)
	}
	if b := budgets[0]; b.Target != "db1" || b.Index != "t_v_idx" || !b.Allowed || b.HeldBy != "" ||
		b.UsedRatio <= 0 || b.Share != 0.1 || b.Window != 24*time.Hour {
		t.Fatalf("budget %+v", b)
	}
	var st api.StatusBody
	if code := c.call("GET", "/status", readToken, nil, &st); code != 200 || st.Last24h["succeeded"] != 1 || !st.Workers {
		t.Fatalf("status: %d %+v", code, st)
	}
	var chk struct{ ID int64 }
	if code := c.call("POST", "/checks", token, map[string]string{"target": "db1", "index": "t_v_idx"}, &chk); code != 202 || chk.ID == 0 {
		t.Fatalf("check: %d", code)
	}
	var pending int
	if err := state.QueryRow(t.Context(), `SELECT count(*) FROM vh.check_requests WHERE done_at IS NULL AND indexrelname = 't_v_idx'`).Scan(&pending); err != nil || pending != 1 {
		t.Fatalf("check requests pending %d (%v)", pending, err)
	}
}

// healingRunbook is the runbook the API's pauses are scoped to: one entry by name, one by a
// regular expression, one whose name holds a regular expression's metacharacter.
func healingRunbook(t *testing.T) *runbook.Runbook {
	t.Helper()
	m := func(typ labels.MatchType, v string) labels.Matchers {
		x, err := labels.NewMatcher(typ, "alertname", v)
		if err != nil {
			t.Fatal(err)
		}
		return labels.Matchers{x}
	}
	return &runbook.Runbook{Entries: []*runbook.Entry{
		{Name: "fragmented", Matchers: m(labels.MatchEqual, "PgvectorHNSWFragmented")},
		{Name: "lists", Matchers: m(labels.MatchRegexp, "PgvectorIVFFlatEmptyLists|PgvectorIVFFlatImbalanced")},
		{Name: "dotted", Matchers: m(labels.MatchEqual, "Pg.vector")},
	}}
}

// TestPauseResume: a pause is an Alertmanager silence of the alerts vectorheal acts on (the
// runbook's) in its scope, which really silences them there and nothing else: not
// vectorheal's own health alerts, not alerts only people act on, not other targets.
func TestPauseResume(t *testing.T) {
	c, ac, _, amURL := setup(t)
	var e api.ErrorBody
	if code := c.call("POST", "/pause", "", map[string]string{}, &e); code != 401 {
		t.Fatalf("pause without token: %d", code)
	}
	if code := c.call("POST", "/pause", readToken, map[string]any{"all": true}, &e); code != 403 {
		t.Fatalf("pause with the read token: %d", code)
	}
	if code := c.call("POST", "/pause", token, map[string]string{"index": "t_v_idx"}, &e); code != 400 || !strings.Contains(e.Error, "give a target") {
		t.Fatalf("pause without target: %d %q", code, e.Error)
	}
	if code := c.call("POST", "/pause", token, map[string]string{}, &e); code != 400 || !strings.Contains(e.Error, "all") {
		t.Fatalf("pause without target nor all: %d %q", code, e.Error)
	}
	var idx, all api.PauseResult
	if code := c.call("POST", "/pause", token, map[string]string{"target": "db1", "index": "t_v_idx", "duration": "2h", "comment": "rebuild by hand"}, &idx); code != 201 {
		t.Fatalf("pause: %d", code)
	}
	wantAlerts := []string{`(?:PgvectorIVFFlatEmptyLists|PgvectorIVFFlatImbalanced)`, `Pg\.vector`, `PgvectorHNSWFragmented`}
	if fmt.Sprint(idx.Alerts) != fmt.Sprint(wantAlerts) || idx.Scope != "index db1 public.t_v_idx" || idx.Excluded != api.OwnAlerts || len(idx.Uncovered) != 0 {
		t.Fatalf("index pause covers %+v", idx)
	}
	if code := c.call("POST", "/pause", token, map[string]any{"duration": "30m", "all": true}, &all); code != 201 || all.Scope != "every target" {
		t.Fatalf("pause all: %d %+v", code, all)
	}
	var ps []amclient.Silence
	if code := c.call("GET", "/pauses", readToken, nil, &ps); code != 200 || len(ps) != 2 {
		t.Fatalf("pauses: %d %+v", code, ps)
	}
	var st api.StatusBody
	if c.call("GET", "/status", readToken, nil, &st); !st.Paused || len(st.Pauses) != 2 {
		t.Fatalf("status while paused: %+v", st)
	}

	index := map[string]string{"target": "db1", "datname": "db1", "schemaname": "public", "indexrelname": "t_v_idx"}
	with := func(name string, over ...string) map[string]string {
		ls := map[string]string{"alertname": name}
		for k, v := range index {
			ls[k] = v
		}
		for i := 0; i+1 < len(over); i += 2 {
			ls[over[i]] = over[i+1]
		}
		return ls
	}
	for _, tc := range []struct {
		what   string
		labels map[string]string
		want   []string // the pauses that silence it
	}{
		{"a runbook alert of the index", with("PgvectorHNSWFragmented"), []string{idx.ID, all.ID}},
		{"a runbook alert by regular expression", with("PgvectorIVFFlatImbalanced"), []string{idx.ID, all.ID}},
		{"a runbook alert of another target", with("PgvectorHNSWFragmented", "target", "db2"), []string{all.ID}},
		{"a runbook alert of another index", with("PgvectorHNSWFragmented", "indexrelname", "other_idx"), []string{all.ID}},
		{"vectorheal's own health alert", with("VectorhealRepairsFailing"), nil},
		{"an alert no runbook entry acts on", with("PgvectorLatencySpike"), nil},
		{"a name the escaped dot does not match", with("PgXvector"), nil},
		{"a name longer than the runbook's", with("PgvectorHNSWFragmentedX"), nil},
	} {
		postToAM(t, amURL, tc.labels)
		var got []string
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			s, err := ac.Alert(t.Context(), tc.labels, "")
			if err == nil && s.Found {
				got = s.SilencedBy
				if len(got) == len(tc.want) {
					break
				}
			}
		}
		sort.Strings(got)
		sort.Strings(tc.want)
		if fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("%s: silenced by %v, want %v", tc.what, got, tc.want)
		}
	}

	if code := c.call("POST", "/resume", token, map[string]string{"target": "db1", "index": "t_v_idx"}, &e); code != 200 {
		t.Fatalf("resume: %d %q", code, e.Error)
	}
	if code := c.call("POST", "/resume", token, map[string]string{}, &e); code != 200 {
		t.Fatalf("resume all: %d %q", code, e.Error)
	}
	if code := c.call("POST", "/resume", token, map[string]string{"id": idx.ID}, &e); code != 404 {
		t.Fatalf("resume twice: %d", code)
	}
	if code := c.call("GET", "/pauses", readToken, nil, &ps); code != 200 || len(ps) != 0 {
		t.Fatalf("pauses after resume: %+v", ps)
	}
}

// TestAPICredentials: reads take the read token, the admin token or a web configuration user;
// changes take the admin token only; the webhook's token is neither.
func TestAPICredentials(t *testing.T) {
	basic := func(u, p string) bool { return u == "web" && p == "pw" }
	h := api.RequireRead(api.Access{AdminToken: "admin", ReadToken: "read", BasicUser: basic})(okHandler())
	hw := api.RequireAdmin(api.Access{AdminToken: "admin", ReadToken: "read", BasicUser: basic})(okHandler())
	for _, tc := range []struct {
		auth        string
		read, write int
	}{
		{"", 401, 401},
		{"Bearer admin", 200, 200},
		{"bearer admin", 200, 200},
		{"Bearer read", 200, 403},
		{"Bearer hook-token", 403, 403},
		{"Bearer ", 403, 403},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("web:pw")), 200, 403},
		{"Basic " + base64.StdEncoding.EncodeToString([]byte("web:nope")), 403, 403},
		{"Token admin", 401, 401},
	} {
		for _, x := range []struct {
			h    http.Handler
			want int
		}{{h, tc.read}, {hw, tc.write}} {
			rec := httptest.NewRecorder()
			req := httptest.NewRequest("GET", "/", nil)
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			x.h.ServeHTTP(rec, req)
			if rec.Code != x.want {
				t.Errorf("%q: %d, want %d (%s)", tc.auth, rec.Code, x.want, rec.Body.String())
			}
		}
	}
	// Without tokens: reads and changes are refused with the key to set.
	for _, h := range []http.Handler{api.RequireRead(api.Access{})(okHandler()), api.RequireAdmin(api.Access{ReadToken: "read"})(okHandler())} {
		rec := httptest.NewRecorder()
		req := httptest.NewRequest("GET", "/", nil)
		req.Header.Set("Authorization", "Bearer read")
		h.ServeHTTP(rec, req)
		if rec.Code != 403 || !strings.Contains(rec.Body.String(), "remediation.api_") {
			t.Errorf("no token configured: %d %s", rec.Code, rec.Body.String())
		}
	}
}

func okHandler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(200) })
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// TestIssuesShowNotificationReason: what Alertmanager 0.32+ says about a notification (its
// reason, 0.34's route labels) reaches the issues list; an older Alertmanager's alert has none.
func TestIssuesShowNotificationReason(t *testing.T) {
	c, _, state, _ := setup(t)
	if _, err := state.Exec(t.Context(), `INSERT INTO vh.alerts
		(fingerprint, status, starts_at, alertname, labels, notification_reason, route_labels) VALUES
		('f1', 'firing', now(), 'PgvectorHNSWDeadTuplesPending', '{"alertname":"PgvectorHNSWDeadTuplesPending"}', 'first notification', '{"receiver":"vectorheal"}'),
		('f2', 'firing', now(), 'PgvectorIndexInvalid', '{"alertname":"PgvectorIndexInvalid"}', '', '{}')`); err != nil {
		t.Fatal(err)
	}
	var is []engine.Issue
	if code := c.call("GET", "/issues", readToken, nil, &is); code != 200 || len(is) != 2 {
		t.Fatalf("issues: %d %+v", code, is)
	}
	got := map[string]engine.Issue{}
	for _, i := range is {
		got[i.Fingerprint] = i
	}
	if i := got["f1"]; i.NotificationReason != "first notification" || i.RouteLabels["receiver"] != "vectorheal" {
		t.Errorf("issue of a current Alertmanager: reason %q route labels %v", i.NotificationReason, i.RouteLabels)
	}
	if i := got["f2"]; i.NotificationReason != "" || len(i.RouteLabels) != 0 {
		t.Errorf("issue of an older Alertmanager: reason %q route labels %v", i.NotificationReason, i.RouteLabels)
	}
}
