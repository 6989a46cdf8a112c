package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/alecthomas/kingpin/v2"
	promconfig "github.com/prometheus/common/config"

	"github.com/vectorheal/vectorheal/internal/amclient"
	"github.com/vectorheal/vectorheal/internal/api"
	"github.com/vectorheal/vectorheal/internal/figure"
	"github.com/vectorheal/vectorheal/remediation/record"
)

// clientOptions are the flags every API subcommand shares.
type clientOptions struct {
	url        string
	token      string
	tokenFile  string
	basicUser  string
	basicFile  string
	httpConfig string
	user       string
	output     string
	timeout    time.Duration
	stdout     io.Writer
}

const clientHelpTail = `

Talks to a running 'vectorheal serve' over HTTP(S) (--url, or VECTORHEAL_URL). Reads need
the read token (remediation.api_read_token) or the admin token, or basic auth as a user of
the server's --web.config.file; calls that change something need the admin token
(remediation.api_token). Give a token with --token, VECTORHEAL_API_TOKEN or --token-file;
basic auth with --basic-auth.username and --basic-auth.password-file; TLS settings (CA,
client certificate) and credentials with --http.config.file, the client file of amtool and
promtool. A token given by flag is sent rather than basic auth: one request carries one.`

func clientCommand(app *kingpin.Application, name, help string, stdout io.Writer) (*kingpin.CmdClause, *clientOptions) {
	c := app.Command(name, help+clientHelpTail)
	o := &clientOptions{stdout: stdout}
	c.Flag("url", "Base URL of the vectorheal server.").Envar("VECTORHEAL_URL").Default("http://localhost:9877").StringVar(&o.url)
	credentialFlags(c, o)
	c.Flag("user", "Who you are, recorded as approver, canceller or silence author.").Default(os.Getenv("USER")).StringVar(&o.user)
	c.Flag("output", "Output format: text or json.").Short('o').Default("text").EnumVar(&o.output, "text", "json")
	c.Flag("timeout", "Timeout of the HTTP call.").Default("30s").DurationVar(&o.timeout)
	return c, o
}

// credentialFlags adds the flags that say how to authenticate to the server.
func credentialFlags(c *kingpin.CmdClause, o *clientOptions) {
	c.Flag("token", "API token: the read token, or the admin token for calls that change something.").Envar("VECTORHEAL_API_TOKEN").StringVar(&o.token)
	c.Flag("token-file", "Read the API token from this file.").Envar("VECTORHEAL_API_TOKEN_FILE").StringVar(&o.tokenFile)
	c.Flag("basic-auth.username", "Basic auth user (a basic_auth_users entry of the server's --web.config.file: reads only).").
		Envar("VECTORHEAL_BASIC_AUTH_USERNAME").StringVar(&o.basicUser)
	c.Flag("basic-auth.password-file", "Read the basic auth password from this file.").
		Envar("VECTORHEAL_BASIC_AUTH_PASSWORD_FILE").StringVar(&o.basicFile)
	c.Flag("http.config.file", "HTTP client configuration file (tls_config, basic_auth, authorization), as amtool's.").
		Envar("VECTORHEAL_HTTP_CONFIG_FILE").StringVar(&o.httpConfig)
}

// apiError is an answer other than 2xx.
type apiError struct {
	code int
	msg  string
}

func (e *apiError) Error() string { return fmt.Sprintf("%s (HTTP %d)", e.msg, e.code) }

// credentials sets req's Authorization from the flags: a token, else basic auth; neither
// leaves it to --http.config.file.
func (o *clientOptions) credentials(req *http.Request) error {
	tok := o.token
	if o.tokenFile != "" {
		b, err := os.ReadFile(o.tokenFile)
		if err != nil {
			return fmt.Errorf("--token-file: %w", err)
		}
		tok = strings.TrimSpace(string(b))
	}
	switch {
	case tok != "":
		req.Header.Set("Authorization", "Bearer "+tok)
	case o.basicUser != "":
		var pw string
		if o.basicFile != "" {
			b, err := os.ReadFile(o.basicFile)
			if err != nil {
				return fmt.Errorf("--basic-auth.password-file: %w", err)
			}
			pw = strings.TrimRight(string(b), "\r\n")
		}
		req.SetBasicAuth(o.basicUser, pw)
	case o.basicFile != "":
		return errors.New("--basic-auth.password-file needs --basic-auth.username")
	}
	return nil
}

