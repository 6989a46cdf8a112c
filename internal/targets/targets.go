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

// Target is one configured database with the pool of one use (Set.Reading, Set.Repairing).
type Target struct {
	config.Target
	Pool *pgxpool.Pool
	// Standby is the pool on the target's hot standby (config.Target.Standby), nil without one.
	Standby *pgxpool.Pool
}

// Set is every configured target by name, with the pools of one use.
type Set struct {
	byName map[string]*Target
	names  []string
	// pools are the pools this set closes; nil for a view of another set's pools.
	pools []*pgxpool.Pool
	// reading is the view of the same targets with the exporter's pools.
	reading *Set
}

// Open builds, without connecting, a pool for each target's repair connection (repair_dsn,
// else dsn) and one for its reading connection (read_dsn, else dsn): the returned set holds
// the repair pools, its Reading view the read pools. Where both uses resolve to the same DSN
// they share one pool, so a target with a single dsn keeps one pool of max_connections. Only
// a DSN that cannot be read or parsed is an error, naming the target and the key.
func Open(ctx context.Context, cfgs []config.Target) (*Set, error) {
	s := &Set{byName: map[string]*Target{}}
	r := &Set{byName: map[string]*Target{}}
	s.reading = r
	for _, c := range cfgs {
		repair, err := s.open(ctx, c, config.UseRepair)
		if err != nil {
			s.Close()
			return nil, err
		}
		read := repair
		if c.DSNFor(config.UseRead) != c.DSNFor(config.UseRepair) {
			if read, err = s.open(ctx, c, config.UseRead); err != nil {
				s.Close()
				return nil, err
			}
		}
		var standby *pgxpool.Pool
		if c.Standby != nil {
			if standby, err = s.openDSN(ctx, c.Name, "standby.dsn", c.Standby.DSN, c.Standby.MaxConnections); err != nil {
				s.Close()
				return nil, err
			}
		}
		s.byName[c.Name] = &Target{Target: c, Pool: repair, Standby: standby}
		r.byName[c.Name] = &Target{Target: c, Pool: read, Standby: standby}
		s.names = append(s.names, c.Name)
	}
	sort.Strings(s.names)
	r.names = s.names
	return s, nil
}

// open builds the pool of target c's connection for use, kept in s.pools.
func (s *Set) open(ctx context.Context, c config.Target, use config.Use) (*pgxpool.Pool, error) {
	return s.openDSN(ctx, c.Name, c.DSNKey(use), c.DSNFor(use), c.MaxConnections)
}

// openDSN builds the pool of target's connection on secret (its key, for messages), of at most
// maxConns connections, kept in s.pools.
func (s *Set) openDSN(ctx context.Context, target, key string, secret config.Secret, maxConns int) (*pgxpool.Pool, error) {
	dsn, err := secret.Resolve()
	if err != nil {
		return nil, fmt.Errorf("target %q: %s: %w", target, key, err)
	}
	pc, err := pgxpool.ParseConfig(dsn)
	if err != nil {
		return nil, fmt.Errorf("target %q: parse %s: %w", target, key, err)
	}
	pc.MaxConns = int32(maxConns)
	pc.ConnConfig.RuntimeParams["application_name"] = "vectorheal"
	// A repair's statement (a build, a VACUUM) must not outlive a vectorheal process that
	// died: PostgreSQL then checks the client socket while the statement runs.
	pc.ConnConfig.RuntimeParams["client_connection_check_interval"] = "5s"
	pool, err := pgxpool.NewWithConfig(ctx, pc)
	if err != nil {
		return nil, fmt.Errorf("target %q: %s: %w", target, key, err)
	}
	s.pools = append(s.pools, pool)
	return pool, nil
}

// Reading returns the same targets with the exporter's pools (read_dsn, else dsn). The view
// shares s's pools: close s, not the view (its Close does nothing). A view's Reading is itself.
func (s *Set) Reading() *Set {
	if s.reading == nil {
		return s
	}
	return s.reading
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

// Close closes every pool Open made (both uses).
func (s *Set) Close() {
	for _, p := range s.pools {
		p.Close()
	}
	s.pools = nil
}
