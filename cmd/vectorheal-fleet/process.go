package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/vectorheal/vectorheal/internal/e2e"
)

// process is one `vectorheal serve` of the run: a shard, or the unsharded one.
type process struct {
	*e2e.Vectorheal
	shard   int       // -1 for the unsharded process
	started time.Time // when it was last started
}

// writeConfig writes the configuration every process shares: one target per database, the
// exporter only (no state store: alerts are not received and nothing is repaired), checks
// and discovery every interval, drift off. The webhook gets a token only so that /-/ready
// answers 200; nothing sends to it.
func writeConfig(path string, dbs []string, dsn func(db string) string, interval time.Duration) error {
	var targets []any
	for _, db := range dbs {
		targets = append(targets, map[string]any{"name": db, "dsn": map[string]string{"value": dsn(db)}})
	}
	check := map[string]any{"interval": interval.String(), "timeout": interval.String()}
	cfg := map[string]any{
		"targets": targets,
		"exporter": map[string]any{
			"structure": check, "recall": check, "drift": map[string]any{"disabled": true},
			"discovery_interval": interval.String(),
		},
		"webhook": map[string]any{"bearer_token": map[string]string{"value": "fleet-benchmark-unused"}},
	}
	out, err := yaml.Marshal(cfg)
	if err != nil {
		return err
	}
	return os.WriteFile(path, out, 0o600)
}

// newProcess prepares a process of bin on config, listening on a free port, logging at info
// (as in production: debug logs would cost the process CPU the table reports); shard -1 is
// the unsharded one, split by by (index or target).
func newProcess(bin, config, dir string, shard, total int, by string) (*process, error) {
	name := "unsharded"
	var args []string
	if shard >= 0 {
		name = fmt.Sprintf("shard-%d", shard)
		args = []string{"--exporter.shard", strconv.Itoa(shard), "--exporter.total-shards", strconv.Itoa(total), "--exporter.shard-by", by}
	}
	v, err := e2e.NewVectorheal(bin, name, config, filepath.Join(dir, name+".log"), "info", args...)
	if err != nil {
		return nil, err
	}
	return &process{Vectorheal: v, shard: shard}, nil
}

// run starts the process and waits until it is ready, and returns when it was.
func (p *process) run(ctx context.Context) (time.Time, error) {
	p.started = time.Now()
	err := p.Start(ctx)
	return time.Now(), err
}

// resources is what /proc says of a process at one moment.
type resources struct {
	at time.Time
	// rssBytes is VmRSS: every resident page mapped by the process. anonBytes (RssAnon) is
	// its private part: the Go heap, stacks and the runtime's metadata. fileBytes (RssFile) is
	// the pages of the binary and its libraries, which the processes of one binary on one
	// host share; VmRSS counts them in each.
	rssBytes, anonBytes, fileBytes int64
	cpu                            time.Duration // user and system time since the process started
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat's times: 100 on every Linux
// architecture Go builds for.
const clockTicks = 100

// readResources reads the RSS, its private and file-backed parts, and the CPU time of pid
// from /proc.
func readResources(pid int) (resources, error) {
	u := resources{at: time.Now()}
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return u, err
	}
	if u.rssBytes, u.anonBytes, u.fileBytes, err = parseRSS(status); err != nil {
		return u, err
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return u, err
	}
	u.cpu, err = parseCPU(stat)
	return u, err
}

// parseRSS reads VmRSS, RssAnon and RssFile (kB) of a /proc/<pid>/status, in bytes.
func parseRSS(status []byte) (rss, anon, file int64, err error) {
	fields := map[string]*int64{"VmRSS": &rss, "RssAnon": &anon, "RssFile": &file}
	for _, line := range bytes.Split(status, []byte("\n")) {
		name, rest, ok := bytes.Cut(line, []byte(":"))
		dst := fields[string(name)]
		if !ok || dst == nil {
			continue
		}
		f := strings.Fields(string(rest))
		if len(f) == 0 {
			return 0, 0, 0, fmt.Errorf("%s: no value", name)
		}
		kb, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, 0, 0, fmt.Errorf("%s: %w", name, err)
		}
		*dst = kb * 1024
		delete(fields, string(name))
	}
	if len(fields) > 0 {
		return 0, 0, 0, fmt.Errorf("no %s in /proc status", strings.Join(slices.Sorted(maps.Keys(fields)), ", "))
	}
	return rss, anon, file, nil
}

// parseCPU reads utime + stime of a /proc/<pid>/stat.
func parseCPU(stat []byte) (time.Duration, error) {
	f, err := statFields(stat)
	if err != nil {
		return 0, err
	}
	return ticks(f[11:13]), nil
}

// statFields returns the fields of a /proc/<pid>/stat after the command name, which is in
// parentheses and may itself hold spaces: f[0] is field 3 of proc(5) (state), f[1] ppid,
// f[11] and f[12] utime and stime, f[13] and f[14] cutime and cstime.
func statFields(stat []byte) ([]string, error) {
	i := bytes.LastIndexByte(stat, ')')
	if i < 0 {
		return nil, errors.New("malformed /proc stat")
	}
	f := strings.Fields(string(stat[i+1:]))
	if len(f) < 15 {
		return nil, errors.New("short /proc stat")
	}
	return f, nil
}

// ticks sums clock ticks given as decimal strings; a field that is not a number counts 0.
func ticks(fields []string) time.Duration {
	var n int64
	for _, s := range fields {
		v, _ := strconv.ParseInt(s, 10, 64)
		n += v
	}
	return time.Duration(n) * time.Second / clockTicks
}

// serverCPU returns the CPU time of a PostgreSQL server so far: the postmaster's, its
// exited children's (which it reaps) and its live children's (backends, workers).
func serverCPU(dataDir string) (resources, error) {
	r := resources{at: time.Now()}
	data, err := os.ReadFile(filepath.Join(dataDir, "postmaster.pid"))
	if err != nil {
		return r, err
	}
	pm, err := strconv.Atoi(strings.TrimSpace(strings.SplitN(string(data), "\n", 2)[0]))
	if err != nil {
		return r, fmt.Errorf("postmaster.pid: %w", err)
	}
	stat, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pm))
	if err != nil {
		return r, err
	}
	f, err := statFields(stat)
	if err != nil {
		return r, err
	}
	r.cpu = ticks(f[11:15]) // utime, stime, cutime, cstime
	dirs, err := os.ReadDir("/proc")
	if err != nil {
		return r, err
	}
	for _, d := range dirs {
		if _, err := strconv.Atoi(d.Name()); err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if err != nil {
			continue // exited meanwhile
		}
		f, err := statFields(stat)
		if err != nil || f[1] != strconv.Itoa(pm) {
			continue
		}
		r.cpu += ticks(f[11:13])
	}
	return r, nil
}
