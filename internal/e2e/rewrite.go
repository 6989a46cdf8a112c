package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"time"

	"gopkg.in/yaml.v3"
)

// Timing are the intervals of the assembled loop. The shipped files use production values;
// the stack rewrites copies of them with these, so a fault is detected in seconds.
type Timing struct {
	// ScrapeInterval of Prometheus scraping vectorheal. Default 2s.
	ScrapeInterval time.Duration
	// EvaluationInterval of every rule group. Default 2s.
	EvaluationInterval time.Duration
	// MaxFor caps the `for` of every alert rule. Default 6s.
	MaxFor time.Duration
	// GroupWait, GroupInterval and RepeatInterval replace Alertmanager's route timings.
	// Defaults 1s, 2s and 30s.
	GroupWait, GroupInterval, RepeatInterval time.Duration
	// CheckInterval of vectorheal's background checks (structure, recall, drift) and index
	// discovery. Default 2s.
	CheckInterval time.Duration
	// MaxValidateWait caps how long a runbook step waits before re-measuring. Default 2s.
	MaxValidateWait time.Duration
	// MaxCooldown caps runbook cooldowns. Default 20s.
	MaxCooldown time.Duration
}

func (t *Timing) setDefaults() {
	def := func(d *time.Duration, v time.Duration) {
		if *d <= 0 {
			*d = v
		}
	}
	def(&t.ScrapeInterval, 2*time.Second)
	def(&t.EvaluationInterval, 2*time.Second)
	def(&t.MaxFor, 6*time.Second)
	def(&t.GroupWait, time.Second)
	def(&t.GroupInterval, 2*time.Second)
	def(&t.RepeatInterval, 30*time.Second)
	def(&t.CheckInterval, 2*time.Second)
	def(&t.MaxValidateWait, 2*time.Second)
	def(&t.MaxCooldown, 20*time.Second)
}

// Floor is the configured minimum from a fault to the webhook: the alert must stay pending
// for `for` and Alertmanager waits group_wait before the first notification of a group.
func (t Timing) Floor() time.Duration { return t.MaxFor + t.GroupWait }

// Bound adds to Floor the longest each periodic stage can make a fault wait: one check
// interval until it is measured, one scrape, one evaluation to go pending and one to fire.
func (t Timing) Bound() time.Duration {
	return t.CheckInterval + t.ScrapeInterval + 2*t.EvaluationInterval + t.Floor()
}

func readYAMLNode(path string) (*yaml.Node, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	if len(doc.Content) == 0 || doc.Content[0].Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%s: not a YAML mapping", path)
	}
	return doc.Content[0], nil
}

func writeYAMLNode(path string, n *yaml.Node) error {
	out, err := yaml.Marshal(n)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o644)
}

// lookup returns the value of key in mapping m, or nil.
func lookup(m *yaml.Node, key string) *yaml.Node {
	if m == nil || m.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == key {
			return m.Content[i+1]
		}
	}
	return nil
}

func setScalar(m *yaml.Node, key, value string) {
	if v := lookup(m, key); v != nil {
		v.Kind, v.Tag, v.Value, v.Content, v.Style = yaml.ScalarNode, "!!str", value, nil, 0
		return
	}
	m.Content = append(m.Content,
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key},
		&yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: value})
}

// capDuration lowers the duration held by node n to at most limit.
func capDuration(n *yaml.Node, limit time.Duration) {
	d, err := parseDuration(n.Value)
	if err != nil || d > limit {
		n.Value, n.Tag, n.Style = promDuration(limit), "!!str", 0
	}
}

// parseDuration reads Prometheus-style durations too ("1d", "2w").
func parseDuration(s string) (time.Duration, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return d, nil
	}
	var n int
	var unit string
	if _, err := fmt.Sscanf(s, "%d%s", &n, &unit); err == nil {
		switch unit {
		case "d":
			return time.Duration(n) * 24 * time.Hour, nil
		case "w":
			return time.Duration(n) * 7 * 24 * time.Hour, nil
		}
	}
	return 0, fmt.Errorf("not a duration: %q", s)
}

// promDuration writes d the way Prometheus and Alertmanager read it (whole milliseconds).
func promDuration(d time.Duration) string {
	if d%time.Second == 0 {
		return fmt.Sprintf("%ds", d/time.Second)
	}
	return fmt.Sprintf("%dms", d/time.Millisecond)
}

