// Package config holds vectorheal's configuration file (vectorheal.yml): its types with their
// defaults, strict loading with file:line errors, and validation. Runtime code receives only a
// Config that Load has validated.
package config

import (
	"fmt"
	"os"
	"path"
	"strings"
	"time"
)

// Config is the whole vectorheal.yml.
type Config struct {
	// ListenAddress is where /metrics, the webhook and the API listen. Default ":9877".
	// The --web.listen-address flag overrides it.
	ListenAddress string `yaml:"listen_address"`
	// StateStore is vectorheal's own PostgreSQL schema: alerts, repairs, history, queue.
	StateStore StateStore `yaml:"state_store"`
	// Targets are the databases whose vector indexes are watched and healed.
	Targets []Target `yaml:"targets"`
	// Exporter sets how often and how expensively indexes are measured.
	Exporter Exporter `yaml:"exporter"`
	// Alertmanager is the Alertmanager vectorheal asks about silences and alert state.
	Alertmanager Alertmanager `yaml:"alertmanager"`
	// Webhook is the Alertmanager receiver endpoint.
	Webhook Webhook `yaml:"webhook"`
	// Remediation sets the runbook and the repair engine's limits.
	Remediation Remediation `yaml:"remediation"`

	// File is the path the config was read from, for messages.
	File string `yaml:"-"`
}

// Secret is a value given inline, read from a file or from an environment variable, so secrets
// can stay out of the config file. Exactly one of the three may be set.
type Secret struct {
	Value string `yaml:"value"`
	File  string `yaml:"file"`
	Env   string `yaml:"env"`
}

// IsSet reports whether any source is given.
func (s Secret) IsSet() bool { return s.Value != "" || s.File != "" || s.Env != "" }

// Resolve returns the secret's value. A file's trailing newline is dropped.
func (s Secret) Resolve() (string, error) {
	switch {
	case s.Value != "":
		return s.Value, nil
	case s.File != "":
		b, err := os.ReadFile(s.File)
		if err != nil {
			return "", fmt.Errorf("read secret file: %w", err)
		}
		return strings.TrimRight(string(b), "\r\n"), nil
	case s.Env != "":
		v, ok := os.LookupEnv(s.Env)
		if !ok {
			return "", fmt.Errorf("environment variable %s is not set", s.Env)
		}
		return v, nil
	}
	return "", nil
}

func (s Secret) validate(v *validator, p string) {
	n := 0
	for _, x := range []string{s.Value, s.File, s.Env} {
		if x != "" {
			n++
		}
	}
	if n > 1 {
		v.errorf(p, "give only one of value, file and env")
	}
}

// StateStore is where vectorheal keeps its own state.
type StateStore struct {
	// DSN of the state database (libpq URL or key=value). Required for serve and migrate.
	DSN Secret `yaml:"dsn"`
	// Schema vectorheal's tables live in. Default "vectorheal".
	Schema string `yaml:"schema"`
}

// Target is one database to watch.
type Target struct {
	// Name identifies the target in metrics (label target) and alerts. Required, unique.
	Name string `yaml:"name"`
	// DSN of the database: the connection of every role below that has no DSN of its own.
	// Required unless both read_dsn and repair_dsn are given.
	DSN Secret `yaml:"dsn"`
	// ReadDSN is the exporter's connection (a read-only role with pg_monitor). Default DSN.
	ReadDSN Secret `yaml:"read_dsn"`
	// RepairDSN is the repair workers' connection (the role that owns the vector tables, or
	// holds MAINTAIN on them). Default DSN.
	RepairDSN Secret `yaml:"repair_dsn"`
	// MigrateDSN is what "vectorheal migrate" connects with to install the page-reading
	// functions (a superuser; serve never uses it). Default DSN.
	MigrateDSN Secret `yaml:"migrate_dsn"`
	// Include lists glob patterns (path.Match) over "schema.index"; empty means every index.
	Include []string `yaml:"include"`
	// Exclude lists glob patterns over "schema.index" that are never watched nor repaired.
	Exclude []string `yaml:"exclude"`
	// MaxConnections caps vectorheal's pool for this target. Default 4.
	MaxConnections int `yaml:"max_connections"`
	// MaxConcurrentChecks caps background checks running at once on this target. Default 2.
	MaxConcurrentChecks int `yaml:"max_concurrent_checks"`
	// Builds are the resource guards of index builds on this target (builds.go).
	Builds Builds `yaml:"builds"`
	// Standby, when set, is a hot standby of this database that figures read from the index
	// itself are read on (standby.go); statistics and repairs stay on DSN.
	Standby *Standby `yaml:"standby"`
}

