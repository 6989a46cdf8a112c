package strategy

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestGuardDisk(t *testing.T) {
	mb := int64(1 << 20)
	budget := func(free, reserve int64) *FreeSpace {
		return &FreeSpace{Bytes: free, Reserve: reserve, Source: `budget free_space_bytes of target "prod"`}
	}
	for _, tc := range []struct {
		name      string
		need      int64
		free      *FreeSpace
		note      string // substring of the note when allowed
		shortfall int64  // > 0: refused by this much
		err       string // other error
	}{
		{name: "not configured: not checked, said so", need: 166 * mb, note: "not checked: no budget or Prometheus query configured"},
		{name: "fits", need: 100 * mb, free: budget(200*mb, 50*mb), note: `needs 100 MB of disk; the budget free_space_bytes of target "prod" allows 150 MB`},
		{name: "fits exactly", need: 150 * mb, free: budget(200*mb, 50*mb), note: "allows 150 MB"},
		{name: "short", need: 166 * mb, free: budget(120*mb, 20*mb), shortfall: 66 * mb},
		{name: "short by a byte", need: 150*mb + 1, free: budget(200*mb, 50*mb), shortfall: 1},
		{name: "reserve above free", need: 1, free: budget(10*mb, 20*mb), shortfall: 10*mb + 1},
		{name: "negative need", need: -1, free: budget(1, 0), err: "must not be negative"},
		{name: "no source", need: 1, free: &FreeSpace{Bytes: 10}, err: "want non-negative sizes and a source"},
		{name: "negative free", need: 1, free: budget(-5, 0), err: "free space -5 bytes"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			note, err := GuardDisk("REINDEX INDEX CONCURRENTLY public.items_idx", tc.need, tc.free)
			var se *SpaceError
			switch {
			case tc.shortfall > 0:
				if !errors.As(err, &se) || se.Shortfall != tc.shortfall || se.Need != tc.need {
					t.Fatalf("got %q, %v; want a SpaceError short by %d", note, err, tc.shortfall)
				}
				for _, s := range []string{"REINDEX INDEX CONCURRENTLY public.items_idx refused", tc.free.Source, "short by " + bytesText(tc.shortfall)} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error %q does not name %q", err, s)
					}
				}
			case tc.err != "":
				if err == nil || !strings.Contains(err.Error(), tc.err) || errors.As(err, &se) {
					t.Fatalf("got %v, want an error containing %q", err, tc.err)
				}
			default:
				if err != nil || !strings.Contains(note, tc.note) {
					t.Fatalf("got %q, %v; want a note containing %q", note, err, tc.note)
				}
			}
		})
	}
	_, err := GuardDisk("REINDEX INDEX CONCURRENTLY public.items_idx", 166*mb, budget(120*mb, 20*mb))
	want := `REINDEX INDEX CONCURRENTLY public.items_idx refused: it needs 166 MB of disk, the budget free_space_bytes of target "prod" allows 100 MB (120 MB free less a reserve of 20 MB): short by 66 MB`
	if err == nil || err.Error() != want {
		t.Errorf("message\n got %v\nwant %s", err, want)
	}
}