// RewriteRules copies every rule file of rulesDir (files with a top-level groups key) into
// dir with each group's interval set to the evaluation interval and each alert's `for`
// capped, and returns the written paths. Expressions are left exactly as shipped.
func RewriteRules(rulesDir, dir string, t Timing) ([]string, error) {
	files, err := filepath.Glob(filepath.Join(rulesDir, "*.yml"))
	if err != nil {
		return nil, err
	}
	sort.Strings(files)
	var out []string
	for _, f := range files {
		top, err := readYAMLNode(f)
		if err != nil {
			return nil, err
		}
		groups := lookup(top, "groups")
		if groups == nil {
			continue
		}
		for _, g := range groups.Content {
			setScalar(g, "interval", promDuration(t.EvaluationInterval))
			for _, r := range lookup(g, "rules").Content {
				if f := lookup(r, "for"); f != nil {
					capDuration(f, t.MaxFor)
				}
			}
		}
		dst := filepath.Join(dir, filepath.Base(f))
		if err := writeYAMLNode(dst, top); err != nil {
			return nil, err
		}
		out = append(out, dst)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no rule files in %s", rulesDir)
	}
	return out, nil
}

// RewriteAlertmanager returns the Alertmanager configuration at src with every webhook
// receiver sent to webhookURL with the token in tokenFile, and every route's group_wait,
// group_interval and repeat_interval replaced by t's. Relative template paths become
// absolute, so the copy can live anywhere.
func RewriteAlertmanager(src, webhookURL, tokenFile string, t Timing) ([]byte, error) {
	src, err := filepath.Abs(src)
	if err != nil {
		return nil, err
	}
	top, err := readYAMLNode(src)
	if err != nil {
		return nil, err
	}
	webhooks := 0
	var walkRoute func(r *yaml.Node)
	walkRoute = func(r *yaml.Node) {
		for key, v := range map[string]time.Duration{"group_wait": t.GroupWait, "group_interval": t.GroupInterval, "repeat_interval": t.RepeatInterval} {
			if lookup(r, key) != nil || r == lookup(top, "route") {
				setScalar(r, key, promDuration(v))
			}
		}
		if rs := lookup(r, "routes"); rs != nil {
			for _, c := range rs.Content {
				walkRoute(c)
			}
		}
	}
	route := lookup(top, "route")
	if route == nil {
		return nil, fmt.Errorf("%s: no route", src)
	}
	walkRoute(route)
	if rs := lookup(top, "receivers"); rs != nil {
		for _, r := range rs.Content {
			wcs := lookup(r, "webhook_configs")
			if wcs == nil {
				continue
			}
			for _, wc := range wcs.Content {
				webhooks++
				setScalar(wc, "url", webhookURL)
				rewriteCredentials(wc, tokenFile)
			}
		}
	}
	if webhooks == 0 {
		return nil, fmt.Errorf("%s: no webhook receiver to point at vectorheal", src)
	}
	if ts := lookup(top, "templates"); ts != nil {
		for _, tp := range ts.Content {
			if !filepath.IsAbs(tp.Value) {
				tp.Value = filepath.Join(filepath.Dir(src), tp.Value)
			}
		}
	}
	return yaml.Marshal(top)
}

// rewriteCredentials points every credentials_file or password_file under n at tokenFile.
func rewriteCredentials(n *yaml.Node, tokenFile string) {
	if n.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(n.Content); i += 2 {
			switch n.Content[i].Value {
			case "credentials_file", "password_file", "bearer_token_file":
				n.Content[i+1].Value = tokenFile
			}
		}
	}
	for _, c := range n.Content {
		rewriteCredentials(c, tokenFile)
	}
}

// RewriteRunbook returns the runbook at src with validation waits and cooldowns capped, so
// a repair and its validation take seconds. Matchers, steps and bounds stay as shipped.
func RewriteRunbook(src string, t Timing) ([]byte, error) {
	top, err := readYAMLNode(src)
	if err != nil {
		return nil, err
	}
	var walk func(n *yaml.Node)
	walk = func(n *yaml.Node) {
		if n.Kind == yaml.MappingNode {
			for i := 0; i+1 < len(n.Content); i += 2 {
				switch k, v := n.Content[i].Value, n.Content[i+1]; {
				case k == "wait" && v.Kind == yaml.ScalarNode:
					capDuration(v, t.MaxValidateWait)
				case k == "cooldown" && v.Kind == yaml.ScalarNode:
					capDuration(v, t.MaxCooldown)
				}
			}
		}
		for _, c := range n.Content {
			walk(c)
		}
	}
	walk(top)
	return yaml.Marshal(top)
}
