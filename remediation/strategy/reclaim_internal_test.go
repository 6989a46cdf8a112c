package strategy

import (
	"errors"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/catalog"
)

// A plan's reading stands for the run's only once, while fresh, and for the same index file.
func TestPlanReadings(t *testing.T) {
	t0 := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	ix := catalog.Index{OID: 10, Relfilenode: 100, Datname: "app"}
	good := figureReading{vals: map[string]float64{deadTIDs: 4, liveTIDs: 16}}
	for _, c := range []struct {
		name    string
		reading figureReading
		taken   catalog.Index
		after   time.Duration
		want    bool
	}{
		{"at once", good, ix, time.Second, true},
		{"just fresh", good, ix, planReadingFresh - time.Nanosecond, true},
		{"stale", good, ix, planReadingFresh, false},
		{"clock went back", good, ix, -time.Second, false},
		{"rebuilt in place", good, catalog.Index{OID: 10, Relfilenode: 101, Datname: "app"}, time.Second, false},
		{"another index", good, catalog.Index{OID: 11, Relfilenode: 100, Datname: "app"}, time.Second, false},
		{"same OID in another database", good, catalog.Index{OID: 10, Relfilenode: 100, Datname: "other"}, time.Second, false},
		{"plan measured nothing", figureReading{errs: map[string]error{deadTIDs: errors.New("no page reader")}}, ix, time.Second, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			var p planReadings
			p.put("db1", ix, c.reading, t0)
			got, ok := p.take("db1", c.taken, t0.Add(c.after))
			if ok != c.want {
				t.Fatalf("take: %t, want %t", ok, c.want)
			}
			if ok && got.vals[deadTIDs] != 4 {
				t.Errorf("took %v", got.vals)
			}
			if _, again := p.take("db1", c.taken, t0.Add(c.after)); again {
				t.Error("a reading was taken twice")
			}
		})
	}
	// A figure the plan failed to measure is not kept: the run measures it again.
	var part planReadings
	part.put("db1", ix, figureReading{vals: map[string]float64{deadTIDs: 4}, errs: map[string]error{"pgvector_recall_ratio": errors.New("probe")}}, t0)
	if got, ok := part.take("db1", ix, t0); !ok || len(got.errs) != 0 || got.vals[deadTIDs] != 4 {
		t.Errorf("partial reading taken as %+v, %t; want its measured figures only", got, ok)
	}
	// Nor does a reading of the same index on another target.
	var targets planReadings
	targets.put("db1", ix, good, t0)
	if _, ok := targets.take("db2", ix, t0); ok {
		t.Error("a reading of target db1 was taken for db2")
	}
	// Readings of plans never run are dropped once stale, at the next plan.
	var p planReadings
	p.put("db1", ix, good, t0)
	p.put("db1", catalog.Index{OID: 11}, good, t0.Add(planReadingFresh))
	if _, ok := p.m[keyOf("db1", ix)]; ok || len(p.m) != 1 {
		t.Errorf("readings kept: %v", p.m)
	}
}
