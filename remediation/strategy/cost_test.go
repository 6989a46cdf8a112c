package strategy

import (
	"errors"
	"math"
	"strings"
	"testing"
	"time"
)

// calibration is the index the default rates were measured on: 200k × 128-d HNSW, 20 % deleted.
func calibration(version string) CostInput {
	return CostInput{Method: "hnsw", SizeBytes: 166 << 20, Elements: 200_000, DeadShare: 0.2,
		PgvectorVersion: version, Need: NeedDeadEntries}
}

func estimate(t *testing.T, c Choice, p Path) Estimate {
	t.Helper()
	for _, e := range c.Estimates {
		if e.Path == p {
			return e
		}
	}
	t.Fatalf("no estimate for %s in %+v", p, c.Estimates)
	return Estimate{}
}

func near(got time.Duration, want float64, tol float64) bool {
	return math.Abs(got.Seconds()-want) <= tol
}

// TestCostCalibration checks the model reproduces the measurements its default rates come
// from, and chooses the rebuild there, as measured.
func TestCostCalibration(t *testing.T) {
	c, err := ChooseRepair(calibration("0.8.7"))
	if err != nil {
		t.Fatal(err)
	}
	if v := estimate(t, c, PathVacuum); !near(v.Duration, 449.6, 0.5) || v.Refused != "" || !v.Heals {
		t.Errorf("vacuum estimate %+v, want 449.6 s, allowed, healing", v)
	}
	if r := estimate(t, c, PathReindexVacuum); !near(r.Duration, 29.1+0.3, 0.1) {
		t.Errorf("reindex+vacuum estimate %v, want 29.4 s", r.Duration)
	}
	if c.Path != PathReindexVacuum || c.Chosen().Path != PathReindexVacuum {
		t.Errorf("chose %s, want reindex+vacuum", c.Path)
	}
	if want := "reindex+vacuum est. 29s vs vacuum est. 450s (dead share 20%, 166 MB)"; c.Reason != want {
		t.Errorf("reason %q, want %q", c.Reason, want)
	}

	// IVFFlat rates reproduce their measurements too.
	r := DefaultRates()
	if got := float64(calIVFBytes) * r.IVFFlatVacuum; math.Abs(got-calIVFVacuumSecs) > 1e-9 {
		t.Errorf("ivfflat vacuum %v s, want %v", got, calIVFVacuumSecs)
	}
}

