// Package targets holds the connection pools of the databases vectorheal watches and heals.
// Pools connect lazily, so a database that is down at start is reported down, not fatal.
package targets

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/vectorheal/vectorheal/internal/config"
)

// Target is one configured database with its pool.
type Target struct {
	config.Target
	Pool *pgxpool.Pool
	// Standby is the pool on the target's hot standby (config.Target.Standby), nil without one.
	Standby *pgxpool.Pool
}

// Set is every configured target by name.
type Set struct {
	byName map[string]*Target
	names  []string
}

// Open builds a pool for each target (and its standby) without connecting. Only a DSN that
// cannot be read or parsed is an error, naming the target.
func Open(ctx context.Context, cfgs []config.Target) (*Set, error) {
	s := &Set{byName: map[string]*Target{}}
	for _, c := range cfgs {
		t := &Target{Target: c}
		s.byName[c.Name] = t // before the pools, so Close closes what was opened
		s.names = append(s.names, c.Name)
		var err error
		if t.Pool, err = openPool(ctx, c.DSN, c.MaxConnections); err != nil {
			s.Close()
			return nil, fmt.Errorf("target %q: dsn: %w", c.Name, err)
		}
		if c.Standby != nil {
			if t.Standby, err = openPool(ctx, c.Standby.DSN, c.Standby.MaxConnections); err != nil {
				s.Close()
				return nil, fmt.Errorf("target %q: standby.dsn: %w", c.Name, err)
			}
		}
	}
	sort.Strings(s.names)
	return s, nil
}

// openPool builds a pool on the DSN in secret, of at most maxConns connections.
func openPool(ctx context.Context, secret config.Secret, maxConns int) (*pgxpool.Pool, error) {
	dsn, err := secret.Resolve()
	if err != nil {
		return nil, err
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("parse: %w", err)
	}
	pc.MaxConns = int32(maxConns)
	pc.ConnConfig.RuntimeParams["application_name"] = "vectorheal"
	// A repair's statement (a build, a VACUUM) must not outlive a vectorheal process that
	// died: PostgreSQL then checks the client socket while the statement runs.
	pc.ConnConfig.RuntimeParams["client_connection_check_interval"] = "5s"
	return pgxpool.NewWithConfig(ctx, pc)
}

// Get returns the target called name.
func (s *Set) Get(name string) (*Target, bool) {
	t, ok := s.byName[name]
	return t, ok
}

// All returns the targets sorted by name.
func (s *Set) All() []*Target {
	out := make([]*Target, 0, len(s.names))
	for _, n := range s.names {
		out = append(out, s.byName[n])
	}
	return out
}

// Close closes every pool.
func (s *Set) Close() {
	for _, t := range s.byName {
		for _, p := range []*pgxpool.Pool{t.Pool, t.Standby} {
			if p != nil {
				p.Close()
			}
		}
	}
}
