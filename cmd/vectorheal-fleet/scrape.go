package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math"
	"net/http"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// indexKey identifies an index on /metrics: the labels target, datname, schemaname and
// indexrelname (relname follows from them).
type indexKey struct {
	Target, Datname, Schema, Index string
}

func (k indexKey) String() string { return k.Target + "/" + k.Datname + "/" + k.Schema + "." + k.Index }

// indexObs is what one scrape says of one index.
type indexObs struct {
	method string // from pgvector_index_info
	series int    // series carrying the index's labels, as the text format counts them
	// probes is pgvector_probe_latency_seconds_count: it grows with every recall probe.
	probes float64
	// structure says the figures of a page scan are present: one has completed.
	structure bool
}

// scrape is one read of a process's /metrics.
type scrape struct {
	at       time.Time // when the answer was complete
	duration time.Duration
	bytes    int
	series   int    // every series of the answer
	shard    string // vectorheal_shard_info's shard label; empty without one
	shardBy  string // and its by label
	// heapInuse and heapSys are the Go heap's bytes in use and obtained from the system
	// (go_memstats_heap_inuse_bytes, go_memstats_heap_sys_bytes), goroutines go_goroutines:
	// what of the RSS is the process's own data, and how many goroutines it keeps.
	heapInuse, heapSys float64
	goroutines         float64
	indexes            map[indexKey]indexObs
	// slowest is, per collector (discovery, structure, recall, statistics), the longest
	// vectorheal_collector_duration_seconds over the targets: the last run of each.
	slowest map[string]time.Duration
}

// Metric names the benchmark reads.
const (
	probeCountFamily = "pgvector_probe_latency_seconds"
	// Published by default once a page scan of the current build has completed: one for
	// HNSW indexes, one for IVFFlat indexes.
	hnswStructureFamily    = "pgvector_hnsw_connectivity_ratio"
	ivfflatStructureFamily = "pgvector_ivfflat_lists"
	infoFamily             = "pgvector_index_info"
	shardFamily            = "vectorheal_shard_info"
	durationFamily         = "vectorheal_collector_duration_seconds"
	heapInuseFamily        = "go_memstats_heap_inuse_bytes"
	heapSysFamily          = "go_memstats_heap_sys_bytes"
	goroutinesFamily       = "go_goroutines"
)

// fetch reads url's /metrics and parses it.
func fetch(ctx context.Context, client *http.Client, url string) (scrape, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, url+"/metrics", nil)
	if err != nil {
		return scrape{}, err
	}
	// The text format, as a Prometheus without native histograms asks for it: the size and
	// series counts are those of the classic format.
	req.Header.Set("Accept", "text/plain;version=0.0.4")
	start := time.Now()
	resp, err := client.Do(req)
	if err != nil {
		return scrape{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return scrape{}, err
	}
	end := time.Now()
	if resp.StatusCode != http.StatusOK {
		return scrape{}, fmt.Errorf("%s/metrics: %s", url, resp.Status)
	}
	s, err := parseScrape(bytes.NewReader(body))
	if err != nil {
		return scrape{}, fmt.Errorf("%s/metrics: %w", url, err)
	}
	s.at, s.duration, s.bytes = end, end.Sub(start), len(body)
	return s, nil
}

// parseScrape reads a text exposition into what the benchmark needs of each index.
func parseScrape(r io.Reader) (scrape, error) {
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(r)
	if err != nil {
		return scrape{}, err
	}
	s := scrape{indexes: map[indexKey]indexObs{}, slowest: map[string]time.Duration{}}
	for name, fam := range fams {
		for _, m := range fam.GetMetric() {
			n := seriesOf(m)
			s.series += n
			labels := map[string]string{}
			for _, l := range m.GetLabel() {
				labels[l.GetName()] = l.GetValue()
			}
			switch name {
			case shardFamily:
				s.shard, s.shardBy = labels["shard"], labels["by"]
			case durationFamily:
				d := time.Duration(m.GetGauge().GetValue() * float64(time.Second))
				s.slowest[labels["collector"]] = max(s.slowest[labels["collector"]], d)
			case heapInuseFamily:
				s.heapInuse = m.GetGauge().GetValue()
			case heapSysFamily:
				s.heapSys = m.GetGauge().GetValue()
			case goroutinesFamily:
				s.goroutines = m.GetGauge().GetValue()
			}
			k, ok := keyOf(labels)
			if !ok {
				continue
			}
			o := s.indexes[k]
			o.series += n
			switch name {
			case infoFamily:
				o.method = labels["method"]
			case probeCountFamily:
				o.probes = float64(m.GetHistogram().GetSampleCount())
			case hnswStructureFamily, ivfflatStructureFamily:
				o.structure = true
			}
			s.indexes[k] = o
		}
	}
	return s, nil
}

// keyOf returns the index a series belongs to, when it carries the index labels.
func keyOf(labels map[string]string) (indexKey, bool) {
	k := indexKey{Target: labels["target"], Datname: labels["datname"], Schema: labels["schemaname"], Index: labels["indexrelname"]}
	return k, k.Target != "" && k.Datname != "" && k.Schema != "" && k.Index != ""
}

// seriesOf counts the series of one metric as the text format writes them: a histogram is
// one per bucket, +Inf included, plus _sum and _count; a summary one per quantile plus _sum
// and _count.
func seriesOf(m *dto.Metric) int {
	switch {
	case m.GetHistogram() != nil:
		n := 2 // _sum, _count
		inf := false
		for _, b := range m.GetHistogram().GetBucket() {
			n++
			inf = inf || math.IsInf(b.GetUpperBound(), +1)
		}
		if !inf {
			n++
		}
		return n
	case m.GetSummary() != nil:
		return 2 + len(m.GetSummary().GetQuantile())
	default:
		return 1
	}
}
