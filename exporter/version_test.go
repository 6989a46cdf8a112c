package exporter

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/internal/pgvector"
	"github.com/vectorheal/vectorheal/internal/testenv"
)

// series returns the label sets of every series of name whose labels match every key=value of
// match.
func (s *started) series(t *testing.T, name string, match map[string]string) []map[string]string {
	t.Helper()
	fams, err := s.reg.Gather()
	if err != nil {
		t.Fatalf("gather: %v", err)
	}
	var out []map[string]string
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if !matches(m, match) {
				continue
			}
			ls := map[string]string{}
			for _, lp := range m.GetLabel() {
				ls[lp.GetName()] = lp.GetValue()
			}
			out = append(out, ls)
		}
	}
	return out
}

// waitIssues polls until the known issues published for target main are exactly want (issue
// id -> "fixed_in gates"), all with version, and returns them.
func (s *started) waitIssues(t *testing.T, version string, want map[string]string) {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	var got map[string]string
	for time.Now().Before(deadline) {
		got = map[string]string{}
		for _, ls := range s.series(t, "pgvector_known_issue", map[string]string{"target": "main"}) {
			if ls["version"] != version {
				got["version "+ls["version"]] = ls["issue"]
				continue
			}
			got[ls["issue"]] = ls["fixed_in"] + " " + ls["gates"]
		}
		if len(got) == len(want) {
			same := true
			for k, v := range want {
				same = same && got[k] == v
			}
			if same {
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	t.Fatalf("known issues of %s: got %v, want %v", version, got, want)
}

// TestExtensionVersionAndKnownIssues reads the pgvector really installed, then versions set in
// the catalog of a throwaway database (the only way to meet other releases on one server),
// and checks the version and its known issues are published and follow changes.
func TestExtensionVersionAndKnownIssues(t *testing.T) {
	pg := testenv.SharedPostgres(t)
	dsn := pg.CreateDatabase(t)
	pool := superPool(t, dsn)
	ctx := context.Background()
	var datname, installed string
	if err := pool.QueryRow(ctx, `SELECT current_database(), extversion FROM pg_extension WHERE extname = 'vector'`).Scan(&datname, &installed); err != nil {
		t.Fatalf("installed pgvector: %v", err)
	}
	t.Logf("installed pgvector %s", installed)
	v, err := pgvector.ParseVersion(installed)
	if err != nil {
		t.Fatal(err)
	}

	s := start(t, testConfig(), map[string]string{"main": dsn})
	info := map[string]string{"target": "main", "datname": datname, "version": installed}
	s.waitSample(t, "pgvector_extension_info", info, "1", eq(1))
	want := map[string]string{}
	for _, i := range pgvector.Affecting(v) {
		want[i.ID] = i.Fixed.String() + " " + i.GateList()
	}
	// Independent of the table: the releases this project installs have these facts.
	if v.Less(pgvector.V(0, 8, 2)) && want["hnsw_parallel_build_overflow"] != "0.8.2 parallel_hnsw_build" {
		t.Errorf("pgvector %s is affected by the parallel build overflow fixed in 0.8.2; the table says %v", v, want)
	}
	if v.Less(pgvector.V(0, 8, 3)) && want["hnsw_vacuum_corruption"] != "0.8.3 hnsw_vacuum" {
		t.Errorf("pgvector %s is affected by the vacuum corruption fixed in 0.8.3; the table says %v", v, want)
	}
	if !v.Less(pgvector.V(0, 8, 4)) && len(want) != 0 {
		t.Errorf("pgvector %s has no known issue in the table's scope; the table says %v", v, want)
	}
	s.waitIssues(t, installed, want)
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": kindExtension}, "1", eq(1))
	promtoolCheck(t, s.scrape(t))

	for _, tc := range []struct {
		version string
		want    map[string]string
	}{
		{"0.7.4", map[string]string{
			"hnsw_parallel_build_overflow": "0.8.2 parallel_hnsw_build",
			"hnsw_vacuum_corruption":       "0.8.3 hnsw_vacuum",
			"hnsw_vacuum_insert_error":     "0.8.4 hnsw_vacuum",
			"ivfflat_build_memory":         "0.8.4 none",
		}},
		{"0.8.3", map[string]string{
			"hnsw_vacuum_not_repaired": "0.8.4 hnsw_vacuum",
			"hnsw_vacuum_insert_error": "0.8.4 hnsw_vacuum",
			"ivfflat_build_memory":     "0.8.4 none",
		}},
		{"0.8.7", map[string]string{}},
		// A version string pgvector never wrote: published as it is, with no issue claimed.
		{"weird", map[string]string{}},
	} {
		testenv.Exec(t, dsn, `UPDATE pg_extension SET extversion = '`+tc.version+`' WHERE extname = 'vector'`)
		s.waitSample(t, "pgvector_extension_info", map[string]string{"target": "main", "datname": datname, "version": tc.version}, "1", eq(1))
		s.waitIssues(t, tc.version, tc.want)
		if n := len(s.series(t, "pgvector_extension_info", map[string]string{"target": "main"})); n != 1 {
			t.Errorf("version %s: %d pgvector_extension_info series, want 1 (the old version must go)", tc.version, n)
		}
	}
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": kindExtension}, "1", eq(1))

	// Without the extension there is nothing to publish, and that is not a failure.
	testenv.Exec(t, dsn, `UPDATE pg_extension SET extversion = '`+installed+`' WHERE extname = 'vector'`, `DROP EXTENSION vector CASCADE`)
	deadline := time.Now().Add(90 * time.Second)
	for len(s.series(t, "pgvector_extension_info", map[string]string{"target": "main"})) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("pgvector_extension_info still published after DROP EXTENSION")
		}
		time.Sleep(100 * time.Millisecond)
	}
	if n := len(s.series(t, "pgvector_known_issue", map[string]string{"target": "main"})); n != 0 {
		t.Errorf("%d known issues published without the extension", n)
	}
	s.waitSample(t, "vectorheal_collector_success", map[string]string{"target": "main", "collector": kindExtension}, "1", eq(1))
	if out := s.scrape(t); !strings.Contains(out, `vectorheal_up{target="main"} 1`) {
		t.Errorf("target not up after DROP EXTENSION:\n%s", out)
	}
}