// Use is what a connection to a target is for; each may have a DSN of its own.
type Use string

// The uses of a target's connections.
const (
	UseRead    Use = "read"    // the exporter: statistics, pages, probes
	UseRepair  Use = "repair"  // the repair workers and their validations
	UseMigrate Use = "migrate" // vectorheal migrate: the page-reading functions
)

// DSNFor returns the DSN configured for use: its own key when set, else dsn.
func (t Target) DSNFor(use Use) Secret {
	var own Secret
	switch use {
	case UseRead:
		own = t.ReadDSN
	case UseRepair:
		own = t.RepairDSN
	case UseMigrate:
		own = t.MigrateDSN
	}
	if own.IsSet() {
		return own
	}
	return t.DSN
}

// DSNKey is the configuration key DSNFor(use) reads, for messages.
func (t Target) DSNKey(use Use) string {
	if t.DSNFor(use) == t.DSN {
		return "dsn"
	}
	return string(use) + "_dsn"
}

// Watches reports whether the index schema.name is selected by the include/exclude patterns.
func (t Target) Watches(schema, index string) bool {
	full := schema + "." + index
	for _, p := range t.Exclude {
		if ok, _ := path.Match(p, full); ok {
			return false
		}
	}
	if len(t.Include) == 0 {
		return true
	}
	for _, p := range t.Include {
		if ok, _ := path.Match(p, full); ok {
			return true
		}
	}
	return false
}

// Check is the schedule and budget of one background check.
type Check struct {
	// Interval between two runs of the check on one index.
	Interval time.Duration `yaml:"interval"`
	// Timeout of one run; it becomes the statement_timeout of its queries.
	Timeout time.Duration `yaml:"timeout"`
	// Disabled turns the check off.
	Disabled bool `yaml:"disabled"`
}

func (c Check) validate(v *validator, p string) {
	if c.Disabled {
		return
	}
	if c.Interval <= 0 {
		v.errorf(p+".interval", "must be positive")
	}
	if c.Timeout <= 0 {
		v.errorf(p+".timeout", "must be positive")
	}
	if c.Timeout > c.Interval && c.Interval > 0 {
		v.errorf(p+".timeout", "%s is longer than the interval %s", c.Timeout, c.Interval)
	}
}

// Alertmanager is the Alertmanager API vectorheal queries and writes silences to.
type Alertmanager struct {
	// URL of Alertmanager, e.g. http://localhost:9093. Empty disables the silence and
	// still-firing checks before a repair (repairs then rely on the webhook alone).
	URL string `yaml:"url"`
	// Username and Password for basic auth to Alertmanager.
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
	// BearerToken for Alertmanager behind an authenticating proxy.
	BearerToken Secret `yaml:"bearer_token"`
	// Timeout of one API call. Default 10s.
	Timeout time.Duration `yaml:"timeout"`
}

// DefaultWebhookMaxBodyBytes is the default of webhook.max_body_bytes. Alertmanager sends every
// alert of a group in one notification; 1 MiB holds about a thousand alerts of vectorheal's
// rules (under 1 KiB each with their annotations). The webhook package uses it too, when its
// caller sets no limit.
const DefaultWebhookMaxBodyBytes = 1 << 20

// Webhook is the Alertmanager receiver.
type Webhook struct {
	// BearerToken the sender must present (Alertmanager's http_config.authorization).
	BearerToken Secret `yaml:"bearer_token"`
	// BasicAuth the sender may present instead.
	BasicAuth *BasicAuth `yaml:"basic_auth"`
	// MaxBodyBytes caps a notification's size. Default DefaultWebhookMaxBodyBytes.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// AllowUnauthenticated accepts notifications without credentials. Default false; serve
	// refuses to start without credentials unless this is set.
	AllowUnauthenticated bool `yaml:"allow_unauthenticated"`
}

// BasicAuth is a username and a password.
type BasicAuth struct {
	Username string `yaml:"username"`
	Password Secret `yaml:"password"`
}
