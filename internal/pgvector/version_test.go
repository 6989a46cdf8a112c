package pgvector

import (
	"slices"
	"strings"
	"testing"
)

func TestParseVersion(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Version
		err  string
	}{
		{in: "0.8.0", want: V(0, 8, 0)},
		{in: "0.7.4", want: V(0, 7, 4)},
		{in: "0.8.7", want: V(0, 8, 7)},
		{in: "0.10.12", want: V(0, 10, 12)},
		{in: "1.0", want: V(1, 0, 0)},
		{in: "v0.8.4", want: V(0, 8, 4)},
		{in: " 0.8.0\n", want: V(0, 8, 0)},
		{in: "0.8.3-dev", want: Version{0, 8, 3, "dev"}},
		{in: "0.9.0rc1", want: Version{0, 9, 0, "rc1"}},
		{in: "0.8rc1", want: Version{0, 8, 0, "rc1"}},
		{in: "0.8.0+deb12", want: V(0, 8, 0)},
		{in: "", err: "empty"},
		{in: "v", err: "empty"},
		{in: "0", err: "want major.minor"},
		{in: "0.8.0.1", err: "want major.minor"},
		{in: "0..1", err: `component 2 ("")`},
		{in: "0.8.", err: `component 3 ("")`},
		{in: "x.8.0", err: "want major.minor"},
		{in: "-1.0.0", err: "want major.minor"},
		{in: "0.8.0-", err: "bad pre-release"},
		{in: "0.8.0 dev", err: "bad pre-release"},
		{in: "0.99999999999999999999.0", err: "component 2"},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseVersion(tc.in)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) || !strings.Contains(err.Error(), "pgvector version") {
					t.Fatalf("got %v, %v; want an error containing %q", got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("got %+v, %v; want %+v", got, err, tc.want)
			}
		})
	}
}

func TestVersionCompare(t *testing.T) {
	for _, tc := range []struct {
		a, b string
		want int
	}{
		{"0.8.0", "0.8.0", 0},
		{"0.8", "0.8.0", 0},
		{"0.8.0", "0.8.1", -1},
		{"0.7.4", "0.8.0", -1},
		{"0.8.7", "0.8.3", 1},
		{"0.10.0", "0.9.9", 1}, // numeric, not textual
		{"1.0.0", "0.99.99", 1},
		{"0.8.3-dev", "0.8.3", -1},
		{"0.8.3-dev", "0.8.2", 1},
		{"0.8.3-alpha", "0.8.3-beta", -1},
		{"0.8.0+a", "0.8.0+b", 0},
	} {
		t.Run(tc.a+"_"+tc.b, func(t *testing.T) {
			a, b := mustParse(t, tc.a), mustParse(t, tc.b)
			if got := a.Compare(b); got != tc.want {
				t.Errorf("Compare = %d, want %d", got, tc.want)
			}
			if got := b.Compare(a); got != -tc.want {
				t.Errorf("reverse Compare = %d, want %d", got, -tc.want)
			}
			if a.Less(b) != (tc.want < 0) {
				t.Errorf("Less = %v", a.Less(b))
			}
		})
	}
}

func TestVersionString(t *testing.T) {
	for in, want := range map[string]string{"0.8": "0.8.0", "v0.7.4": "0.7.4", "0.8.3-dev": "0.8.3-dev", "0.9.0rc1": "0.9.0-rc1"} {
		if got := mustParse(t, in).String(); got != want {
			t.Errorf("%q: String = %q, want %q", in, got, want)
		}
	}
}

