package config

import (
	"errors"
	"time"
)

// Remediation sets the runbook and the limits of the repair engine.
type Remediation struct {
	// Runbook is the path of the YAML runbook mapping alerts to repairs. Empty: alerts are
	// recorded but nothing is repaired.
	Runbook string `yaml:"runbook"`
	// Disabled stops the repair workers of this process (alerts are still recorded), so
	// intake and repair can scale apart.
	Disabled bool `yaml:"disabled"`
	// MaxConcurrentRepairs over all targets and replicas' workers of this process. Default 3.
	MaxConcurrentRepairs int `yaml:"max_concurrent_repairs"`
	// DefaultTimeout of a repair when its runbook entry gives none. Default 1h.
	DefaultTimeout time.Duration `yaml:"default_timeout"`
	// HistoryRetention is how long finished repairs and received alerts are kept. Default 720h.
	HistoryRetention time.Duration `yaml:"history_retention"`
	// FlapWindow and FlapMaxRepairs: at most FlapMaxRepairs repairs per index per window.
	// Defaults 6h and 12: a net against runaway loops, looser than the budget, which sets the
	// pace (one repair per 30 minutes on average would already be a loop worth stopping).
	FlapWindow     time.Duration `yaml:"flap_window"`
	FlapMaxRepairs int           `yaml:"flap_max_repairs"`
	// CircuitBreakerFailures in a row stop auto-healing of an index until a human resets it.
	// Default 3.
	CircuitBreakerFailures int `yaml:"circuit_breaker_failures"`
	// Budget is how much repairing one index may take; see Budget.
	Budget Budget `yaml:"budget"`
	// HorizonMinAge: while a session or prepared transaction of the index's database has held
	// its xmin horizon at least this long (and since before the table's last VACUUM), a step
	// that cannot help while it holds (vacuum, reclaim, a rebuild validated on dead rows) is
	// deferred. Default 3m, the age PgvectorCleanupBlocked names; at least 1s. Zero, possible
	// only in a Remediation built in code (a file's zero takes the default), turns the guard off.
	HorizonMinAge time.Duration `yaml:"horizon_min_age"`
	// HorizonMinXIDs is the same for replication slots and standby feedback, whose start
	// PostgreSQL does not record: transactions behind (age(xmin)). Default 1000000.
	HorizonMinXIDs int `yaml:"horizon_min_xids"`
	// APIToken is the admin token: it guards the calls that change something (trigger,
	// approve, cancel, reset, checks, pause, resume, POST /-/reload) and may read too. Unset:
	// those calls answer 403. It never falls back to the webhook's token: a sender of alerts
	// must not be able to approve repairs.
	APIToken Secret `yaml:"api_token"`
	// APIReadToken may only read the API (status, issues, repairs, circuits, budgets, pauses).
	// Unset: only the admin token (or a basic_auth_users entry of --web.config.file) reads.
	APIReadToken Secret `yaml:"api_read_token"`
}

// DefaultRemediation returns the remediation settings as Load fills them in when the file
// leaves them out: the one place their defaults live, for callers that build a Config in code.
func DefaultRemediation() Remediation {
	var r Remediation
	r.setDefaults()
	return r
}

// Check validates r as Load does, for a Remediation built in code; nil when valid.
func (r Remediation) Check() error {
	v := &validator{file: "configuration"}
	r.validate(v)
	return errors.Join(v.errs...)
}

func (r *Remediation) setDefaults() {
	defInt(&r.MaxConcurrentRepairs, 3)
	defDur(&r.DefaultTimeout, time.Hour)
	defDur(&r.HistoryRetention, 720*time.Hour)
	defDur(&r.FlapWindow, 6*time.Hour)
	defInt(&r.FlapMaxRepairs, 12)
	defInt(&r.CircuitBreakerFailures, 3)
	r.Budget.setDefaults()
	defDur(&r.HorizonMinAge, 3*time.Minute)
	defInt(&r.HorizonMinXIDs, 1_000_000)
}

func (r *Remediation) validate(v *validator) {
	v.positive("remediation.max_concurrent_repairs", r.MaxConcurrentRepairs)
	v.positive("remediation.flap_max_repairs", r.FlapMaxRepairs)
	v.positive("remediation.circuit_breaker_failures", r.CircuitBreakerFailures)
	if r.DefaultTimeout <= 0 {
		v.errorf("remediation.default_timeout", "must be positive")
	}
	if r.FlapWindow <= 0 {
		v.errorf("remediation.flap_window", "must be positive")
	}
	// Zero is the guard turned off, which only a Remediation built in code can say: a file's
	// zero takes the default.
	if r.HorizonMinAge != 0 && r.HorizonMinAge < time.Second {
		v.errorf("remediation.horizon_min_age", "%s is below 1s: every short transaction would hold repairs back", r.HorizonMinAge)
	}
	if r.HorizonMinXIDs < 0 {
		v.errorf("remediation.horizon_min_xids", "must be positive, got %d", r.HorizonMinXIDs)
	}
	if r.HistoryRetention < time.Hour {
		v.errorf("remediation.history_retention", "must be at least 1h")
	}
	r.Budget.validate(v, "remediation.budget")
	r.APIToken.validate(v, "remediation.api_token")
	r.APIReadToken.validate(v, "remediation.api_read_token")
}

// Budget is the maintenance budget of one index: the main brake on automatic repairs. It
// follows the repair's cost, where a fixed cooldown cannot: a 7 s rebuild may run many times
// a day, a 2 h one a few. A runbook entry's cooldown stays as a floor under it.
type Budget struct {
	// Share of wall time that repairs of one index may take over Window: a repair is held
	// while the repairs of the index that ran within the last Window took more. Default 0.1.
	Share float64 `yaml:"share"`
	// Window over which Share is measured. Default 24h.
	Window time.Duration `yaml:"window"`
	// MaxRunningPerTarget repairs may run at once on one target (one database), each on its
	// own index. Default 2.
	MaxRunningPerTarget int `yaml:"max_running_per_target"`
	// BackoffBase is the wait after a repair of the index that did not help (failed, rolled
	// back, futile); it doubles with each such repair in a row, up to BackoffMax, and a
	// repair that helped resets it. Defaults 30m and 24h.
	BackoffBase time.Duration `yaml:"backoff_base"`
	BackoffMax  time.Duration `yaml:"backoff_max"`
}

func (b *Budget) setDefaults() {
	if b.Share == 0 {
		b.Share = 0.1
	}
	defDur(&b.Window, 24*time.Hour)
	defInt(&b.MaxRunningPerTarget, 2)
	defDur(&b.BackoffBase, 30*time.Minute)
	defDur(&b.BackoffMax, 24*time.Hour)
}

func (b *Budget) validate(v *validator, p string) {
	if !(b.Share > 0 && b.Share <= 1) { // written so that NaN fails too
		v.errorf(p+".share", "must be in (0, 1], got %g", b.Share)
	}
	if b.Window < time.Minute {
		v.errorf(p+".window", "must be at least 1m, got %s", b.Window)
	}
	v.positive(p+".max_running_per_target", b.MaxRunningPerTarget)
	if b.BackoffBase <= 0 {
		v.errorf(p+".backoff_base", "must be positive, got %s", b.BackoffBase)
	}
	if b.BackoffMax < b.BackoffBase {
		v.errorf(p+".backoff_max", "must be at least backoff_base (%s), got %s", b.BackoffBase, b.BackoffMax)
	}
}
