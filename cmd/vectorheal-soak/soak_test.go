package main

import (
	"bytes"
	"encoding/xml"
	"github.com/vectorheal/vectorheal/internal/benchdoc"
	"io"
	"math"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/workload"
)

func TestRecallOf(t *testing.T) {
	exact := []hit{{1, 0.1}, {2, 0.2}, {3, 0.3}, {4, 0.3}}
	cases := []struct {
		name   string
		approx []hit
		k      int
		want   float64
	}{
		{"all found", []hit{{1, 0.1}, {2, 0.2}, {3, 0.3}}, 3, 1},
		{"a tie at the k-th distance counts", []hit{{1, 0.1}, {2, 0.2}, {4, 0.3}}, 3, 1},
		{"a farther row does not", []hit{{1, 0.1}, {2, 0.2}, {9, 0.5}}, 3, 2.0 / 3},
		{"short result", []hit{{1, 0.1}}, 3, 1.0 / 3},
		{"empty", nil, 3, 0},
	}
	for _, c := range cases {
		if got := recallOf(c.approx, exact, c.k); math.Abs(got-c.want) > 1e-9 {
			t.Errorf("%s: recall %v, want %v", c.name, got, c.want)
		}
	}
	if got := recallOf(nil, nil, 10); !math.IsNaN(got) {
		t.Errorf("recall against an empty table = %v, want NaN", got)
	}
}

func TestQuantile(t *testing.T) {
	xs := []float64{5, 1, 4, 2, 3, 6, 7, 8, 9, 10}
	if got := quantile(xs, 0.5); got != 5 {
		t.Errorf("p50 = %v, want 5", got)
	}
	if got := quantile(xs, 0.99); got != 10 {
		t.Errorf("p99 = %v, want 10", got)
	}
	if got := quantile(nil, 0.5); !math.IsNaN(got) {
		t.Errorf("p50 of nothing = %v, want NaN", got)
	}
}

func TestChurnerIsSeededAndKeepsRowsConstant(t *testing.T) {
	newC := func() *churner {
		g := workload.NewGenerator(workload.Dataset{Dim: 4, Seed: 7})
		e := workload.NewGenerator(workload.Dataset{Dim: 4, Seed: 8})
		return newChurner(3, g, e, 1000, 200, 40, 10)
	}
	a, b := newC(), newC()
	for i := range 30 {
		ta, tb := a.next(float64(i)/30), b.next(float64(i)/30)
		if len(ta.deleteIDs) != len(ta.insert) {
			t.Fatalf("tick %d deletes %d and inserts %d rows: the docs row count would change", i, len(ta.deleteIDs), len(ta.insert))
		}
		if workload.Literal(ta.reembed[0].vec) != workload.Literal(tb.reembed[0].vec) || ta.deleteIDs[0] != tb.deleteIDs[0] {
			t.Fatalf("tick %d differs between two churners of the same seed", i)
		}
		if len(ta.reembed) != 20 || len(ta.events) != 10 {
			t.Fatalf("tick %d: %d re-embeddings and %d events, want 20 and 10", i, len(ta.reembed), len(ta.events))
		}
	}
	if len(a.live) != 1000 {
		t.Errorf("%d live rows after the churn, want 1000", len(a.live))
	}
	for doc, ms := range a.members {
		for _, id := range ms {
			if a.docOf[id] != doc {
				t.Fatalf("row %d is listed in document %d but belongs to %d", id, doc, a.docOf[id])
			}
		}
	}
}

// fixture builds samples of two twins: untended recall falls from 0.95 to 0.8625 and its size
// doubles; tended stays.
func fixture(t0 time.Time) ([]sample, runInfo) {
	var ss []sample
	for i := range 10 {
		phase := phaseQuiet
		if i >= 2 {
			phase = phaseChurn
		}
		at := t0.Add(time.Duration(i) * time.Minute)
		ss = append(ss,
			sample{At: at, Elapsed: at.Sub(t0), Phase: phase, Twin: tended, Index: docsIndex, Recall: 0.95, P99: 0.004, P50: 0.002, Size: 1000},
			sample{At: at, Elapsed: at.Sub(t0), Phase: phase, Twin: untended, Index: docsIndex, Recall: 0.95 - float64(max(i-2, 0))*0.0125,
				P99: 0.004, P50: 0.002, Size: int64(1000 + max(i-2, 0)*300), Dead: int64(i * 100)})
	}
	return ss, runInfo{QuietStart: t0, ChurnStart: t0.Add(2 * time.Minute), End: t0.Add(32 * time.Minute), ConstantRows: map[string]bool{docsIndex: true}}
}