func mustParse(t *testing.T, s string) Version {
	t.Helper()
	v, err := ParseVersion(s)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func ids(is []Issue) []string {
	var out []string
	for _, i := range is {
		out = append(out, i.ID)
	}
	return out
}

func TestVersionAffecting(t *testing.T) {
	for _, tc := range []struct {
		version string
		want    []string
	}{
		{"0.2.6", []string{"ivfflat_build_memory"}},
		{"0.3.0", []string{"ivfflat_insert_corruption", "ivfflat_build_memory"}},
		{"0.5.1", []string{"hnsw_build_alloc_error", "hnsw_vacuum_corruption", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.6.0", []string{"hnsw_parallel_build_locking", "hnsw_parallel_build_overflow", "hnsw_vacuum_corruption", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.7.4", []string{"hnsw_parallel_build_overflow", "hnsw_vacuum_corruption", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.8.0", []string{"hnsw_parallel_build_overflow", "hnsw_vacuum_corruption", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.8.1", []string{"hnsw_parallel_build_overflow", "hnsw_vacuum_corruption", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.8.2", []string{"hnsw_vacuum_corruption", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.8.2-dev", []string{"hnsw_parallel_build_overflow", "hnsw_vacuum_corruption", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.8.3", []string{"hnsw_vacuum_not_repaired", "hnsw_vacuum_insert_error", "ivfflat_build_memory"}},
		{"0.8.4", nil},
		{"0.8.7", nil},
		{"1.0.0", nil},
	} {
		t.Run(tc.version, func(t *testing.T) {
			if got := ids(Affecting(mustParse(t, tc.version))); !slices.Equal(got, tc.want) {
				t.Errorf("Affecting = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestVersionGates(t *testing.T) {
	for _, tc := range []struct {
		version  string
		vacuum   bool
		parallel bool
	}{
		{"0.5.0", true, false}, // HNSW, no parallel builds yet
		{"0.6.0", true, true},
		{"0.7.4", true, true},
		{"0.8.0", true, true},
		{"0.8.1", true, true},
		{"0.8.2", true, false},
		{"0.8.3", true, false},
		{"0.8.3-dev", true, false},
		{"0.8.4", false, false},
		{"0.8.7", false, false},
	} {
		t.Run(tc.version, func(t *testing.T) {
			v := mustParse(t, tc.version)
			if got := len(Gated(v, GateHNSWVacuum)) > 0; got != tc.vacuum {
				t.Errorf("hnsw_vacuum gated = %v, want %v", got, tc.vacuum)
			}
			if got := len(Gated(v, GateParallelHNSWBuild)) > 0; got != tc.parallel {
				t.Errorf("parallel_hnsw_build gated = %v, want %v", got, tc.parallel)
			}
			gates := Gates(v)
			if slices.Contains(gates, GateHNSWVacuum) != tc.vacuum || slices.Contains(gates, GateParallelHNSWBuild) != tc.parallel {
				t.Errorf("Gates = %v", gates)
			}
			if (GateReason(v, GateHNSWVacuum) != "") != tc.vacuum {
				t.Errorf("GateReason = %q", GateReason(v, GateHNSWVacuum))
			}
		})
	}
}

func TestVersionGateReason(t *testing.T) {
	got := GateReason(V(0, 8, 0), GateHNSWVacuum)
	want := "pgvector 0.8.0 < 0.8.4: HNSW vacuum gated: REINDEX CONCURRENTLY runs before VACUUM (hnsw_vacuum_corruption, fixed in 0.8.3; hnsw_vacuum_insert_error, fixed in 0.8.4)"
	if got != want {
		t.Errorf("got  %q\nwant %q", got, want)
	}
	if got := GateReason(V(0, 8, 1), GateParallelHNSWBuild); !strings.HasPrefix(got, "pgvector 0.8.1 < 0.8.2: no parallel HNSW build workers") {
		t.Errorf("parallel: %q", got)
	}
}

// TestVersionKnownIssuesWellFormed keeps the table honest: stable unique ids usable as label
// values, a CHANGELOG source, a non-empty range, and gates that are known.
func TestVersionKnownIssuesWellFormed(t *testing.T) {
	seen := map[string]bool{}
	for _, i := range KnownIssues() {
		if seen[i.ID] || i.ID == "" || strings.Trim(i.ID, "abcdefghijklmnopqrstuvwxyz0123456789_") != "" {
			t.Errorf("%q: id empty, repeated or not lower_snake_case", i.ID)
		}
		seen[i.ID] = true
		if !i.From.Less(i.Fixed) {
			t.Errorf("%s: empty range %s..%s", i.ID, i.From, i.Fixed)
		}
		if !strings.HasPrefix(i.Source, changelog+"#0") || i.Summary == "" || len(i.Methods) == 0 {
			t.Errorf("%s: source %q, summary %q, methods %v", i.ID, i.Source, i.Summary, i.Methods)
		}
		// The anchor names the release that fixed it.
		anchor := strings.ReplaceAll(i.Fixed.String(), ".", "")
		if !strings.Contains(i.Source, "#"+anchor+"-") {
			t.Errorf("%s: source %q does not point at the %s section", i.ID, i.Source, i.Fixed)
		}
		for _, g := range i.Gates {
			if g != GateHNSWVacuum && g != GateParallelHNSWBuild {
				t.Errorf("%s: unknown gate %q", i.ID, g)
			}
		}
		if i.Affects(i.Fixed) || !i.Affects(i.From) {
			t.Errorf("%s: range bounds wrong", i.ID)
		}
	}
}
