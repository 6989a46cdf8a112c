package config

import "time"

// Standby is a hot standby of a target (a streaming replica) that the figures read from the
// index itself are read on: page scans, recall and filtered probes, plan checks. Such reads
// cost the primary nothing. Statistics counters (dead rows, vacuum times) are not maintained on
// a standby and repairs must run on the primary, so those keep using the target's dsn.
type Standby struct {
	// DSN of the standby. Required when standby is given.
	DSN Secret `yaml:"dsn"`
	// MaxLag: while the standby's replay is further behind the primary than this, a check
	// reads on the primary instead, and says so in its source. Default 1m.
	MaxLag time.Duration `yaml:"max_lag"`
	// ReplayWait: how long a validation after a repair waits for the standby to replay the
	// primary's position before it reads on the primary instead, logging why. Default 30s.
	ReplayWait time.Duration `yaml:"replay_wait"`
	// MaxConnections caps vectorheal's pool on the standby. Default 2.
	MaxConnections int `yaml:"max_connections"`
}

func (s *Standby) setDefaults() {
	if s == nil {
		return
	}
	defDur(&s.MaxLag, time.Minute)
	defDur(&s.ReplayWait, 30*time.Second)
	defInt(&s.MaxConnections, 2)
}

func (s *Standby) validate(v *validator, p string) {
	if s == nil {
		return
	}
	if !s.DSN.IsSet() {
		v.errorf(p+".dsn", "must be set (value, file or env)")
	}
	s.DSN.validate(v, p+".dsn")
	v.positive(p+".max_connections", s.MaxConnections)
	if s.MaxLag <= 0 {
		v.errorf(p+".max_lag", "must be positive")
	}
	if s.ReplayWait < 0 {
		v.errorf(p+".replay_wait", "must not be negative")
	}
}
