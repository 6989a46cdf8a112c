package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/vectorheal/vectorheal/internal/testenv"
)

// pgConf raises the connection limit for the processes' pools: each process keeps about one
// session per database between scrapes and more while checks run, and four processes watch
// every database.
const pgConf = `
max_connections = 1000
shared_buffers = 256MB
`

// fleet is one run.
type fleet struct {
	o    options
	log  *slog.Logger
	out  io.Writer
	pg   *testenv.Postgres
	work string

	specs     []indexSpec
	buildTime time.Duration
	versions  string // PostgreSQL and pgvector

	procs   []*process // the shards, then the unsharded process
	obs     map[*process]*observed
	started time.Time // when every process was started
	steady  time.Time // one interval later: from then on every index should have been measured
	killed  time.Time
	restart *restartResult
	// serverCPU is the PostgreSQL server's CPU time at the start and the end of the steady
	// period.
	serverCPU [2]resources

	mu sync.Mutex
}

// observed is what the polls of one process recorded.
type observed struct {
	track     *track
	scrapes   []scrape    // of the steady period, without their indexes
	resources []resources // of the steady period
	ages      []time.Duration
	errs      int
	lastErr   error
	// slowest is, per collector, the longest run seen on any target in the steady period.
	slowest map[string]time.Duration
}

// restartResult is what the kill and restart of one shard showed.
type restartResult struct {
	proc      *process
	owned     int           // indexes it published before the kill
	down      time.Duration // from the kill to the restart
	ready     time.Duration // from the restart to /-/ready
	coverage  coverage      // of its indexes by the restarted process
	timedOut  bool
	after     *observed     // the polls after the restart
	maxUnseen time.Duration // longest an index went without a probe across the restart
}

func runFleet(ctx context.Context, log *slog.Logger, o options, out io.Writer) error {
	bin, err := filepath.Abs(o.vectorheal)
	if err != nil {
		return err
	}
	if _, err := os.Stat(bin); err != nil {
		return fmt.Errorf("vectorheal binary: %w (run make build, or give -vectorheal)", err)
	}
	f := &fleet{o: o, log: log, out: out, obs: map[*process]*observed{}}
	pgDir, err := os.MkdirTemp("", "vectorheal-fleet-pg-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(pgDir)
	pg, _, err := testenv.OpenPostgres(ctx, pgDir, pgConf)
	if err != nil {
		return fmt.Errorf("start PostgreSQL (run scripts/install-deps.sh): %w", err)
	}
	defer pg.Stop()
	f.pg = pg
	if f.versions, err = versions(ctx, pg); err != nil {
		return err
	}
	f.printf("PostgreSQL %s\n", pg.DSN(""))
	if err := f.buildFleet(ctx); err != nil {
		return err
	}
	if f.work, err = os.MkdirTemp("", "vectorheal-fleet-"); err != nil {
		return err
	}
	if !o.keep {
		defer os.RemoveAll(f.work)
	}
	if err := f.startProcesses(ctx, bin); err != nil {
		f.stopProcesses()
		return err
	}
	runErr := f.observe(ctx)
	if runErr == nil && o.killShard >= 0 {
		runErr = f.killAndRestart(ctx, f.procs[o.killShard])
	}
	f.stopProcesses()
	if runErr != nil {
		return runErr
	}
	return f.report()
}

// versions returns the server's and pgvector's versions, for the report.
func versions(ctx context.Context, pg *testenv.Postgres) (string, error) {
	conn, err := pgx.Connect(ctx, pg.DSN("template1"))
	if err != nil {
		return "", err
	}
	defer conn.Close(ctx)
	var server, vector string
	err = conn.QueryRow(ctx, `SELECT current_setting('server_version'), (SELECT extversion FROM pg_extension WHERE extname = 'vector')`).Scan(&server, &vector)
	if err != nil {
		return "", fmt.Errorf("versions: %w", err)
	}
	return fmt.Sprintf("PostgreSQL %s, pgvector %s", server, vector), nil
}

func (f *fleet) printf(format string, args ...any) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fmt.Fprintf(f.out, format, args...)
}

// startProcesses writes the configuration and starts the shards and the unsharded process
// at the same moment, so they measure the same fleet under the same load.
func (f *fleet) startProcesses(ctx context.Context, bin string) error {
	dbs := make([]string, f.o.databases)
	for i := range dbs {
		dbs[i] = dbName(i)
	}
	cfg := filepath.Join(f.work, "vectorheal.yml")
	if err := writeConfig(cfg, dbs, f.pg.DSN, f.o.interval); err != nil {
		return err
	}
	for s := range f.o.shards {
		p, err := newProcess(bin, cfg, f.work, s, f.o.shards, f.o.shardBy)
		if err != nil {
			return err
		}
		f.procs = append(f.procs, p)
	}
	p, err := newProcess(bin, cfg, f.work, -1, 1, "")
	if err != nil {
		return err
	}
	f.procs = append(f.procs, p)
	f.started = time.Now()
	for _, p := range f.procs {
		at, err := p.run(ctx)
		if err != nil {
			return err
		}
		f.obs[p] = &observed{track: newTrack(p.started)}
		f.printf("%s (pid %d) ready after %s on %s\n", p.Name, p.Pid(), at.Sub(p.started).Round(time.Millisecond), p.URL)
	}
	f.steady = f.started.Add(f.o.interval)
	f.printf("checks and discovery every %s, a poll every %s; observing for %s (staleness from +%s)\n",
		f.o.interval, f.o.poll, f.o.duration, f.o.interval)
	return nil
}

