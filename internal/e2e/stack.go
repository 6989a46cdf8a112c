// Package e2e assembles vectorheal's whole loop from real parts — PostgreSQL with pgvector,
// Prometheus loading the shipped rules, Alertmanager with the shipped configuration, and
// `vectorheal serve` processes with the shipped runbook — with intervals shortened in copies
// of those files only, and observes it: alerts in Prometheus and Alertmanager, repairs in the
// state store. The end-to-end tests and the demo program both run on it.
package e2e

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/internal/shard"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// Config says what to assemble.
type Config struct {
	// Root is the repository root holding rules/, deploy/alertmanager/alertmanager.yml and
	// deploy/runbook.yml. Required.
	Root string
	// Dir is where the stack writes its files; Prometheus and Alertmanager data live below it.
	Dir string
	// Vectorheal is the path of the vectorheal binary. Required.
	Vectorheal string
	// Targets are the databases watched and healed. At least one.
	Targets []Target
	// StateDSN is where vectorheal keeps its state. Default the first target's DSN.
	StateDSN string
	// StateSchema is the state store's schema. Default "vectorheal".
	StateSchema string
	// Replicas is the number of vectorheal processes sharing the state store, each behind
	// an Alertmanager of its own that Prometheus sends every alert to. Only the measuring
	// ones are scraped: the first, or the first Shards. Default 1, at least Shards.
	Replicas int
	// Shards, when more than 1, splits the measuring as docs/operations.md describes it:
	// replica i of the first Shards runs the background checks with --exporter.shard i and
	// --exporter.total-shards Shards, and Prometheus scrapes every one of them. Default 1:
	// the first replica measures every index.
	Shards int
	// ShardBy is the shards' --exporter.shard-by; empty leaves the flag out (by index).
	ShardBy shard.By
	// NoRepairs lists replicas (from 0) started with remediation.disabled: they measure and
	// receive, and leave the repairs to the others.
	NoRepairs []int
	// Runbook overrides deploy/runbook.yml.
	Runbook string
	// AlertmanagerConfig overrides deploy/alertmanager/alertmanager.yml.
	AlertmanagerConfig string
	Timing             Timing
	// WebUser and WebPassword, when set, put vectorheal behind basic auth with
	// --web.config.file (basic_auth_users), as docs/operations.md sets it up for production;
	// Prometheus scrapes with them. The probes and the webhook keep their own rules.
	WebUser, WebPassword string
}

// Target is one database of vectorheal.yml.
type Target struct {
	Name string // label target
	DSN  string // dsn; may be empty when ReadDSN and RepairDSN are both set
	// ReadDSN and RepairDSN are read_dsn and repair_dsn, left out when empty.
	ReadDSN, RepairDSN string
	// StandbyDSN is standby.dsn, left out when empty.
	StandbyDSN string
}

// Stack is a started loop.
type Stack struct {
	Config        Config
	Prometheus    *testenv.Service
	Alertmanagers []*testenv.Service
	Vectorheals   []*Vectorheal
	// Token is the webhook's bearer token.
	Token string
	// TokenFile holds Token.
	TokenFile string
	// APIToken is the API's admin token: never the webhook's.
	APIToken string
}

// Start assembles and starts the stack: vectorheal replicas first (so the receivers exist),
// then the Alertmanagers, then Prometheus. On error everything started is stopped.
func Start(ctx context.Context, c Config) (_ *Stack, err error) {
	if err := c.setDefaults(); err != nil {
		return nil, err
	}
	s := &Stack{Config: c}
	defer func() {
		if err != nil {
			s.Close()
		}
	}()
	runbookFile, err := s.writeFiles()
	if err != nil {
		return nil, err
	}
	webArgs, err := s.writeWebConfig()
	if err != nil {
		return nil, fmt.Errorf("web config: %w", err)
	}
	// Ports first: each Alertmanager must know its replica's URL and each replica its
	// Alertmanager's, and Alertmanager picks its port when it starts. So vectorheal's ports
	// are chosen ahead and the replicas start after the Alertmanagers.
	if err := s.newReplicas(webArgs); err != nil {
		return nil, err
	}
	amSrc := c.AlertmanagerConfig
	if amSrc == "" {
		amSrc = filepath.Join(c.Root, "deploy", "alertmanager", "alertmanager.yml")
	}
	for i, v := range s.Vectorheals {
		amCfg, err := RewriteAlertmanager(amSrc, v.URL+"/webhook/alertmanager", s.TokenFile, c.Timing)
		if err != nil {
			return nil, fmt.Errorf("alertmanager config: %w", err)
		}
		am, err := testenv.LaunchAlertmanager(ctx, filepath.Join(c.Dir, fmt.Sprintf("alertmanager-%d", i+1)), string(amCfg))
		if err != nil {
			return nil, err
		}
		s.Alertmanagers = append(s.Alertmanagers, am)
	}
	for i, v := range s.Vectorheals {
		if err := s.writeVectorhealConfig(v, s.Alertmanagers[i].URL, runbookFile, v.Measures, !slices.Contains(c.NoRepairs, i)); err != nil {
			return nil, err
		}
		if err := v.Start(ctx); err != nil {
			return nil, err
		}
	}
	promCfg, err := s.prometheusConfig()
	if err != nil {
		return nil, err
	}
	if s.Prometheus, err = testenv.LaunchPrometheus(ctx, filepath.Join(c.Dir, "prometheus"), promCfg); err != nil {
		return nil, err
	}
	return s, nil
}

