package main

import (
	"bytes"
	"fmt"
	"runtime"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/benchdoc"
)

// Markers of the generated part of the fleet section in docs/BENCHMARKS.md.
const (
	docsBegin = "<!-- fleet:begin (written by vectorheal-fleet -write-docs) -->"
	docsEnd   = "<!-- fleet:end -->"
)

// row is one line of the table: a process, or the shards together.
type row struct {
	name                string
	indexes             string
	within              string
	slowest             time.Duration
	ages                []time.Duration
	late                int
	maxGap              time.Duration
	scrapeP50, scrapeMx time.Duration
	bytes, series       int
	rss, anon           int64   // largest VmRSS and RssAnon (private) of the steady period
	cpu                 float64 // share of one core
}

// report prints the table and, with -write-docs, writes it into the docs.
func (f *fleet) report() error {
	var md bytes.Buffer
	f.writeSummary(&md)
	f.printf("\n%s", md.String())
	if !f.o.writeDocs {
		return nil
	}
	if err := (benchdoc.Markers{Begin: docsBegin, End: docsEnd}).Update(f.o.docsPath, md.String()); err != nil {
		return err
	}
	f.printf("updated %s\n", f.o.docsPath)
	return nil
}

// rowOf summarises one process's steady period.
func (f *fleet) rowOf(name string, ob *observed) row {
	r := row{name: name, ages: ob.ages}
	var keys []indexKey
	for k := range ob.track.indexes {
		keys = append(keys, k)
	}
	c := computeCoverage(keys, []*track{ob.track}, f.o.interval)
	r.indexes = fmt.Sprintf("%d in %s", len(keys), targetsOf(keys))
	r.within = fmt.Sprintf("%d", c.withinInterval)
	r.slowest = lastOf(c.firstMeasured)
	r.late, r.maxGap = f.late(ob.track)
	var durs []time.Duration
	for _, s := range ob.scrapes {
		durs = append(durs, s.duration)
		r.bytes += s.bytes
	}
	if n := len(ob.scrapes); n > 0 {
		r.bytes /= n
		r.series = ob.scrapes[n-1].series
	}
	r.scrapeP50, r.scrapeMx = quantile(durs, 0.5), quantile(durs, 1)
	for _, u := range ob.resources {
		r.rss = max(r.rss, u.rssBytes)
		r.anon = max(r.anon, u.anonBytes)
	}
	if n := len(ob.resources); n > 1 {
		first, last := ob.resources[0], ob.resources[n-1]
		r.cpu = (last.cpu - first.cpu).Seconds() / last.at.Sub(first.at).Seconds()
	}
	return r
}

// late counts the indexes of t whose recall probes were further apart than the schedule
// allows (1.1 intervals, the scheduler's jitter) plus two polls (each date is known to a
// poll), and returns the longest gap. A late probe waited for a free check slot.
func (f *fleet) late(t *track) (int, time.Duration) {
	limit := f.o.interval + f.o.interval/10 + 2*f.o.poll
	n, longest := 0, time.Duration(0)
	for _, it := range t.indexes {
		longest = max(longest, it.maxGap)
		if it.maxGap > limit {
			n++
		}
	}
	return n, longest
}

// writeSummary writes the generated part of the docs: the run, the command, the table and
// the notes below it.
func (f *fleet) writeSummary(w *bytes.Buffer) {
	o := f.o
	var hnsw, ivf int
	for _, s := range f.specs {
		if s.method == "hnsw" {
			hnsw++
		} else {
			ivf++
		}
	}
	fmt.Fprintf(w, "Run of %s (UTC) on %d CPUs, %s: %d indexes (%d HNSW, %d IVFFlat; %d of %d to %d rows, the others %d to %d) "+
		"over %d databases (one target each), %d-d, built in %s. **%d shards by %s** (`--exporter.shard-by %s`) next to one unsharded process. "+
		"Structure and recall checks and discovery every %s, drift off, "+
		"every other setting at its default; a poll every %s; observed for %s; ages, scrapes, RSS and CPU from +%s (one interval) on.\n\n",
		f.started.UTC().Format("2006-01-02 15:04"), runtime.NumCPU(), f.versions, len(f.specs), hnsw, ivf, o.large, o.largeMin, o.largeMax,
		o.smallMin, o.smallMax, o.databases, o.dims, f.buildTime.Round(time.Second), o.shards, o.shardBy, o.shardBy,
		o.interval, o.poll, o.duration, o.interval)
	fmt.Fprintf(w, "```sh\n%s\n```\n\n", o.commandForDocs)
	f.writeTable(w)
	f.writeNotes(w)
}