func TestSummariseAndEvaluate(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss, info := fixture(t0)
	started := t0.Add(5 * time.Minute)
	finished := started.Add(3 * time.Second)
	repairs := []repairMark{{ID: 1, Index: docsIndex, Entry: "hnsw-dead-tuples", State: "succeeded", Created: started, Started: &started, Finished: &finished}}
	alerts := []alertMark{{At: t0.Add(4 * time.Minute), Alert: "PgvectorHNSWDeadTuplesPending", Index: docsIndex}}
	sts := summarise(ss, repairs, alerts)
	if len(sts) != 2 || sts[0].Twin != tended || sts[1].Twin != untended {
		t.Fatalf("stats %+v", sts)
	}
	u := sts[1]
	if u.AsBuilt != 0.95 || math.Abs(u.Final-0.8625) > 1e-9 || u.SizeMax != 3100 || u.SizeBuilt != 1000 || u.MaxDead != 900 {
		t.Errorf("untended stats %+v", u)
	}
	if sts[0].Repairs["succeeded"] != 1 || sts[0].Alerts["PgvectorHNSWDeadTuplesPending"] != 1 || len(u.Repairs) != 0 {
		t.Errorf("repairs and alerts belong to the tended twin only: %+v / %+v", sts[0].Repairs, u.Repairs)
	}
	crit := evaluate(sts, repairs, alerts, info)
	var failed []string
	for _, c := range crit {
		if !c.Pass {
			failed = append(failed, c.Name)
		}
	}
	if len(failed) != 0 {
		t.Errorf("failed criteria %v in %+v", failed, crit)
	}

	// A repair and an alert in the quiet period, a rolled-back repair and a structural
	// alert each fail their criterion.
	early := t0.Add(30 * time.Second)
	repairs = append(repairs, repairMark{ID: 2, Index: docsIndex, State: "rolled_back", Created: early})
	alerts = append(alerts, alertMark{At: early, Alert: structuralAlert, Index: docsIndex})
	var buf bytes.Buffer
	if n := writeCriteria(&buf, evaluate(summarise(ss, repairs, alerts), repairs, alerts, info)); n != 4 {
		t.Errorf("%d criteria failed, want 4:\n%s", n, buf.String())
	}
	for _, want := range []string{"**FAIL** 0 failed or rolled-back repairs: 1 of 2 repairs: #2 docs_hnsw rolled_back", "**FAIL** 0 structural-fault alerts"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("criteria lack %q:\n%s", want, buf.String())
		}
	}
}

func TestEvaluateReportsADecayedTendedTwin(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss, info := fixture(t0)
	for i := range ss {
		if ss[i].Twin == tended && ss[i].Phase == phaseChurn {
			ss[i].Recall, ss[i].Size, ss[i].P99 = 0.9, 1400, 0.01
		}
	}
	var buf bytes.Buffer
	writeCriteria(&buf, evaluate(summarise(ss, nil, nil), nil, nil, info))
	for _, want := range []string{"**FAIL** docs_hnsw: tended mean recall", "**FAIL** docs_hnsw: tended final recall",
		"**FAIL** docs_hnsw: tended median p99 <= 1.2x untended: 10ms vs 4ms (2.50x)", "**FAIL** docs_hnsw: tended max size <= 1.3x as-built"} {
		if !strings.Contains(buf.String(), want) {
			t.Errorf("criteria lack %q:\n%s", want, buf.String())
		}
	}
}

func TestWriteSVG(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	ss, info := fixture(t0)
	ss = append(ss, sample{At: t0, Twin: tended, Index: eventsIndex, Recall: math.NaN(), P99: math.NaN()})
	started := t0.Add(5 * time.Minute)
	repairs := []repairMark{{ID: 7, Index: docsIndex, Entry: "hnsw-dead-tuples", State: "succeeded", Created: started, Started: &started}}
	var buf bytes.Buffer
	if err := writeSVG(&buf, ss, repairs, []string{docsIndex, eventsIndex}, info.QuietStart, info.ChurnStart); err != nil {
		t.Fatal(err)
	}
	// Well-formed XML, with a series per twin and chart and the repair marked on both charts
	// of its index.
	dec := xml.NewDecoder(bytes.NewReader(buf.Bytes()))
	count := map[string]int{}
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatalf("not well-formed: %v\n%s", err, buf.String())
		}
		if se, ok := tok.(xml.StartElement); ok {
			for _, a := range se.Attr {
				if a.Name.Local == "class" {
					count[se.Name.Local+"."+a.Value]++
				}
			}
		}
	}
	want := map[string]int{"polyline.tended": 2, "polyline.untended": 2, "line.repair": 2}
	for k, n := range want {
		if count[k] != n {
			t.Errorf("%s: %d, want %d (all: %v)", k, count[k], n, count)
		}
	}
	if !strings.Contains(buf.String(), "#7 hnsw-dead-tuples succeeded") {
		t.Error("the repair's label is missing")
	}
}

// TestDocsHoldTheMarkers: the document -write-docs updates by default has this tool's block.
func TestDocsHoldTheMarkers(t *testing.T) {
	data, err := os.ReadFile("../../docs/BENCHMARKS.md")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := (benchdoc.Markers{Begin: docsBegin, End: docsEnd}).Replace(string(data), "x\n"); err != nil {
		t.Error(err)
	}
}