// httpClient is the client of --http.config.file, or Go's default one.
func (o *clientOptions) httpClient() (*http.Client, error) {
	if o.httpConfig == "" {
		return http.DefaultClient, nil
	}
	cfg, _, err := promconfig.LoadHTTPConfigFile(o.httpConfig)
	if err != nil {
		return nil, fmt.Errorf("--http.config.file: %w", err)
	}
	c, err := promconfig.NewClientFromConfig(*cfg, "vectorheal")
	if err != nil {
		return nil, fmt.Errorf("--http.config.file: %w", err)
	}
	return c, nil
}

// call sends one API request; out receives the decoded JSON answer.
func (o *clientOptions) call(ctx context.Context, method, path string, body, out any) error {
	hc, err := o.httpClient()
	if err != nil {
		return err
	}
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return err
		}
		rd = bytes.NewReader(b)
	}
	ctx, cancel := context.WithTimeout(ctx, o.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimSuffix(o.url, "/")+api.Prefix+path, rd)
	if err != nil {
		return fmt.Errorf("--url: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if err := o.credentials(req); err != nil {
		return err
	}
	if o.user != "" {
		req.Header.Set(api.UserHeader, o.user)
	}
	res, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach vectorheal at %s: %w", o.url, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(io.LimitReader(res.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("read answer: %w", err)
	}
	if res.StatusCode/100 != 2 {
		var e api.ErrorBody
		if json.Unmarshal(data, &e) != nil || e.Error == "" {
			e.Error = strings.TrimSpace(string(data))
		}
		return &apiError{code: res.StatusCode, msg: e.Error}
	}
	if o.output == "json" {
		_, err := o.stdout.Write(data)
		return err
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("decode answer: %w", err)
		}
	}
	return nil
}

// run wraps a subcommand body: errors go to stderr and exit 1.
func (o *clientOptions) run(stderr io.Writer, f func(ctx context.Context) error) action {
	return func(ctx context.Context, _ *slog.Logger) int {
		if err := f(ctx); err != nil {
			fmt.Fprintf(stderr, "vectorheal: %v\n", err)
			return 1
		}
		return 0
	}
}

func (o *clientOptions) text() bool { return o.output == "text" }

func registerStatus(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "status", "Show the healing status: paused or not, repairs running and queued, open circuits, pauses.", stdout)
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		var st api.StatusBody
		if err := o.call(ctx, "GET", "/status", nil, &st); err != nil || !o.text() {
			return err
		}
		state := "active"
		if st.Paused {
			state = "PAUSED"
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintf(w, "healing:\t%s\n", state)
		fmt.Fprintf(w, "workers here:\t%v (%s)\n", st.Workers, st.Runner)
		fmt.Fprintf(w, "running:\t%d\n", st.Active)
		fmt.Fprintf(w, "queued:\t%d\n", st.Queued)
		fmt.Fprintf(w, "awaiting approval:\t%d\n", st.AwaitingApproval)
		fmt.Fprintf(w, "runbook entries:\t%d\n", st.RunbookEntries)
		fmt.Fprintf(w, "last 24h:\t%s\n", countsText(st.Last24h))
		for _, c := range st.OpenCircuits {
			fmt.Fprintf(w, "circuit OPEN:\t%s %s/%s.%s after %d failures (reset-circuit to resume)\n", c.Target, c.Datname, c.Schema, c.Index, c.Failures)
		}
		for _, p := range st.Pauses {
			fmt.Fprintf(w, "pause:\t%s until %s by %s: %s\n", matchersText(p.Matchers), p.EndsAt.Format(time.RFC3339), p.CreatedBy, p.Comment)
		}
		if st.PausesError != "" {
			fmt.Fprintf(w, "pauses:\tunknown (%s)\n", st.PausesError)
		}
		return w.Flush()
	})
}

func countsText(m map[string]int) string {
	if len(m) == 0 {
		return "no repairs"
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%d", k, m[k]))
	}
	return strings.Join(parts, " ")
}

func matchersText(ms []amclient.Matcher) string {
	parts := make([]string, 0, len(ms))
	for _, m := range ms {
		op := "="
		switch {
		case m.IsRegex && m.IsEqual:
			op = "=~"
		case m.IsRegex:
			op = "!~"
		case !m.IsEqual:
			op = "!="
		}
		parts = append(parts, m.Name+op+strconv.Quote(m.Value))
	}
	return "{" + strings.Join(parts, ", ") + "}"
}