func TestCostChoice(t *testing.T) {
	mb := int64(1 << 20)
	for _, tc := range []struct {
		name     string
		in       CostInput
		want     Path
		reason   []string // substrings of the reason
		refused  Path     // a path that must be refused
		noHealer Path     // a path that must not heal
	}{
		{name: "gated vacuum on 0.8.0 is refused", in: calibration("0.8.0"), want: PathReindexVacuum, refused: PathVacuum,
			reason: []string{"reindex+vacuum est. 29s vs vacuum est. 450s (dead share 20%, 166 MB); vacuum refused: pgvector 0.8.0 < 0.8.4: HNSW vacuum gated", "hnsw_vacuum_corruption, fixed in 0.8.3"}},
		{name: "gated on 0.8.3 by the errors fixed in 0.8.4", in: calibration("0.8.3"), want: PathReindexVacuum, refused: PathVacuum,
			reason: []string{"pgvector 0.8.3 < 0.8.4", "hnsw_vacuum_not_repaired"}},
		{name: "few deletes: vacuum is cheaper on a fixed version",
			in:   CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, PgvectorVersion: "0.8.7", Need: NeedDeadEntries},
			want: PathVacuum, reason: []string{"vacuum est. 18s vs reindex+vacuum est. 37s (dead share 0.1%, 166 MB)"}},
		{name: "few deletes on a gated version: the rebuild all the same",
			in:   CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, PgvectorVersion: "0.8.0", Need: NeedDeadEntries},
			want: PathReindexVacuum, refused: PathVacuum, reason: []string{"reindex+vacuum est. 37s vs vacuum est. 18s"}},
		{name: "unknown version gates HNSW vacuum",
			in:   CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, Need: NeedDeadEntries},
			want: PathReindexVacuum, refused: PathVacuum, reason: []string{"pgvector version unknown"}},
		{name: "unreadable version gates HNSW vacuum",
			in:   CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, PgvectorVersion: "weird", Need: NeedDeadEntries},
			want: PathReindexVacuum, refused: PathVacuum, reason: []string{`pgvector version "weird" not understood`}},
		{name: "space: only a rebuild shrinks the index",
			in:   CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, PgvectorVersion: "0.8.7", Need: NeedSpace},
			want: PathReindexVacuum, noHealer: PathVacuum, reason: []string{"vacuum does not heal space"}},
		{name: "elements listing a neighbour twice: the rebuild, which removes them",
			in: CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, PgvectorVersion: "0.8.7", Need: NeedDeadEntries,
				DuplicateNeighbors: 3},
			want: PathReindexVacuum, noHealer: PathVacuum, reason: []string{"vacuum leaves the 3 elements that list a neighbour twice"}},
		{name: "elements listing a neighbour twice and no rebuild allowed: vacuum",
			in: CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, PgvectorVersion: "0.8.7", Need: NeedDeadEntries,
				DuplicateNeighbors: 3, RebuildRefused: "disk guard"},
			want: PathVacuum},
		{name: "no dead entries: vacuum is a scan",
			in:   CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, PgvectorVersion: "0.8.7", Need: NeedDeadEntries},
			want: PathVacuum, reason: []string{"vacuum est. 0s vs reindex+vacuum est. 37s"}},
		{name: "a tie goes to vacuum", in: CostInput{Method: "hnsw", PgvectorVersion: "0.8.7", Need: NeedDeadEntries}, want: PathVacuum},
		{name: "ivfflat dead entries: vacuum",
			in:   CostInput{Method: "ivfflat", SizeBytes: 105 * mb, Elements: 200_000, DeadShare: 0.2, PgvectorVersion: "0.8.0", Need: NeedDeadEntries},
			want: PathVacuum, reason: []string{"vacuum est. 1s vs retrain+vacuum est. 3s (dead share 20%, 105 MB)"}},
		{name: "ivfflat stale centers: retrain",
			in:   CostInput{Method: "ivfflat", SizeBytes: 105 * mb, Elements: 200_000, DeadShare: 0.2, PgvectorVersion: "0.8.0", Need: NeedCenters},
			want: PathRetrainVacuum, noHealer: PathVacuum, reason: []string{"vacuum does not heal stale centers"}},
		{name: "ivfflat vacuum is not gated on 0.8.0",
			in:   CostInput{Method: "ivfflat", SizeBytes: 105 * mb, Elements: 200_000, DeadShare: 0.5, Need: NeedDeadEntries},
			want: PathVacuum},
		{name: "rebuild refused by the disk guard: vacuum where it may run",
			in:   CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.2, PgvectorVersion: "0.8.7", Need: NeedDeadEntries, RebuildRefused: "short of disk by 66 MB"},
			want: PathVacuum, refused: PathReindexVacuum, reason: []string{"vacuum est. 450s vs reindex+vacuum est. 29s", "reindex+vacuum refused: short of disk by 66 MB"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := ChooseRepair(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if c.Path != tc.want {
				t.Errorf("chose %q, want %q (%s)", c.Path, tc.want, c.Reason)
			}
			for _, s := range tc.reason {
				if !strings.Contains(c.Reason, s) {
					t.Errorf("reason %q does not contain %q", c.Reason, s)
				}
			}
			if tc.refused != "" && estimate(t, c, tc.refused).Refused == "" {
				t.Errorf("%s not refused: %+v", tc.refused, c.Estimates)
			}
			if tc.noHealer != "" && estimate(t, c, tc.noHealer).Heals {
				t.Errorf("%s said to heal %s", tc.noHealer, tc.in.Need)
			}
		})
	}
}

func TestCostNoRepair(t *testing.T) {
	in := calibration("0.8.0")
	in.RebuildRefused = "short of disk by 66 MB"
	c, err := ChooseRepair(in)
	if !errors.Is(err, ErrNoRepair) || c.Path != "" {
		t.Fatalf("got %q, %v; want ErrNoRepair", c.Path, err)
	}
	for _, s := range []string{"none may run", "vacuum refused: pgvector 0.8.0", "reindex+vacuum refused: short of disk by 66 MB"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q does not contain %q", err, s)
		}
	}
}

// TestCostHistory checks that this index's earlier runs replace the default rates.
func TestCostHistory(t *testing.T) {
	mb := int64(1 << 20)
	base := CostInput{Method: "hnsw", SizeBytes: 166 * mb, Elements: 200_000, DeadShare: 0.001, PgvectorVersion: "0.8.7", Need: NeedDeadEntries}
	plain, err := ChooseRepair(base)
	if err != nil {
		t.Fatal(err)
	}
	if plain.Path != PathVacuum {
		t.Fatalf("without history chose %s, want vacuum", plain.Path)
	}
	defVacuum := estimate(t, plain, PathVacuum).Duration

	// This index's vacuums ran 10× slower than the model (e.g. a slow disk); its runs were on a
	// smaller index with another dead share, which the factor accounts for.
	withHist := base
	small := PastRun{SizeBytes: 83 * mb, Elements: 100_000, DeadShare: 0.01}
	modelled := modelSeconds(DefaultRates(), "hnsw", PathVacuum, small.SizeBytes, small.Elements, small.DeadShare, 16)
	slow := small
	slow.Seconds = 10 * modelled
	withHist.History.Vacuum = []PastRun{slow, slow, {Seconds: 0, SizeBytes: 83 * mb}} // the last is unusable
	c, err := ChooseRepair(withHist)
	if err != nil {
		t.Fatal(err)
	}
	v := estimate(t, c, PathVacuum)
	if v.FromHistory != 2 || !near(v.Duration, 10*defVacuum.Seconds(), 0.01) {
		t.Errorf("vacuum from history: %+v, want 10 × %v from 2 runs", v, defVacuum)
	}
	if c.Path != PathReindexVacuum || !strings.Contains(c.Reason, "vacuum est. "+durationText(10*defVacuum)+" (from 2 earlier runs)") {
		t.Errorf("chose %s (%s), want reindex+vacuum with the history shown", c.Path, c.Reason)
	}
	if r := estimate(t, c, PathReindexVacuum); r.FromHistory != 0 {
		t.Errorf("rebuild estimate used %d vacuum runs", r.FromHistory)
	}

	// The median resists one outlier; the elements of a run default to today's density.
	withHist.History = CostHistory{Rebuild: []PastRun{
		{Seconds: 1 * rebuildModel(83*mb), SizeBytes: 83 * mb},
		{Seconds: 2 * rebuildModel(83*mb), SizeBytes: 83 * mb},
		{Seconds: 100 * rebuildModel(83*mb), SizeBytes: 83 * mb},
	}}
	c, err = ChooseRepair(withHist)
	if err != nil {
		t.Fatal(err)
	}
	def := estimate(t, plain, PathReindexVacuum).Duration.Seconds()
	if r := estimate(t, c, PathReindexVacuum); r.FromHistory != 3 || !near(r.Duration, 2*def, 0.01) {
		t.Errorf("rebuild from history: %+v, want 2 × %.1f s (the median)", r, def)
	}
}

