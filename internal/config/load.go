package config

import (
	"errors"
	"fmt"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/strictyaml"
)

// Load reads, decodes, defaults and validates the config file at path.
func Load(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read config: %w", err)
	}
	return Parse(path, data)
}

// Parse decodes and validates data as if read from file.
func Parse(file string, data []byte) (*Config, error) {
	var c Config
	pos, err := strictyaml.Decode(file, data, &c)
	if err != nil {
		return nil, err
	}
	c.File = file
	c.setDefaults()
	v := &validator{file: file, pos: pos}
	c.validate(v)
	if len(v.errs) > 0 {
		return nil, errors.Join(v.errs...)
	}
	return &c, nil
}

func (c *Config) setDefaults() {
	if c.ListenAddress == "" {
		c.ListenAddress = ":9877"
	}
	if c.StateStore.Schema == "" {
		c.StateStore.Schema = "vectorheal"
	}
	for i := range c.Targets {
		defInt(&c.Targets[i].MaxConnections, 4)
		defInt(&c.Targets[i].MaxConcurrentChecks, 2)
		c.Targets[i].Standby.setDefaults()
	}
	defDur(&c.Alertmanager.Timeout, 10*time.Second)
	if c.Webhook.MaxBodyBytes == 0 {
		c.Webhook.MaxBodyBytes = DefaultWebhookMaxBodyBytes
	}
	c.Exporter.setDefaults()
	c.Remediation.setDefaults()
}

func (c *Config) validate(v *validator) {
	c.StateStore.DSN.validate(v, "state_store.dsn")
	if !labelNameRE.MatchString(c.StateStore.Schema) {
		v.errorf("state_store.schema", "%q is not a plain identifier", c.StateStore.Schema)
	}
	if len(c.Targets) == 0 {
		v.errorf("targets", "at least one target is required")
	}
	names := map[string]bool{}
	for i, t := range c.Targets {
		p := v.index("targets", i)
		switch {
		case t.Name == "":
			v.errorf(p+".name", "must be set")
		case names[t.Name]:
			v.errorf(p+".name", "target %q is defined twice", t.Name)
		}
		names[t.Name] = true
		if !t.DSN.IsSet() && !(t.ReadDSN.IsSet() && t.RepairDSN.IsSet()) {
			v.errorf(p+".dsn", "must be set (value, file or env), unless both read_dsn and repair_dsn are")
		}
		t.DSN.validate(v, p+".dsn")
		t.ReadDSN.validate(v, p+".read_dsn")
		t.RepairDSN.validate(v, p+".repair_dsn")
		t.MigrateDSN.validate(v, p+".migrate_dsn")
		for j, pat := range append(append([]string{}, t.Include...), t.Exclude...) {
			if _, err := pathMatchCheck(pat); err != nil {
				key := ".include"
				k := j
				if j >= len(t.Include) {
					key, k = ".exclude", j-len(t.Include)
				}
				v.errorf(v.index(p+key, k), "bad pattern %q: %v", pat, err)
			}
		}
		v.positive(p+".max_connections", t.MaxConnections)
		v.positive(p+".max_concurrent_checks", t.MaxConcurrentChecks)
		t.Builds.validate(v, p+".builds")
		t.Standby.validate(v, p+".standby")
	}
	if c.Alertmanager.URL != "" {
		u, err := url.Parse(c.Alertmanager.URL)
		if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			v.errorf("alertmanager.url", "%q is not an http(s) URL", c.Alertmanager.URL)
		}
	}
	c.Alertmanager.Password.validate(v, "alertmanager.password")
	c.Alertmanager.BearerToken.validate(v, "alertmanager.bearer_token")
	c.Webhook.BearerToken.validate(v, "webhook.bearer_token")
	if c.Webhook.BasicAuth != nil {
		if c.Webhook.BasicAuth.Username == "" {
			v.errorf("webhook.basic_auth.username", "must be set")
		}
		if !c.Webhook.BasicAuth.Password.IsSet() {
			v.errorf("webhook.basic_auth.password", "must be set")
		}
		c.Webhook.BasicAuth.Password.validate(v, "webhook.basic_auth.password")
	}
	if c.Webhook.MaxBodyBytes < 1024 {
		v.errorf("webhook.max_body_bytes", "must be at least 1024")
	}
	c.Exporter.validate(v, names)
	switch s := c.Exporter.PageReaderSchema; {
	case !labelNameRE.MatchString(s):
		v.errorf("exporter.page_reader_schema", "%q is not a plain identifier", s)
	case s == c.StateStore.Schema:
		v.errorf("exporter.page_reader_schema", "%q is also state_store.schema: the page readers' schema is granted to pg_monitor and must be a schema of its own", s)
	case strings.HasPrefix(s, "pg_"):
		v.errorf("exporter.page_reader_schema", "%q: names starting with pg_ are reserved by PostgreSQL", s)
	}
	c.Remediation.validate(v)
}

// TargetByName returns the target called name.
func (c *Config) TargetByName(name string) (Target, bool) {
	for _, t := range c.Targets {
		if t.Name == name {
			return t, true
		}
	}
	return Target{}, false
}