func registerIssues(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "issues", "List the alerts received from Alertmanager, newest first, with the repairs each caused.", stdout)
	firing := c.Flag("firing", "Only alerts still firing.").Bool()
	limit := c.Flag("limit", "At most this many alerts.").Default("50").Int()
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		var is []record.Issue
		q := fmt.Sprintf("/issues?limit=%d", *limit)
		if *firing {
			q += "&firing=true"
		}
		if err := o.call(ctx, "GET", q, nil, &is); err != nil || !o.text() {
			return err
		}
		next, err := o.budgets(ctx)
		if err != nil {
			return err
		}
		return printIssues(stdout, is, next.of)
	})
}

func registerRepairs(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "repairs", `List repairs (running, queued and history), newest first; with an ID, show that
repair in full: plan, impact estimates, SQL run, figures before and after, validation, outcome.`, stdout)
	id := c.Arg("id", "Repair to show.").Int64()
	f := struct{ target, schema, index, outcome string }{}
	c.Flag("target", "Only repairs of this target.").StringVar(&f.target)
	c.Flag("schema", "Only repairs of indexes in this schema.").StringVar(&f.schema)
	c.Flag("index", "Only repairs of this index.").StringVar(&f.index)
	c.Flag("outcome", "Only repairs in this state: active, queued, awaiting_approval, running, succeeded, failed, rolled_back, skipped, dry_run, cancelled.").StringVar(&f.outcome)
	limit := c.Flag("limit", "At most this many repairs.").Default("50").Int()
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		if *id != 0 {
			var r record.Repair
			if err := o.call(ctx, "GET", fmt.Sprintf("/repairs/%d", *id), nil, &r); err != nil || !o.text() {
				return err
			}
			return printRepair(stdout, r)
		}
		q := fmt.Sprintf("/repairs?limit=%d", *limit)
		for k, v := range map[string]string{"target": f.target, "schema": f.schema, "index": f.index, "outcome": f.outcome} {
			if v != "" {
				q += "&" + k + "=" + url.QueryEscape(v)
			}
		}
		var rs []record.Repair
		if err := o.call(ctx, "GET", q, nil, &rs); err != nil || !o.text() {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tSTATE\tREASON\tENTRY\tTARGET\tINDEX\tCREATED")
		for _, r := range rs {
			fmt.Fprintf(w, "%d\t%s\t%s\t%s\t%s\t%s.%s\t%s\n", r.ID, r.State, r.Reason, r.Entry, r.Target, r.Schema, r.Index,
				r.CreatedAt.Format(time.RFC3339))
		}
		if err := w.Flush(); err != nil {
			return err
		}
		next, err := o.budgets(ctx)
		if err != nil {
			return err
		}
		return printBudgets(stdout, next.list, time.Now())
	})
}

func printRepair(w io.Writer, r record.Repair) error {
	fmt.Fprintf(w, "repair %d: %s", r.ID, r.State)
	if r.Reason != "" {
		fmt.Fprintf(w, " (%s)", r.Reason)
	}
	fmt.Fprintf(w, "\nentry %s, index %s %s/%s.%s, priority %d, requested by %s\n", r.Entry, r.Target, r.Datname, r.Schema, r.Index,
		r.Priority, r.RequestedBy)
	if r.ApprovedBy != "" {
		fmt.Fprintf(w, "approved by %s\n", r.ApprovedBy)
	}
	if r.Error != "" {
		fmt.Fprintf(w, "error: %s\n", r.Error)
	}
	for _, s := range r.Steps {
		fmt.Fprintf(w, "step %d %s: %s\n", s.Position+1, s.Strategy, s.State)
		if s.Impact != nil {
			fmt.Fprintf(w, "  impact: lock=%q index_size=%s extra_disk=%s estimated=%s\n", s.Impact.LockLevel,
				figure.Value("index_bytes", float64(s.Impact.IndexBytes)), figure.Value("disk_bytes", float64(s.Impact.DiskBytesNeeded)),
				estimate(s.Impact.EstimatedDuration))
		}
		for _, q := range s.Statements {
			fmt.Fprintf(w, "  sql: %s\n", q)
		}
		plannedSQL(w, s.Statements, s.Impact)
		if len(s.Before) > 0 || len(s.After) > 0 {
			fmt.Fprintf(w, "  before: %s\n  after:  %s\n", figure.Pairs(s.Before), figure.Pairs(s.After))
		}
		if len(s.Validation) > 0 {
			fmt.Fprintf(w, "  validation: %s\n", validationText(s.Validation))
		}
		if s.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", s.Error)
		}
	}
	return nil
}