// setDefaults checks what Start needs and fills in the defaults.
func (c *Config) setDefaults() error {
	if c.Root == "" || c.Vectorheal == "" || len(c.Targets) == 0 || c.Dir == "" {
		return errors.New("e2e: Root, Dir, Vectorheal and Targets are required")
	}
	if c.StateDSN == "" {
		c.StateDSN = c.Targets[0].DSN
	}
	if c.StateDSN == "" {
		return errors.New("e2e: StateDSN is required when the first target has no dsn")
	}
	if c.StateSchema == "" {
		c.StateSchema = "vectorheal"
	}
	if c.Shards <= 0 {
		c.Shards = 1
	}
	c.Replicas = max(c.Replicas, c.Shards, 1)
	if c.Runbook == "" {
		c.Runbook = filepath.Join(c.Root, "deploy", "runbook.yml")
	}
	c.Timing.setDefaults()
	return nil
}

// writeFiles makes the stack's directory and writes the webhook token and the runbook with
// the stack's timings; it returns the runbook's path.
func (s *Stack) writeFiles() (string, error) {
	c := s.Config
	if err := os.MkdirAll(c.Dir, 0o755); err != nil {
		return "", err
	}
	tok := make([]byte, 16)
	if _, err := rand.Read(tok); err != nil {
		return "", err
	}
	s.Token = hex.EncodeToString(tok)
	s.APIToken = "api-" + s.Token
	s.TokenFile = filepath.Join(c.Dir, "webhook-token")
	// Alertmanager reads it too, and may run as another user than the test.
	if err := os.WriteFile(s.TokenFile, []byte(s.Token+"\n"), 0o644); err != nil {
		return "", err
	}
	runbook, err := RewriteRunbook(c.Runbook, c.Timing)
	if err != nil {
		return "", fmt.Errorf("runbook: %w", err)
	}
	runbookFile := filepath.Join(c.Dir, "runbook.yml")
	return runbookFile, os.WriteFile(runbookFile, runbook, 0o644)
}

// newReplicas prepares the vectorheal replicas (not started): the first Shards of them
// measure, each its shard when there are several.
func (s *Stack) newReplicas(webArgs []string) error {
	c := s.Config
	for i := range c.Replicas {
		name := fmt.Sprintf("vectorheal-%d", i+1)
		measures := i < c.Shards
		args := webArgs
		if c.Shards > 1 && measures {
			args = append(slices.Clone(webArgs), "--exporter.shard", strconv.Itoa(i), "--exporter.total-shards", strconv.Itoa(c.Shards))
			if c.ShardBy != "" {
				args = append(args, "--exporter.shard-by", string(c.ShardBy))
			}
		}
		v, err := NewVectorheal(c.Vectorheal, name, filepath.Join(c.Dir, name+".yml"), filepath.Join(c.Dir, name+".log"), "", args...)
		if err != nil {
			return err
		}
		v.Measures = measures
		if c.Shards > 1 && measures {
			v.Shard = shard.Shard{Index: i, Total: c.Shards, By: c.ShardBy}
		}
		s.Vectorheals = append(s.Vectorheals, v)
	}
	return nil
}