func TestGuardPlanBuild(t *testing.T) {
	mb := int64(1 << 20)
	for _, tc := range []struct {
		name    string
		in      BuildInput
		mem     int64
		workers int
		notes   []string
	}{
		{name: "fits the current setting",
			in:  BuildInput{Method: "hnsw", PgvectorVersion: "0.8.7", GraphBytes: 50 * mb, MaintenanceWorkMem: 64 * mb, MaxMaintenanceWorkMem: 1024 * mb, MaxParallelWorkers: -1},
			mem: 0, workers: -1, notes: []string{"fits the current maintenance_work_mem (64 MB)"}},
		{name: "raised to the graph",
			in:  BuildInput{Method: "hnsw", PgvectorVersion: "0.8.7", GraphBytes: 300 * mb, MaintenanceWorkMem: 64 * mb, MaxMaintenanceWorkMem: 1024 * mb, MaxParallelWorkers: 3},
			mem: 300 * mb, workers: 3, notes: []string{"raised to 300 MB", "up to 3 parallel workers", "/dev/shm"}},
		{name: "capped: spills",
			in:  BuildInput{Method: "hnsw", PgvectorVersion: "0.8.7", GraphBytes: 3000 * mb, MaintenanceWorkMem: 64 * mb, MaxMaintenanceWorkMem: 1024 * mb, MaxParallelWorkers: -1},
			mem: 1024 * mb, workers: -1, notes: []string{"needs ~3000 MB but the cap is 1024 MB"}},
		{name: "cap below the current setting: left alone",
			in:  BuildInput{Method: "hnsw", PgvectorVersion: "0.8.7", GraphBytes: 3000 * mb, MaintenanceWorkMem: 2048 * mb, MaxMaintenanceWorkMem: 1024 * mb, MaxParallelWorkers: 0},
			mem: 0, workers: 0},
		{name: "parallel build gated on 0.8.0",
			in:  BuildInput{Method: "hnsw", PgvectorVersion: "0.8.0", GraphBytes: 300 * mb, MaintenanceWorkMem: 64 * mb, MaxMaintenanceWorkMem: 1024 * mb, MaxParallelWorkers: 4},
			mem: 300 * mb, workers: 0,
			notes: []string{"pgvector 0.8.0 < 0.8.2: no parallel HNSW build workers", "hnsw_parallel_build_overflow"}},
		{name: "gate sets 0 even when no cap is configured",
			in:  BuildInput{Method: "hnsw", PgvectorVersion: "0.7.0", MaxParallelWorkers: -1},
			mem: 0, workers: 0, notes: []string{"pgvector 0.7.0 < 0.8.2", "hnsw_parallel_build_locking, fixed in 0.7.4"}},
		{name: "0.8.2 may build in parallel",
			in:  BuildInput{Method: "hnsw", PgvectorVersion: "0.8.2", MaxParallelWorkers: 4},
			mem: 0, workers: 4},
		{name: "unknown version: no parallel HNSW workers",
			in:  BuildInput{Method: "hnsw", MaxParallelWorkers: 4},
			mem: 0, workers: 0, notes: []string{"version unknown or not understood"}},
		{name: "ivfflat builds in parallel on 0.8.0, with a memory warning",
			in:  BuildInput{Method: "ivfflat", PgvectorVersion: "0.8.0", MaxParallelWorkers: 4},
			mem: 0, workers: 4, notes: []string{"ivfflat_build_memory"}},
		{name: "ivfflat on 0.8.4: no warning",
			in:  BuildInput{Method: "ivfflat", PgvectorVersion: "0.8.4", MaxParallelWorkers: -1},
			mem: 0, workers: -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := PlanBuild(tc.in)
			if err != nil {
				t.Fatal(err)
			}
			if got.MaintenanceWorkMem != tc.mem || got.ParallelWorkers != tc.workers {
				t.Errorf("got maintenance_work_mem %d, workers %d; want %d, %d (%v)", got.MaintenanceWorkMem, got.ParallelWorkers, tc.mem, tc.workers, got.Notes)
			}
			all := strings.Join(got.Notes, " | ")
			for _, s := range tc.notes {
				if !strings.Contains(all, s) {
					t.Errorf("notes %q do not contain %q", all, s)
				}
			}
			if len(tc.notes) == 0 && len(got.Notes) > 0 && !slices.ContainsFunc(got.Notes, func(n string) bool { return strings.Contains(n, "graph") }) {
				t.Errorf("unexpected notes %q", all)
			}
		})
	}
	for _, in := range []BuildInput{{Method: "btree"}, {Method: "hnsw", GraphBytes: -1}} {
		if _, err := PlanBuild(in); err == nil {
			t.Errorf("%+v: no error", in)
		}
	}
}
