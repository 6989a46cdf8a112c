package main

import (
	"slices"
	"sort"
	"time"
)

// track is what the polls of one process, from one start, saw of each index it publishes.
// Times a measurement was seen at are upper bounds of when it completed; times a measurement
// is dated at are lower bounds (the poll before): both err on the slow side.
type track struct {
	start    time.Time // when the process was started
	lastPoll time.Time
	indexes  map[indexKey]*indexTrack
}

// indexTrack is one index in a track.
type indexTrack struct {
	method    string
	series    int       // at the latest poll
	firstSeen time.Time // first poll that published it
	// structureSeen and probeSeen are the polls that first showed a page scan's figures and
	// a recall probe.
	structureSeen, probeSeen time.Time
	probes                   float64
	// measuredAt dates the latest probe: the poll before the one that showed it.
	measuredAt time.Time
	// maxGap is the longest time between two probes seen, dated as measuredAt.
	maxGap time.Duration
}

func newTrack(start time.Time) *track {
	return &track{start: start, indexes: map[indexKey]*indexTrack{}}
}

// observe adds one scrape of the process.
func (t *track) observe(s scrape) {
	before := t.lastPoll
	if before.IsZero() {
		before = t.start
	}
	for k, o := range s.indexes {
		it, ok := t.indexes[k]
		if !ok {
			it = &indexTrack{firstSeen: s.at}
			t.indexes[k] = it
		}
		if o.method != "" {
			it.method = o.method
		}
		it.series = o.series
		if o.structure && it.structureSeen.IsZero() {
			it.structureSeen = s.at
		}
		if o.probes > it.probes {
			if it.probeSeen.IsZero() {
				it.probeSeen = s.at
			} else {
				it.maxGap = max(it.maxGap, before.Sub(it.measuredAt))
			}
			it.probes, it.measuredAt = o.probes, before
		}
	}
	t.lastPoll = s.at
}

// measured says whether both checks have completed on the index, and when the later of them
// was first seen.
func (it *indexTrack) measured() (time.Time, bool) {
	if it.structureSeen.IsZero() || it.probeSeen.IsZero() {
		return time.Time{}, false
	}
	if it.structureSeen.After(it.probeSeen) {
		return it.structureSeen, true
	}
	return it.probeSeen, true
}

// ages returns, at now, how long ago each index the process publishes was last probed; an
// index never probed counts from the process's start.
func (t *track) ages(now time.Time) []time.Duration {
	out := make([]time.Duration, 0, len(t.indexes))
	for _, it := range t.indexes {
		since := t.start
		if !it.measuredAt.IsZero() {
			since = it.measuredAt
		}
		out = append(out, now.Sub(since))
	}
	return out
}

// coverage is how a set of processes covered the indexes expected of them.
type coverage struct {
	expected int
	// byOne are the expected indexes that exactly one of the processes published.
	byOne      int
	missing    []indexKey // published by none
	duplicates []indexKey // published by more than one
	unexpected []indexKey // published but not expected
	// measured are the indexes whose publisher completed both checks; withinInterval those
	// that it completed within one interval of its start.
	measured, withinInterval int
	// firstMeasured is, per measured index, the time from its publisher's start until both
	// checks were seen, sorted.
	firstMeasured []time.Duration
}

// computeCoverage compares the indexes the tracks published with the expected ones.
func computeCoverage(expected []indexKey, tracks []*track, interval time.Duration) coverage {
	c := coverage{expected: len(expected)}
	want := map[indexKey]bool{}
	for _, k := range expected {
		want[k] = true
		var owners []*track
		for _, t := range tracks {
			if _, ok := t.indexes[k]; ok {
				owners = append(owners, t)
			}
		}
		switch len(owners) {
		case 0:
			c.missing = append(c.missing, k)
			continue
		case 1:
			c.byOne++
		default:
			c.duplicates = append(c.duplicates, k)
		}
		at, ok := owners[0].indexes[k].measured()
		if !ok {
			continue
		}
		c.measured++
		d := at.Sub(owners[0].start)
		c.firstMeasured = append(c.firstMeasured, d)
		if d <= interval {
			c.withinInterval++
		}
	}
	for _, t := range tracks {
		for k := range t.indexes {
			if !want[k] {
				c.unexpected = append(c.unexpected, k)
			}
		}
	}
	slices.Sort(c.firstMeasured)
	sortKeys(c.missing)
	sortKeys(c.duplicates)
	sortKeys(c.unexpected)
	return c
}

func sortKeys(ks []indexKey) {
	sort.Slice(ks, func(i, j int) bool { return ks[i].String() < ks[j].String() })
}

// quantile returns the q-quantile (nearest rank) of ds, 0 when empty.
func quantile(ds []time.Duration, q float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	i := int(q*float64(len(s))+0.5) - 1
	return s[min(max(i, 0), len(s)-1)]
}

// seriesByMethod returns, per index method, the series counts of the indexes of the tracks
// whose checks have both completed, sorted.
func seriesByMethod(tracks []*track) map[string][]int {
	out := map[string][]int{}
	for _, t := range tracks {
		for _, it := range t.indexes {
			if _, ok := it.measured(); ok {
				out[it.method] = append(out[it.method], it.series)
			}
		}
	}
	for _, s := range out {
		slices.Sort(s)
	}
	return out
}