// writeTable writes one row per shard, one for the shards together (coverage of the fleet)
// and one for the unsharded process, with each shard's ratios to it.
func (f *fleet) writeTable(w *bytes.Buffer) {
	var expected []indexKey
	for _, s := range f.specs {
		expected = append(expected, s.key())
	}
	shards := f.procs[:len(f.procs)-1]
	unsharded := f.procs[len(f.procs)-1]
	base := f.rowOf(unsharded.Name, f.obs[unsharded])
	var rows []row
	var tracks []*track
	together := row{name: fmt.Sprintf("%d shards together", len(shards))}
	for _, p := range shards {
		r := f.rowOf(p.Name, f.obs[p])
		rows = append(rows, r)
		tracks = append(tracks, f.obs[p].track)
		together.ages = append(together.ages, r.ages...)
		together.slowest = max(together.slowest, r.slowest)
		together.late += r.late
		together.maxGap = max(together.maxGap, r.maxGap)
		together.scrapeMx = max(together.scrapeMx, r.scrapeMx)
		together.bytes += r.bytes
		together.series += r.series
		together.rss += r.rss
		together.anon += r.anon
		together.cpu += r.cpu
	}
	cov := computeCoverage(expected, tracks, f.o.interval)
	together.indexes = fmt.Sprintf("%d of %d by exactly one shard, %d by none, %d by more than one, %d not in the fleet",
		cov.byOne, cov.expected, len(cov.missing), len(cov.duplicates), len(cov.unexpected))
	together.within = fmt.Sprint(cov.withinInterval)
	ucov := computeCoverage(expected, []*track{f.obs[unsharded].track}, f.o.interval)
	base.indexes = fmt.Sprintf("%d of %d in %s", ucov.byOne, ucov.expected, targetsOf(expected))

	fmt.Fprintln(w, "| process | indexes published | measured within one interval of its start | slowest first measurement | age of last recall probe p50 / p99 / max | indexes probed late (gap > 1.1 × interval + 2 polls), longest gap | scrape time p50 / max | scrape size | series | RSS (max) | private RSS (RssAnon, max) | CPU (share of one core) | RSS / unsharded | private RSS / unsharded | scrape p50 / unsharded |")
	fmt.Fprintln(w, "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
	for _, r := range rows {
		writeRow(w, r, fmt.Sprintf("%.2f", ratio(float64(r.rss), float64(base.rss))),
			fmt.Sprintf("%.2f", ratio(float64(r.anon), float64(base.anon))),
			fmt.Sprintf("%.2f", ratio(r.scrapeP50.Seconds(), base.scrapeP50.Seconds())))
	}
	writeRow(w, together, fmt.Sprintf("%.2f (sum)", ratio(float64(together.rss), float64(base.rss))),
		fmt.Sprintf("%.2f (sum)", ratio(float64(together.anon), float64(base.anon))), "—")
	writeRow(w, base, "1", "1", "1")
	fmt.Fprintln(w)
	if len(cov.missing)+len(cov.duplicates) > 0 {
		fmt.Fprintf(w, "Not published by exactly one shard: %s.\n\n", keyList(append(cov.missing, cov.duplicates...)))
	}
}

// writeNotes writes what the table does not hold: the slowest checks, the server's CPU, the
// series per index, the restart and failed scrapes.
func (f *fleet) writeNotes(w *bytes.Buffer) {
	f.writeSlowest(w)
	if a, b := f.serverCPU[0], f.serverCPU[1]; !a.at.IsZero() && b.at.After(a.at) {
		fmt.Fprintf(w, "PostgreSQL (every backend of the %d processes' checks and scrapes) used %.2f of a core in the steady period.\n\n",
			len(f.procs), (b.cpu-a.cpu).Seconds()/b.at.Sub(a.at).Seconds())
	}
	f.writeMemory(w)
	series := seriesByMethod([]*track{f.obs[f.procs[len(f.procs)-1]].track})
	fmt.Fprintf(w, "Series per healthy index (both checks run; text format, unsharded process): HNSW %s, IVFFlat %s.\n\n",
		spread(series["hnsw"]), spread(series["ivfflat"]))
	if r := f.restart; r != nil {
		c := r.coverage
		fmt.Fprintf(w, "Restart: %s (%d indexes) killed with SIGKILL at +%s, started again %s later, ready %s after its start; "+
			"%d of its %d indexes measured again (page scan and recall probe seen), the last %s after the start (median %s), %d within one interval; "+
			"the longest an index of it went without a recall probe across the kill: %s.\n",
			r.proc.Name, r.owned, f.killed.Sub(f.started).Round(time.Second), r.down.Round(time.Second), r.ready.Round(time.Millisecond),
			c.measured, r.owned, lastOf(c.firstMeasured).Round(time.Second), quantile(c.firstMeasured, 0.5).Round(time.Second),
			c.withinInterval, r.maxUnseen.Round(time.Second))
		if r.timedOut {
			fmt.Fprintf(w, "Not every index was measured again within three intervals of the restart.\n")
		}
	}
	for _, p := range f.procs {
		if ob := f.obs[p]; ob.errs > 0 {
			fmt.Fprintf(w, "\n%s: %d scrapes failed (last: %v).\n", p.Name, ob.errs, ob.lastErr)
		}
	}
}

// writeMemory writes, per process, what its memory is made of: at its largest RSS, the
// private part (RssAnon: the Go heap, stacks, the runtime's metadata) and the file-backed part
// (RssFile: the pages of the binary and the C library, which the processes of one binary on
// one host share, and which VmRSS counts in each); then the largest Go heap in use and
// obtained from the system, and goroutines, over the steady period's scrapes.
func (f *fleet) writeMemory(w *bytes.Buffer) {
	fmt.Fprintf(w, "Memory in the steady period (RSS at its largest, with its private RssAnon and file-backed RssFile parts from /proc/<pid>/status; "+
		"largest of the scrapes of go_memstats_heap_inuse_bytes, go_memstats_heap_sys_bytes, go_goroutines):\n\n")
	for _, p := range f.procs {
		ob := f.obs[p]
		var inuse, sys, gr float64
		for _, s := range ob.scrapes {
			inuse, sys, gr = max(inuse, s.heapInuse), max(sys, s.heapSys), max(gr, s.goroutines)
		}
		var top resources
		for _, u := range ob.resources {
			if u.rssBytes > top.rssBytes {
				top = u
			}
		}
		fmt.Fprintf(w, "- %s: RSS %s (private %s, file-backed %s), Go heap in use %s of %s obtained, %.0f goroutines\n", p.Name,
			fmtBytes(top.rssBytes), fmtBytes(top.anonBytes), fmtBytes(top.fileBytes), fmtBytes(int64(inuse)), fmtBytes(int64(sys)), gr)
	}
	fmt.Fprintln(w)
}

func writeRow(w *bytes.Buffer, r row, rssRatio, anonRatio, scrapeRatio string) {
	p50 := "—" // not one process's
	if r.scrapeP50 > 0 {
		p50 = r.scrapeP50.Round(time.Millisecond).String()
	}
	fmt.Fprintf(w, "| %s | %s | %s | %s | %s / %s / %s | %d, %s | %s / %s | %s | %d | %s | %s | %.2f | %s | %s | %s |\n",
		r.name, r.indexes, r.within, r.slowest.Round(time.Second),
		quantile(r.ages, 0.5).Round(time.Second), quantile(r.ages, 0.99).Round(time.Second), quantile(r.ages, 1).Round(time.Second),
		r.late, r.maxGap.Round(time.Second),
		p50, r.scrapeMx.Round(time.Millisecond), fmtBytes(int64(r.bytes)), r.series,
		fmtBytes(r.rss), fmtBytes(r.anon), r.cpu, rssRatio, anonRatio, scrapeRatio)
}

// writeSlowest writes, per process, the longest last run of each collector on any target.
func (f *fleet) writeSlowest(w *bytes.Buffer) {
	fmt.Fprintf(w, "Longest run seen of one check on one index, and of one target's discovery and statistics (vectorheal_collector_duration_seconds, steady period):\n\n")
	for _, p := range f.procs {
		sl := f.obs[p].slowest
		fmt.Fprintf(w, "- %s: structure %s, recall %s, discovery %s, statistics %s\n", p.Name,
			sl["structure"].Round(time.Millisecond), sl["recall"].Round(time.Millisecond),
			sl["discovery"].Round(time.Millisecond), sl["statistics"].Round(time.Millisecond))
	}
	fmt.Fprintln(w)
}

// targetsOf says how many distinct targets ks are in: "1 target", "17 targets".
func targetsOf(ks []indexKey) string {
	seen := map[string]bool{}
	for _, k := range ks {
		seen[k.Target] = true
	}
	if len(seen) == 1 {
		return "1 target"
	}
	return fmt.Sprintf("%d targets", len(seen))
}

func ratio(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

// spread is the median of sorted ns with its range.
func spread(ns []int) string {
	if len(ns) == 0 {
		return "none measured"
	}
	med := ns[len(ns)/2]
	if ns[0] == ns[len(ns)-1] {
		return fmt.Sprintf("%d (all %d)", med, len(ns))
	}
	return fmt.Sprintf("%d (median of %d; %d to %d)", med, len(ns), ns[0], ns[len(ns)-1])
}

func keyList(ks []indexKey) string {
	var names []string
	for _, k := range ks[:min(len(ks), 10)] {
		names = append(names, k.String())
	}
	if len(ks) > 10 {
		names = append(names, fmt.Sprintf("and %d more", len(ks)-10))
	}
	return strings.Join(names, ", ")
}

func fmtBytes(n int64) string {
	switch {
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	case n >= 1<<10:
		return fmt.Sprintf("%.0f KiB", float64(n)/(1<<10))
	default:
		return fmt.Sprintf("%d B", n)
	}
}