func rebuildModel(size int64) float64 {
	return modelSeconds(DefaultRates(), "hnsw", PathReindexVacuum, size, 0, 0, 16)
}

func TestCostHistoryFactor(t *testing.T) {
	in := CostInput{SizeBytes: 1000, Elements: 10}
	model := func(r PastRun, elements int64) float64 { return float64(r.SizeBytes) }
	for _, tc := range []struct {
		name  string
		runs  []PastRun
		want  float64
		count int
	}{
		{"none", nil, 1, 0},
		{"one", []PastRun{{Seconds: 30, SizeBytes: 10}}, 3, 1},
		{"even count: mean of the middle two", []PastRun{{Seconds: 10, SizeBytes: 10}, {Seconds: 30, SizeBytes: 10}}, 2, 2},
		{"unusable runs skipped", []PastRun{{Seconds: -1, SizeBytes: 10}, {Seconds: 5, SizeBytes: 0}, {Seconds: 5, SizeBytes: 10, DeadShare: 2}, {Seconds: 40, SizeBytes: 10}}, 4, 1},
		{"only the most recent five", []PastRun{{Seconds: 10, SizeBytes: 10}, {Seconds: 10, SizeBytes: 10}, {Seconds: 10, SizeBytes: 10},
			{Seconds: 10, SizeBytes: 10}, {Seconds: 10, SizeBytes: 10}, {Seconds: 1000, SizeBytes: 10}, {Seconds: 1000, SizeBytes: 10}}, 1, 5},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, n := historyFactor(tc.runs, in, model)
			if math.Abs(f-tc.want) > 1e-9 || n != tc.count {
				t.Errorf("got %v from %d runs, want %v from %d", f, n, tc.want, tc.count)
			}
		})
	}
}

func TestCostRepairedElements(t *testing.T) {
	for _, tc := range []struct {
		dead float64
		m    int
		want float64 // share of all elements repaired
	}{
		{0, 16, 0},
		{1, 16, 0},
		{0.05, 16, 0.95 * (1 - math.Pow(0.95, 32))}, // 77 % of all elements for 5 % deleted
		{0.2, 16, 0.8 * (1 - math.Pow(0.8, 32))},
		{0.05, 4, 0.95 * (1 - math.Pow(0.95, 8))},
	} {
		if got := repairedElements(1000, tc.dead, tc.m) / 1000; math.Abs(got-tc.want) > 1e-12 {
			t.Errorf("dead %v m %d: %v, want %v", tc.dead, tc.m, got, tc.want)
		}
	}
}

func TestCostInputErrors(t *testing.T) {
	ok := calibration("0.8.7")
	for _, tc := range []struct {
		name string
		mod  func(*CostInput)
		want string
	}{
		{"method", func(c *CostInput) { c.Method = "btree" }, `method "btree"`},
		{"negative size", func(c *CostInput) { c.SizeBytes = -1 }, "must not be negative"},
		{"dead share above 1", func(c *CostInput) { c.DeadShare = 1.5 }, "dead share 1.5"},
		{"dead share NaN", func(c *CostInput) { c.DeadShare = math.NaN() }, "dead share NaN"},
		{"need", func(c *CostInput) { c.Need = "speed" }, `need "speed"`},
		{"centers of an HNSW", func(c *CostInput) { c.Need = NeedCenters }, "applies to ivfflat"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			in := ok
			tc.mod(&in)
			if _, err := ChooseRepair(in); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("got %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestCostDurationText(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0: "0s", 29400 * time.Millisecond: "29s", 449600 * time.Millisecond: "450s", 10 * time.Hour: "10h0m0s", 1500 * time.Second: "25m0s",
	} {
		if got := durationText(d); got != want {
			t.Errorf("%v: %q, want %q", d, got, want)
		}
	}
}
