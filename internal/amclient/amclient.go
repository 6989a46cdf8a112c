// Package amclient talks to Alertmanager's v2 API through Alertmanager's own generated client:
// it asks whether an alert is still firing, silenced or inhibited right before a repair runs,
// and creates, lists and expires the silences that pause healing.
package amclient

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"time"

	httptransport "github.com/go-openapi/runtime/client"
	"github.com/go-openapi/strfmt"
	amapi "github.com/prometheus/alertmanager/api/v2/client"
	"github.com/prometheus/alertmanager/api/v2/client/alert"
	"github.com/prometheus/alertmanager/api/v2/client/silence"
	"github.com/prometheus/alertmanager/api/v2/models"

	"github.com/vectorheal/vectorheal/internal/config"
)

// Client is an Alertmanager v2 API client.
type Client struct {
	api     *amapi.AlertmanagerAPI
	timeout time.Duration
}

// New returns a client for the Alertmanager of cfg. cfg.URL must be set.
func New(cfg config.Alertmanager) (*Client, error) {
	u, err := url.Parse(cfg.URL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("alertmanager.url %q: want http(s)://host[:port][/path]", cfg.URL)
	}
	rt := http.DefaultTransport
	switch {
	case cfg.Username != "":
		pw, err := cfg.Password.Resolve()
		if err != nil {
			return nil, fmt.Errorf("alertmanager.password: %w", err)
		}
		rt = authTransport{next: rt, set: func(r *http.Request) { r.SetBasicAuth(cfg.Username, pw) }}
	case cfg.BearerToken.IsSet():
		tok, err := cfg.BearerToken.Resolve()
		if err != nil {
			return nil, fmt.Errorf("alertmanager.bearer_token: %w", err)
		}
		rt = authTransport{next: rt, set: func(r *http.Request) { r.Header.Set("Authorization", "Bearer "+tok) }}
	}
	base := strings.TrimSuffix(u.Path, "/") + amapi.DefaultBasePath
	tr := httptransport.NewWithClient(u.Host, base, []string{u.Scheme}, &http.Client{Transport: rt})
	timeout := cfg.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	return &Client{api: amapi.New(tr, strfmt.Default), timeout: timeout}, nil
}

// authTransport adds credentials to every request.
type authTransport struct {
	next http.RoundTripper
	set  func(*http.Request)
}

func (t authTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	t.set(r)
	return t.next.RoundTrip(r)
}

// AlertState is what Alertmanager knows of one alert now.
type AlertState struct {
	// Found is false when Alertmanager holds no such alert (it resolved and was dropped, or
	// never reached this Alertmanager).
	Found       bool
	Fingerprint string
	State       string // active, suppressed or unprocessed
	SilencedBy  []string
	InhibitedBy []string
	EndsAt      time.Time
}

// Firing reports whether the alert is active at now (its endsAt not passed).
func (s AlertState) Firing(now time.Time) bool {
	return s.Found && (s.EndsAt.IsZero() || s.EndsAt.After(now))
}

// Alert returns the state of the alert with exactly these labels; fingerprint, when not empty,
// must match too (labels identify an alert, the fingerprint is their hash).
func (c *Client) Alert(ctx context.Context, labels map[string]string, fingerprint string) (AlertState, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	filter := make([]string, 0, len(labels))
	for k, v := range labels {
		filter = append(filter, k+"="+quote(v))
	}
	sort.Strings(filter)
	yes := true
	p := alert.NewGetAlertsParamsWithContext(ctx).WithFilter(filter).
		WithActive(&yes).WithSilenced(&yes).WithInhibited(&yes).WithUnprocessed(&yes)
	res, err := c.api.Alert.GetAlerts(p)
	if err != nil {
		return AlertState{}, fmt.Errorf("alertmanager: list alerts: %w", err)
	}
	for _, a := range res.Payload {
		if len(a.Labels) != len(labels) || (fingerprint != "" && deref(a.Fingerprint) != fingerprint) {
			continue
		}
		st := AlertState{Found: true, Fingerprint: deref(a.Fingerprint)}
		if a.EndsAt != nil {
			st.EndsAt = time.Time(*a.EndsAt)
		}
		if a.Status != nil {
			st.State = deref(a.Status.State)
			st.SilencedBy = a.Status.SilencedBy
			st.InhibitedBy = a.Status.InhibitedBy
		}
		return st, nil
	}
	return AlertState{}, nil
}

