package strategy_test

import (
	"strings"
	"testing"

	"github.com/vectorheal/vectorheal/remediation/strategy"
)

func TestDefaultRegistersEveryStrategy(t *testing.T) {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"analyze", "hnsw_rebuild", "ivfflat_retrain", "reclaim", "reindex", "sql", "tune_search", "vacuum"}
	if got := reg.Names(); strings.Join(got, ",") != strings.Join(want, ",") {
		t.Errorf("Names() = %v, want %v", got, want)
	}
	for _, n := range want {
		s, _ := reg.Get(n)
		if s.Spec().Description == "" {
			t.Errorf("%s has no description", n)
		}
		if _, err := s.Bind(nil); err != nil && n != "sql" {
			t.Errorf("%s: defaults rejected: %v", n, err)
		}
	}
}

func TestCheckParamsNamesTheParameter(t *testing.T) {
	reg, err := strategy.Default(strategy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	stmt := func(sql string, args ...any) map[string]any { return map[string]any{"sql": sql, "args": args} }
	for _, c := range []struct {
		strategy string
		params   strategy.Params
		want     string // in the error; empty: valid
	}{
		{"reindex", strategy.Params{"max_maintenance_work_mem": "2GB"}, ""},
		{"reindex", strategy.Params{"max_maintenance_work_mem": "lots"}, `"max_maintenance_work_mem"`},
		{"reindex", strategy.Params{"max_maintenance_work_mem": "10kB"}, `"max_maintenance_work_mem"`},
		{"reindex", strategy.Params{"concurrently": false}, `"concurrently": unknown`},
		{"vacuum", strategy.Params{"analyze": "yes"}, `"analyze"`},
		{"reclaim", strategy.Params{"need": "centers"}, `"need"`},
		{"reclaim", strategy.Params{"need": "space", "max_maintenance_work_mem": "10kB"}, `"max_maintenance_work_mem"`},
		{"reclaim", strategy.Params{"need": "space", "analyze": false}, ""},
		{"vacuum", strategy.Params{"analyze": false, "figures": []any{"pgvector_table_dead_tuples"}}, ""},
		{"vacuum", strategy.Params{"figures": "x"}, `"figures"`},
		{"ivfflat_retrain", strategy.Params{"min_lists": 10, "max_lists": 5000}, ""},
		{"ivfflat_retrain", strategy.Params{"min_lists": 0}, `"min_lists"`},
		{"ivfflat_retrain", strategy.Params{"max_lists": 40000}, `"max_lists"`},
		{"ivfflat_retrain", strategy.Params{"min_lists": 50, "max_lists": 10}, `"min_lists"`},
		{"ivfflat_retrain", strategy.Params{"min_lists": 1.5}, `"min_lists"`},
		{"tune_search", strategy.Params{"target_recall": 0.9, "scope": "role", "role": "app", "step": 10, "max": 200, "latency_budget": "50ms"}, ""},
		{"tune_search", strategy.Params{"target_recall": 1.5}, `"target_recall"`},
		{"tune_search", strategy.Params{"scope": "cluster"}, `"scope"`},
		{"tune_search", strategy.Params{"scope": "role"}, `"role"`},
		{"tune_search", strategy.Params{"role": "app"}, `"role"`},
		{"tune_search", strategy.Params{"step": 0}, `"step"`},
		{"tune_search", strategy.Params{"latency_budget": "fast"}, `"latency_budget"`},
		{"tune_search", strategy.Params{"iterative_scan": "relaxed_order", "max_scan_tuples": 40000, "max_probes": 100, "latency_budget": "100ms",
			"target_filtered_recall": 0.9, "max_short_ratio": 0.05}, ""},
		{"tune_search", strategy.Params{"iterative_scan": "on", "latency_budget": "100ms"}, `"iterative_scan"`},
		{"tune_search", strategy.Params{"iterative_scan": "strict_order"}, `"latency_budget"`},
		{"tune_search", strategy.Params{"iterative_scan": "strict_order", "latency_budget": "1s", "max_scan_tuples": -1}, `"max_scan_tuples"`},
		{"tune_search", strategy.Params{"iterative_scan": "relaxed_order", "latency_budget": "1s", "max_probes": 40000}, `"max_probes"`},
		{"tune_search", strategy.Params{"max_short_ratio": 2}, `"max_short_ratio"`},
		{"tune_search", strategy.Params{"target_filtered_recall": -0.1}, `"target_filtered_recall"`},
		{"analyze", strategy.Params{"table": "x"}, `"table": unknown`},
		{"hnsw_rebuild", strategy.Params{"m": 32, "ef_construction": 128, "target_recall": 0.9, "latency_budget": "20ms"}, ""},
		{"hnsw_rebuild", strategy.Params{"m": 1}, `"m"`},
		{"hnsw_rebuild", strategy.Params{"m": 64}, `"m": 64 is above max_m 48`},
		{"hnsw_rebuild", strategy.Params{"m": 64, "max_m": 64}, ""},
		{"hnsw_rebuild", strategy.Params{"ef_construction": 2000}, `"ef_construction"`},
		{"hnsw_rebuild", strategy.Params{"ef_construction": 500}, `"ef_construction": 500 is above max_ef_construction 400`},
		{"hnsw_rebuild", strategy.Params{"m": 32, "ef_construction": 40}, `"ef_construction": 40 is below 2 × m`},
		{"hnsw_rebuild", strategy.Params{"max_m": 32, "max_ef_construction": 40}, ""},
		{"hnsw_rebuild", strategy.Params{"m": 4, "max_ef_construction": 6}, `"max_ef_construction"`},
		{"hnsw_rebuild", strategy.Params{"target_recall": 0}, `"target_recall"`},
		{"hnsw_rebuild", strategy.Params{"lock_timeout": "1h"}, `"lock_timeout"`},
		{"hnsw_rebuild", strategy.Params{"lists": 10}, `"lists": unknown`},
		{"sql", strategy.Params{}, `"statements": required`},
		{"sql", strategy.Params{"statements": []any{stmt("SELECT $1", "indexrelname")}}, ""},
		{"sql", strategy.Params{"statements": []any{"DELETE FROM x"}}, `"statements[0]"`},
		{"sql", strategy.Params{"statements": []any{stmt("")}}, `"statements[0].sql"`},
		{"sql", strategy.Params{"statements": []any{map[string]any{"sql": "SELECT 1", "params": []any{}}}}, `"statements[0].params"`},
		{"sql", strategy.Params{"statements": []any{stmt("SELECT $1", 5)}}, `"statements[0].args`},
		{"sql", strategy.Params{"statements": []any{stmt("SELECT 1")}, "rollback": "x"}, `"rollback"`},
		{"sql", strategy.Params{"statements": []any{stmt("SELECT 1")}, "validate": map[string]any{"sql": "SELECT true", "min": "x"}}, `"validate.min"`},
	} {
		_, err := reg.Bind(c.strategy, c.params)
		switch {
		case c.want == "" && err != nil:
			t.Errorf("%s %v: unexpected error %v", c.strategy, c.params, err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s %v: err = %v, want it to contain %s", c.strategy, c.params, err, c.want)
		}
	}
}