// writeVectorhealConfig writes replica v's vectorheal.yml. Only the scraped replicas run the
// background checks; the others would measure the same indexes again for nobody. Without
// repairs, its workers are off (remediation.disabled).
func (s *Stack) writeVectorhealConfig(v *Vectorheal, amURL, runbookFile string, exporter, repairs bool) error {
	t := s.Config.Timing
	check := map[string]any{"interval": t.CheckInterval.String(), "timeout": t.CheckInterval.String()}
	if !exporter {
		check = map[string]any{"disabled": true}
	}
	var targets []any
	for _, tg := range s.Config.Targets {
		m := map[string]any{"name": tg.Name}
		for key, dsn := range map[string]string{"dsn": tg.DSN, "read_dsn": tg.ReadDSN, "repair_dsn": tg.RepairDSN} {
			if dsn != "" {
				m[key] = map[string]string{"value": dsn}
			}
		}
		if tg.StandbyDSN != "" {
			m["standby"] = map[string]any{"dsn": map[string]string{"value": tg.StandbyDSN}}
		}
		targets = append(targets, m)
	}
	cfg := map[string]any{
		"listen_address": v.addr,
		"state_store":    map[string]any{"dsn": map[string]string{"value": s.Config.StateDSN}, "schema": s.Config.StateSchema},
		"targets":        targets,
		"exporter": map[string]any{
			"structure": check, "recall": check, "drift": check,
			"discovery_interval": t.CheckInterval.String(),
		},
		"alertmanager": map[string]any{"url": amURL},
		"webhook":      map[string]any{"bearer_token": map[string]string{"file": s.TokenFile}},
		// The backoff after a repair that did not help is compressed like the cooldowns: a
		// scenario lasts minutes, not the hours the defaults are made for.
		"remediation": map[string]any{"runbook": runbookFile, "api_token": map[string]string{"value": s.APIToken}, "budget": map[string]any{
			"backoff_base": t.MaxCooldown.String(), "backoff_max": t.MaxCooldown.String()}, "disabled": !repairs},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(v.Config, out, 0o600)
}

// writeWebConfig writes vectorheal's --web.config.file when the stack has a web user, and
// returns the flags that give it to serve.
func (s *Stack) writeWebConfig() ([]string, error) {
	if s.Config.WebUser == "" {
		return nil, nil
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(s.Config.WebPassword), bcrypt.MinCost)
	if err != nil {
		return nil, err
	}
	out, err := yaml.Marshal(map[string]any{"basic_auth_users": map[string]string{s.Config.WebUser: string(hash)}})
	if err != nil {
		return nil, err
	}
	file := filepath.Join(s.Config.Dir, "web-config.yml")
	if err := os.WriteFile(file, out, 0o600); err != nil {
		return nil, err
	}
	return []string{"--web.config.file", file}, nil
}

func (s *Stack) prometheusConfig() (string, error) {
	t := s.Config.Timing
	rulesDir := filepath.Join(s.Config.Dir, "rules")
	if err := os.MkdirAll(rulesDir, 0o755); err != nil {
		return "", err
	}
	files, err := RewriteRules(filepath.Join(s.Config.Root, "rules"), rulesDir, t)
	if err != nil {
		return "", err
	}
	var ams []string
	for _, am := range s.Alertmanagers {
		ams = append(ams, strings.TrimPrefix(am.URL, "http://"))
	}
	var scraped []string
	for _, v := range s.Vectorheals {
		if v.Measures {
			scraped = append(scraped, strings.TrimPrefix(v.URL, "http://"))
		}
	}
	scrape := map[string]any{
		"job_name":        "vectorheal",
		"scrape_interval": promDuration(t.ScrapeInterval),
		"scrape_timeout":  promDuration(t.ScrapeInterval),
		"static_configs":  []any{map[string]any{"targets": scraped}},
	}
	if s.Config.WebUser != "" {
		scrape["basic_auth"] = map[string]string{"username": s.Config.WebUser, "password": s.Config.WebPassword}
	}
	cfg := map[string]any{
		"global": map[string]any{
			"scrape_interval":     promDuration(t.ScrapeInterval),
			"evaluation_interval": promDuration(t.EvaluationInterval),
		},
		"rule_files": files,
		"alerting": map[string]any{"alertmanagers": []any{
			map[string]any{"static_configs": []any{map[string]any{"targets": ams}}},
		}},
		"scrape_configs": []any{scrape},
	}
	out, err := yaml.Marshal(cfg)
	return string(out), err
}

// Close stops every process of the stack, Prometheus first so no new alert is sent.
func (s *Stack) Close() {
	if s.Prometheus != nil {
		s.Prometheus.Stop()
	}
	for _, v := range s.Vectorheals {
		_ = v.Stop()
	}
	for _, am := range s.Alertmanagers {
		am.Stop()
	}
}