func (f *fleet) stopProcesses() {
	for _, p := range f.procs {
		if err := p.Stop(); err != nil {
			f.log.Warn("stop", "process", p.Name, "err", err)
		}
	}
}

// observe polls every process until -duration has passed since they started.
func (f *fleet) observe(ctx context.Context) error {
	end := f.started.Add(f.o.duration)
	client := &http.Client{Timeout: 30 * time.Second}
	tick := time.NewTicker(f.o.poll)
	defer tick.Stop()
	nextNote := f.started.Add(f.o.interval / 2)
	for time.Now().Before(end) {
		if f.serverCPU[0].at.IsZero() && !time.Now().Before(f.steady) {
			f.serverCPU[0], _ = serverCPU(f.pg.DataDir())
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		for _, p := range f.procs {
			if err := f.poll(ctx, client, p, f.obs[p], true); err != nil {
				return err
			}
		}
		if now := time.Now(); !now.Before(nextNote) {
			f.note(now)
			nextNote = now.Add(f.o.interval / 2)
		}
	}
	var err error
	if f.serverCPU[1], err = serverCPU(f.pg.DataDir()); err != nil {
		f.log.Warn("PostgreSQL's CPU time", "err", err)
	}
	return nil
}

// poll scrapes p and reads its resources once, into ob. In the steady period, and when record is
// set, it keeps the scrape's figures, the resources and the ages of p's indexes. A failed scrape
// is counted, not fatal, unless the process has exited.
func (f *fleet) poll(ctx context.Context, client *http.Client, p *process, ob *observed, record bool) error {
	s, err := fetch(ctx, client, p.URL)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if !p.Running() {
			return fmt.Errorf("%s exited (log: %s):\n%s", p.Name, p.LogFile, p.LogTail(20))
		}
		ob.errs++
		ob.lastErr = err
		return nil
	}
	if want := strconv.Itoa(p.shard); p.shard >= 0 && (s.shard != want || s.shardBy != f.o.shardBy) {
		return fmt.Errorf("%s: vectorheal_shard_info says shard %q by %q, want %s by %s", p.Name, s.shard, s.shardBy, want, f.o.shardBy)
	}
	ob.track.observe(s)
	u, uerr := readResources(p.Pid())
	if !record || s.at.Before(f.steady) {
		return nil
	}
	if ob.slowest == nil {
		ob.slowest = map[string]time.Duration{}
	}
	for c, d := range s.slowest {
		ob.slowest[c] = max(ob.slowest[c], d)
	}
	s.indexes, s.slowest = nil, nil
	ob.scrapes = append(ob.scrapes, s)
	if uerr == nil {
		ob.resources = append(ob.resources, u)
	}
	ob.ages = append(ob.ages, ob.track.ages(s.at)...)
	return nil
}

// note prints one line per process: how far it has got.
func (f *fleet) note(now time.Time) {
	line := fmt.Sprintf("+%s", now.Sub(f.started).Round(time.Second))
	for _, p := range f.procs {
		ob := f.obs[p]
		measured := 0
		for _, it := range ob.track.indexes {
			if _, ok := it.measured(); ok {
				measured++
			}
		}
		line += fmt.Sprintf("  %s: %d/%d measured", p.Name, measured, len(ob.track.indexes))
		if ob.errs > 0 {
			line += fmt.Sprintf(" (%d failed scrapes: %v)", ob.errs, ob.lastErr)
		}
	}
	f.printf("%s\n", line)
}

// killAndRestart kills p as a crash would, restarts it -down later and polls it until every
// index it published before is measured again, or three intervals have passed.
func (f *fleet) killAndRestart(ctx context.Context, p *process) error {
	before := f.obs[p].track
	var owned []indexKey
	for k := range before.indexes {
		owned = append(owned, k)
	}
	f.killed = time.Now()
	if err := p.Kill(); err != nil {
		return err
	}
	f.printf("killed %s (SIGKILL) at +%s; restarting it in %s\n", p.Name, f.killed.Sub(f.started).Round(time.Second), f.o.down)
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(f.o.down):
	}
	at, err := p.run(ctx)
	if err != nil {
		return err
	}
	r := &restartResult{proc: p, owned: len(owned), down: p.started.Sub(f.killed), ready: at.Sub(p.started)}
	after := newTrack(p.started)
	r.after = &observed{track: after}
	client := &http.Client{Timeout: 30 * time.Second}
	deadline := p.started.Add(3 * f.o.interval)
	tick := time.NewTicker(f.o.poll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		if err := f.poll(ctx, client, p, r.after, false); err != nil {
			return err
		}
		r.coverage = computeCoverage(owned, []*track{after}, f.o.interval)
		if r.coverage.measured == len(owned) {
			break
		}
		if time.Now().After(deadline) {
			r.timedOut = true
			break
		}
	}
	for _, k := range owned {
		old, now := before.indexes[k], after.indexes[k]
		if now == nil || now.probeSeen.IsZero() || old.measuredAt.IsZero() {
			continue
		}
		r.maxUnseen = max(r.maxUnseen, now.probeSeen.Sub(old.measuredAt))
	}
	f.restart = r
	c := r.coverage
	f.printf("%s restarted: ready after %s, %d of %d indexes measured again, the last %s after the restart\n",
		p.Name, r.ready.Round(time.Millisecond), c.measured, r.owned, lastOf(c.firstMeasured).Round(time.Second))
	if r.timedOut {
		f.printf("%s: not every index was measured again within three intervals of the restart\n", p.Name)
	}
	return nil
}

// lastOf returns the largest of sorted ds, 0 when empty.
func lastOf(ds []time.Duration) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	return ds[len(ds)-1]
}