// validationText writes a step's recorded validation as its bound and outcome, the figures in
// their units; a record of another shape is shown as the JSON it is.
func validationText(raw json.RawMessage) string {
	var v struct {
		Figure   string   `json:"figure"`
		Measures string   `json:"measured_figure"` // the fallback, when it was measured instead
		Op       string   `json:"op"`
		Value    float64  `json:"value"`
		Measured *float64 `json:"measured"`
		Tries    int      `json:"tries"`
		Passed   bool     `json:"passed"`
		Error    string   `json:"error"`
	}
	if json.Unmarshal(raw, &v) != nil || v.Figure == "" {
		return string(raw)
	}
	outcome := "failed"
	if v.Passed {
		outcome = "passed"
	}
	fig := v.Figure
	if v.Measures != "" {
		fig = v.Measures // the figure cannot be known on the target
	}
	s := fmt.Sprintf("%s %s %s %s", fig, v.Op, figure.Value(fig, v.Value), outcome)
	if v.Measures != "" {
		s += " (" + v.Figure + " unknown here)"
	}
	if v.Measured != nil {
		s += " measured=" + figure.Value(fig, *v.Measured)
	}
	s += fmt.Sprintf(" tries=%d", v.Tries)
	if v.Error != "" {
		s += " error=" + strconv.Quote(v.Error)
	}
	return s
}

// estimate writes an impact's duration estimate; 0 means the strategy could not tell.
func estimate(d time.Duration) string {
	if d <= 0 {
		return "unknown"
	}
	return figure.Value("estimate_seconds", d.Seconds())
}

func registerRepair(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "repair", `Queue a manual repair of one index with one strategy. The index is looked up in the
target's catalog first; a manual repair skips the alert and budget checks (cooldown, backoff,
flap guard, circuit; a person asked for it) but still waits for the index lock; its time counts
in the index's budget.`, stdout)
	var b api.TriggerBody
	c.Flag("target", "Target (configured database name).").Required().StringVar(&b.Target)
	c.Flag("schema", "Schema of the index.").Default("public").StringVar(&b.Schema)
	c.Flag("index", "Index name.").Required().StringVar(&b.Index)
	c.Flag("strategy", "Strategy: "+manualStrategies()+" (sql runs only from a runbook).").Required().StringVar(&b.Strategy)
	params := c.Flag("param", "Strategy parameter name=value (value read as JSON when it parses, else as a string); repeatable.").Strings()
	c.Flag("dry-run", "Record the plan and impact estimate, run nothing.").BoolVar(&b.DryRun)
	c.Flag("repair-timeout", "Timeout of the repair, e.g. 30m (default: remediation.default_timeout).").StringVar(&b.Timeout)
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		var err error
		if b.Params, err = parseParams(*params); err != nil {
			return err
		}
		var res api.Created
		if err := o.call(ctx, "POST", "/repairs", b, &res); err != nil || !o.text() {
			return err
		}
		fmt.Fprintf(stdout, "repair %v queued; follow it with: vectorheal repairs %v\n", res.ID, res.ID)
		return nil
	})
}

func parseParams(kvs []string) (map[string]any, error) {
	out := map[string]any{}
	for _, kv := range kvs {
		k, v, ok := strings.Cut(kv, "=")
		if !ok || k == "" {
			return nil, fmt.Errorf("--param %q: want name=value", kv)
		}
		var x any
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			x = v
		}
		out[k] = x
	}
	return out, nil
}

func registerApprove(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	return repairAction(app, stdout, stderr, "approve", "Approve a repair awaiting approval (runbook approval: required); it is queued at once.")
}

func registerCancel(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	return repairAction(app, stdout, stderr, "cancel", "Cancel a repair: a queued one never runs; a running one has its SQL cancelled and is rolled back.")
}

func repairAction(app *kingpin.Application, stdout, stderr io.Writer, verb, help string) (string, action) {
	c, o := clientCommand(app, verb, help, stdout)
	id := c.Arg("id", "Repair id (see vectorheal repairs).").Required().Int64()
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		var d api.Done
		if err := o.call(ctx, "POST", fmt.Sprintf("/repairs/%d/%s", *id, verb), nil, &d); err != nil || !o.text() {
			return err
		}
		fmt.Fprintln(stdout, d.Message)
		return nil
	})
}

// indexFlags adds --target, --datname, --schema and --index.
func indexFlags(c *kingpin.CmdClause, b *api.IndexBody, targetRequired bool) {
	t := c.Flag("target", "Target (configured database name).")
	if targetRequired {
		t = t.Required()
	}
	t.StringVar(&b.Target)
	c.Flag("datname", "Database name, when a target's alerts name several.").StringVar(&b.Datname)
	c.Flag("schema", "Schema of the index (default public when --index is given).").StringVar(&b.Schema)
	c.Flag("index", "Index name.").StringVar(&b.Index)
}