// quote renders a label value as a double-quoted matcher value, escaped as Alertmanager's
// matcher parser expects.
func quote(v string) string {
	r := strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`)
	return `"` + r.Replace(v) + `"`
}

// Matcher is one label matcher of a silence.
type Matcher struct {
	Name    string `json:"name"`
	Value   string `json:"value"`
	IsRegex bool   `json:"isRegex"`
	IsEqual bool   `json:"isEqual"`
}

// Silence is a silence as vectorheal creates and lists it.
type Silence struct {
	ID        string    `json:"id"`
	Matchers  []Matcher `json:"matchers"`
	StartsAt  time.Time `json:"startsAt"`
	EndsAt    time.Time `json:"endsAt"`
	CreatedBy string    `json:"createdBy"`
	Comment   string    `json:"comment"`
	State     string    `json:"state,omitempty"` // active, pending or expired
}

// CreateSilence creates s and returns its ID. StartsAt defaults to now.
func (c *Client) CreateSilence(ctx context.Context, s Silence) (string, error) {
	if len(s.Matchers) == 0 {
		return "", errors.New("alertmanager: a silence needs at least one matcher")
	}
	if s.StartsAt.IsZero() {
		s.StartsAt = time.Now()
	}
	if !s.EndsAt.After(s.StartsAt) {
		return "", errors.New("alertmanager: a silence must end after it starts")
	}
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	ms := make(models.Matchers, 0, len(s.Matchers))
	for _, m := range s.Matchers {
		ms = append(ms, &models.Matcher{Name: ptr(m.Name), Value: ptr(m.Value), IsRegex: ptr(m.IsRegex), IsEqual: ptr(m.IsEqual)})
	}
	start, end := strfmt.DateTime(s.StartsAt), strfmt.DateTime(s.EndsAt)
	body := &models.PostableSilence{Silence: models.Silence{
		Matchers: ms, StartsAt: &start, EndsAt: &end, CreatedBy: ptr(s.CreatedBy), Comment: ptr(s.Comment),
	}}
	res, err := c.api.Silence.PostSilences(silence.NewPostSilencesParamsWithContext(ctx).WithSilence(body))
	if err != nil {
		return "", fmt.Errorf("alertmanager: create silence: %w", err)
	}
	return res.Payload.SilenceID, nil
}

// Silences lists silences whose matchers satisfy filter (Alertmanager matcher syntax, e.g.
// `target="prod"`), in every state.
func (c *Client) Silences(ctx context.Context, filter []string) ([]Silence, error) {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	res, err := c.api.Silence.GetSilences(silence.NewGetSilencesParamsWithContext(ctx).WithFilter(filter))
	if err != nil {
		return nil, fmt.Errorf("alertmanager: list silences: %w", err)
	}
	out := make([]Silence, 0, len(res.Payload))
	for _, g := range res.Payload {
		s := Silence{ID: deref(g.ID), CreatedBy: deref(g.CreatedBy), Comment: deref(g.Comment)}
		if g.Status != nil {
			s.State = deref(g.Status.State)
		}
		if g.StartsAt != nil {
			s.StartsAt = time.Time(*g.StartsAt)
		}
		if g.EndsAt != nil {
			s.EndsAt = time.Time(*g.EndsAt)
		}
		for _, m := range g.Matchers {
			eq := m.IsEqual == nil || *m.IsEqual
			s.Matchers = append(s.Matchers, Matcher{Name: deref(m.Name), Value: deref(m.Value), IsRegex: m.IsRegex != nil && *m.IsRegex, IsEqual: eq})
		}
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].StartsAt.After(out[j].StartsAt) })
	return out, nil
}

// ExpireSilence expires the silence id.
func (c *Client) ExpireSilence(ctx context.Context, id string) error {
	ctx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	sid := strfmt.UUID(id)
	if !strfmt.IsUUID(id) {
		return fmt.Errorf("alertmanager: silence id %q is not a UUID", id)
	}
	if _, err := c.api.Silence.DeleteSilence(silence.NewDeleteSilenceParamsWithContext(ctx).WithSilenceID(sid)); err != nil {
		return fmt.Errorf("alertmanager: expire silence %s: %w", id, err)
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