func registerResetCircuit(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "reset-circuit", `Close the circuit breaker of an index: after remediation.circuit_breaker_failures
failed repairs in a row auto-healing of that index stopped; this lets it resume.`, stdout)
	var b api.IndexBody
	indexFlags(c, &b, true)
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		if b.Index == "" {
			return errors.New("--index is required")
		}
		var d api.Done
		if err := o.call(ctx, "POST", "/circuits/reset", b, &d); err != nil || !o.text() {
			return err
		}
		fmt.Fprintln(stdout, d.Message)
		return nil
	})
}

func registerRequestCheck(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "request-check", `Ask the exporter to run the background health checks of an index (or of every index
of the target) ahead of schedule. The request is recorded in the state store; the exporter
picks it up on its next round. For a one-shot report without a server use 'vectorheal check'.`, stdout)
	var b api.IndexBody
	indexFlags(c, &b, true)
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		var res api.Created
		if err := o.call(ctx, "POST", "/checks", b, &res); err != nil || !o.text() {
			return err
		}
		fmt.Fprintf(stdout, "check request %v recorded\n", res.ID)
		return nil
	})
}

func registerPause(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "pause", `Pause healing with an Alertmanager silence: of one index (--target --index), of a
target (--target) or of every target (--all). The silence matches only the alerts the
server's runbook acts on (their alertname) in that scope, never vectorheal's own health
alerts (Vectorheal*) and never alerts no runbook entry acts on, so people are still notified
of those. Silenced alerts neither notify nor repair; a repair already queued is skipped as
silenced when its turn comes. A pause covers the runbook's alerts of the moment it was made:
pause again after a runbook gains entries. Prints what the pause covers.`, stdout)
	var b api.PauseBody
	indexFlags(c, &b.IndexBody, false)
	c.Flag("all", "Pause healing on every target.").BoolVar(&b.All)
	c.Flag("duration", "How long the pause lasts.").Default("1h").StringVar(&b.Duration)
	c.Flag("comment", "Why, shown in Alertmanager.").StringVar(&b.Comment)
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		if !b.All && b.Target == "" {
			return errors.New("give --target (and --index), or --all to pause every target")
		}
		var res api.PauseResult
		if err := o.call(ctx, "POST", "/pause", b, &res); err != nil || !o.text() {
			return err
		}
		printPause(stdout, res)
		return nil
	})
}

// printPause says what a pause covers.
func printPause(w io.Writer, res api.PauseResult) {
	fmt.Fprintf(w, "paused %s: silence %v; undo with: vectorheal resume %v\n", res.Scope, res.ID, res.ID)
	if len(res.Uncovered) > 0 {
		fmt.Fprintf(w, "covers: every alert of %s, as runbook entries %s select alerts by other labels than alertname\n",
			res.Scope, strings.Join(res.Uncovered, ", "))
	} else {
		fmt.Fprintf(w, "covers: the runbook's alerts %s\n", strings.Join(res.Alerts, ", "))
	}
	fmt.Fprintf(w, "never silenced: vectorheal's own alerts (alertname=~%q), and alerts no runbook entry acts on\n", res.Excluded)
	fmt.Fprintf(w, "silence matchers: %s\n", matchersText(res.Matchers))
}

func registerResume(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "resume", `Resume healing: expire a pause by its silence id, or the pause made with the same
--target/--index flags (no flags: the pause of everything).`, stdout)
	var b api.ResumeBody
	c.Arg("id", "Silence id of the pause (see vectorheal pauses).").StringVar(&b.ID)
	indexFlags(c, &b.IndexBody, false)
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		var d api.Done
		if err := o.call(ctx, "POST", "/resume", b, &d); err != nil || !o.text() {
			return err
		}
		fmt.Fprintln(stdout, d.Message)
		return nil
	})
}

func registerPauses(app *kingpin.Application, stdout, stderr io.Writer) (string, action) {
	c, o := clientCommand(app, "pauses", "List the pauses in force (vectorheal's Alertmanager silences, active or pending).", stdout)
	return c.FullCommand(), o.run(stderr, func(ctx context.Context) error {
		var ps []amclient.Silence
		if err := o.call(ctx, "GET", "/pauses", nil, &ps); err != nil || !o.text() {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tMATCHERS\tUNTIL\tBY\tCOMMENT")
		for _, p := range ps {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", p.ID, matchersText(p.Matchers), p.EndsAt.Format(time.RFC3339), p.CreatedBy, p.Comment)
		}
		return w.Flush()
	})
}
