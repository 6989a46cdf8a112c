package config

import (
	"os"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestLoadGood(t *testing.T) {
	c, err := Load("testdata/good.yml")
	if err != nil {
		t.Fatal(err)
	}
	if c.ListenAddress != ":9999" || c.StateStore.Schema != "vectorheal" {
		t.Errorf("listen %q schema %q", c.ListenAddress, c.StateStore.Schema)
	}
	if c.Exporter.Structure.Interval != 10*time.Minute || c.Exporter.Structure.MaxPagesPerSecond != 20000 || c.Exporter.Recall.Interval != 5*time.Minute || c.Exporter.Recall.K != 20 {
		t.Errorf("exporter = %+v", c.Exporter)
	}
	if s := c.Exporter.Structure; !s.Adaptive || s.Floor() != 2000 || s.LatencyFactor != 2 || s.AdjustInterval != 5*time.Second {
		t.Errorf("adaptive budget: adaptive %v, floor %g, factor %g, interval %s; want true, 2000, 2, 5s (defaults)",
			s.Adaptive, s.Floor(), s.LatencyFactor, s.AdjustInterval)
	}
	if c.Remediation.HistoryRetention != 30*24*time.Hour || c.Remediation.MaxConcurrentRepairs != 3 {
		t.Errorf("remediation = %+v", c.Remediation)
	}
	m := c.Exporter.CustomMetrics[0]
	if m.Type != "gauge" || m.ValueColumn != "value" || m.Interval != time.Minute {
		t.Errorf("custom metric defaults: %+v", m)
	}
	dsn, err := c.Targets[0].DSN.Resolve()
	if err != nil || dsn != "postgres://u@localhost/db" {
		t.Errorf("dsn from file = %q, %v", dsn, err)
	}
	t.Setenv("VH_TEST_STATE_DSN", "postgres://state")
	if s, err := c.StateStore.DSN.Resolve(); err != nil || s != "postgres://state" {
		t.Errorf("dsn from env = %q, %v", s, err)
	}
}

// TestErrors asserts the exact messages: file, line, key path and what is wrong.
func TestErrors(t *testing.T) {
	const base = "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n"
	cases := []struct {
		name, yaml, want string
	}{
		{"unknown top key", base + "listen_adress: x\n",
			`bad.yml:4: listen_adress: unknown key "listen_adress" (known keys: alertmanager, exporter, listen_address, remediation, state_store, targets, webhook)`},
		{"unknown nested key", base + "    includes: [x]\n",
			`bad.yml:4: targets[0].includes: unknown key "includes" (known keys: builds, dsn, exclude, include, max_concurrent_checks, max_connections, migrate_dsn, name, read_dsn, repair_dsn, standby)`},
		{"wrong type", base + "    max_connections: lots\n",
			`bad.yml:4: targets[0].max_connections: cannot use "lots" as an integer`},
		{"bad duration", base + "exporter:\n  recall:\n    interval: 5 minutes\n",
			`bad.yml:6: exporter.recall.interval: cannot use "5 minutes" as a duration (examples: 30s, 5m, 1h30m, 7d)`},
		{"timeout above interval", base + "exporter:\n  drift:\n    interval: 1m\n    timeout: 2m\n",
			`bad.yml:7: exporter.drift.timeout: 2m0s is longer than the interval 1m0s`},
		{"standby without dsn", base + "    standby: {max_lag: 30s}\n",
			`bad.yml:4: targets[0].standby.dsn: must be set (value, file or env)`},
		{"standby lag not positive", base + "    standby: {dsn: {env: X}, max_lag: -5s}\n",
			`bad.yml:4: targets[0].standby.max_lag: must be positive`},
		{"missing dsn", "targets:\n  - name: a\n",
			`bad.yml:2: targets[0].dsn: must be set (value, file or env), unless both read_dsn and repair_dsn are`},
		{"duplicate target", base + "  - name: a\n    dsn: {env: X}\n",
			`bad.yml:4: targets[1].name: target "a" is defined twice`},
		{"two secret sources", "targets:\n  - name: a\n    dsn: {value: x, env: Y}\n",
			`bad.yml:3: targets[0].dsn: give only one of value, file and env`},
		{"bad metric name", base + "exporter:\n  custom_metrics:\n    - {name: 'bad-name', help: h, sql: 'select 1'}\n",
			`bad.yml:6: exporter.custom_metrics[0].name: "bad-name" is not a valid Prometheus metric name`},
		{"unknown metric target", base + "exporter:\n  custom_metrics:\n    - name: m\n      help: h\n      sql: select 1\n      targets: [nope]\n",
			`bad.yml:9: exporter.custom_metrics[0].targets[0]: no target is named "nope"`},
		{"custom metric named like vectorheal's own", base + "exporter:\n  custom_metrics:\n    - {name: pgvector_recall_ratio, help: h, sql: 'select 1'}\n",
			`bad.yml:6: exporter.custom_metrics[0].name: "pgvector_recall_ratio": names starting with pgvector_ are vectorheal's own metrics`},
		{"custom label named target", base + "exporter:\n  custom_metrics:\n    - name: m\n      help: h\n      sql: select 1\n      label_columns: [kind, target]\n",
			`bad.yml:9: exporter.custom_metrics[0].label_columns[1]: "target" is the label vectorheal adds to every series itself`},
		{"custom label twice", base + "exporter:\n  custom_metrics:\n    - name: m\n      help: h\n      sql: select 1\n      label_columns: [kind, kind]\n",
			`bad.yml:9: exporter.custom_metrics[0].label_columns[1]: "kind" is given twice`},
		{"custom label is the value", base + "exporter:\n  custom_metrics:\n    - name: m\n      help: h\n      sql: select 1\n      value_column: n\n      label_columns: [n]\n",
			`bad.yml:10: exporter.custom_metrics[0].label_columns[0]: "n" is the value column`},
		{"bad url", base + "alertmanager:\n  url: localhost:9093\n",
			`bad.yml:5: alertmanager.url: "localhost:9093" is not an http(s) URL`},
		{"list expected", "targets: main\n",
			`bad.yml:1: targets: expected a list, got "main"`},
		{"syntax", "targets: [\n",
			`bad.yml:1: invalid YAML: did not find expected node content`},
		{"page budget negative", base + "exporter:\n  structure:\n    max_pages_per_second: -5\n",
			`bad.yml:6: exporter.structure.max_pages_per_second: -5 is not a number of pages per second (0 or more; 0 is no cap)`},
		{"page budget not a number", base + "exporter:\n  structure:\n    max_pages_per_second: .nan\n",
			`bad.yml:6: exporter.structure.max_pages_per_second: NaN is not a number of pages per second (0 or more; 0 is no cap)`},
		{"adaptive budget without a ceiling", base + "exporter:\n  structure:\n    adaptive: true\n",
			`bad.yml:6: exporter.structure.adaptive: needs max_pages_per_second above 0: the adaptive budget moves between min_pages_per_second and that ceiling`},
		{"adaptive floor above the ceiling", base + "exporter:\n  structure:\n    adaptive: true\n    max_pages_per_second: 1000\n    min_pages_per_second: 2000\n",
			`bad.yml:8: exporter.structure.min_pages_per_second: 2000 is above max_pages_per_second 1000`},
		{"adaptive floor negative", base + "exporter:\n  structure:\n    min_pages_per_second: -1\n",
			`bad.yml:6: exporter.structure.min_pages_per_second: -1 is not a number of pages per second (above 0; 0 is a tenth of max_pages_per_second)`},
		{"latency factor not above 1", base + "exporter:\n  structure:\n    latency_factor: 0.9\n",
			`bad.yml:6: exporter.structure.latency_factor: 0.9 is not a factor above 1 and at most 100 (the budget backs off when the application's latency exceeds its level before the scan times this factor)`},
		{"adjust interval too short", base + "exporter:\n  structure:\n    adjust_interval: 10ms\n",
			`bad.yml:6: exporter.structure.adjust_interval: 10ms is below 100ms: too few statements end in a window that short to judge their latency`},
		{"adjust interval beyond the timeout", base + "exporter:\n  structure:\n    adaptive: true\n    max_pages_per_second: 1000\n    timeout: 1m\n    adjust_interval: 2m\n",
			`bad.yml:9: exporter.structure.adjust_interval: 2m0s is not shorter than timeout 1m0s: the budget would never be judged during a scan`},
		{"latency bucket not positive", base + "exporter:\n  recall:\n    latency_buckets: [0.1, -1]\n",
			`bad.yml:6: exporter.recall.latency_buckets[1]: -1 is not a positive number of seconds`},
		{"latency buckets not increasing", base + "exporter:\n  recall:\n    latency_buckets: [0.1, 0.5, 0.5]\n",
			`bad.yml:6: exporter.recall.latency_buckets[2]: 0.5 is not above the previous bound 0.5 (bounds must increase)`},
		{"detail series not a bool", base + "exporter:\n  detail_series: sometimes\n",
			`bad.yml:5: exporter.detail_series: cannot use "sometimes" as a boolean (true or false)`},
		{"budget share above 1", base + "remediation:\n  budget:\n    share: 1.5\n",
			`bad.yml:6: remediation.budget.share: must be in (0, 1], got 1.5`},
		{"budget share not a number", base + "remediation:\n  budget:\n    share: .nan\n",
			`bad.yml:6: remediation.budget.share: must be in (0, 1], got NaN`},
		{"budget backoff max below base", base + "remediation:\n  budget:\n    backoff_base: 2h\n    backoff_max: 1h\n",
			`bad.yml:7: remediation.budget.backoff_max: must be at least backoff_base (2h0m0s), got 1h0m0s`},
		{"budget running limit negative", base + "remediation:\n  budget:\n    max_running_per_target: -1\n",
			`bad.yml:6: remediation.budget.max_running_per_target: must be positive, got -1`},
		{"empty", "", `bad.yml: file is empty`},
		{"no targets", "listen_address: ':1'\n", `bad.yml: targets: at least one target is required`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yml", []byte(tc.yaml))
			if err == nil {
				t.Fatalf("no error, want %s", tc.want)
			}
			if err.Error() != tc.want {
				t.Errorf("error\n got: %s\nwant: %s", err, tc.want)
			}
		})
	}
}

func TestSeveralErrorsAreAllReported(t *testing.T) {
	_, err := Parse("bad.yml", []byte("targets:\n  - name: a\n    dsn: {value: x}\n    bogus: 1\nremediation:\n  flap_max_repairs: -1\n"))
	if err == nil {
		t.Fatal("no error")
	}
	// strict decoding stops before validation, so only the decode error shows first
	if !strings.Contains(err.Error(), `bad.yml:4: targets[0].bogus: unknown key "bogus"`) {
		t.Errorf("got %v", err)
	}
	_, err = Parse("bad.yml", []byte("targets:\n  - name: a\n    dsn: {value: x}\nremediation:\n  flap_max_repairs: -1\n  circuit_breaker_failures: -2\n"))
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 2 || !strings.HasPrefix(lines[0], "bad.yml:5: remediation.flap_max_repairs") || !strings.HasPrefix(lines[1], "bad.yml:6: remediation.circuit_breaker_failures") {
		t.Errorf("got %q", lines)
	}
}

// TestLatencyBuckets: unset means none (native only) or, with exporter.detail_series, the
// detail buckets; a list given, [] included, is kept either way.
func TestLatencyBuckets(t *testing.T) {
	const base = "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n"
	for _, tc := range []struct {
		yaml string
		want []float64
	}{
		{base, []float64{}},
		{base + "exporter:\n  detail_series: true\n", DetailLatencyBuckets()},
		{base + "exporter:\n  detail_series: true\n  recall:\n    latency_buckets: []\n", []float64{}},
		{base + "exporter:\n  recall:\n    latency_buckets: []\n", []float64{}},
		{base + "exporter:\n  recall:\n    latency_buckets: [0.001, 0.01, 0.1, 1]\n", SmallLatencyBuckets()},
		{base + "exporter:\n  recall:\n    latency_buckets: [0.01, 0.1, 1]\n", []float64{0.01, 0.1, 1}},
	} {
		c, err := Parse("c.yml", []byte(tc.yaml))
		if err != nil {
			t.Fatal(err)
		}
		if got := c.Exporter.Recall.LatencyBuckets; got == nil || !slices.Equal(got, tc.want) {
			t.Errorf("%q: latency buckets %v, want %v", tc.yaml, got, tc.want)
		}
	}
}

func TestWatches(t *testing.T) {
	tg := Target{Include: []string{"public.*", "app.items_*"}, Exclude: []string{"*_ccnew*"}}
	for in, want := range map[string]bool{
		"public.x": true, "app.items_hnsw": true, "app.other": false, "public.x_ccnew": false, "public.x_ccnew1": false,
	} {
		s, i, _ := strings.Cut(in, ".")
		if got := tg.Watches(s, i); got != want {
			t.Errorf("Watches(%s) = %v, want %v", in, got, want)
		}
	}
}

func TestSecretFileMissing(t *testing.T) {
	_, err := Secret{File: "testdata/nope"}.Resolve()
	if err == nil || !os.IsNotExist(unwrapAll(err)) {
		t.Errorf("err = %v", err)
	}
}

func unwrapAll(err error) error {
	for {
		u, ok := err.(interface{ Unwrap() error })
		if !ok {
			return err
		}
		err = u.Unwrap()
	}
}

// TestDefaultRemediationIsValid: the defaults Load sets are the ones DefaultRemediation gives,
// and they pass the same validation; a zero Remediation does not.
func TestDefaultRemediationIsValid(t *testing.T) {
	c, err := Parse("x.yml", []byte("targets:\n  - name: a\n    dsn: {value: x}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if d := DefaultRemediation(); d != c.Remediation {
		t.Errorf("DefaultRemediation() = %+v, Load sets %+v", d, c.Remediation)
	}
	if err := DefaultRemediation().Check(); err != nil {
		t.Errorf("defaults refused: %v", err)
	}
	err = Remediation{}.Check()
	if err == nil || !strings.Contains(err.Error(), "remediation.max_concurrent_repairs: must be positive") {
		t.Errorf("zero Remediation: %v", err)
	}
}

func TestFilteredQueries(t *testing.T) {
	const base = "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\nexporter:\n  filtered_queries:\n"
	good := base + "    - name: by_category\n      index: items_emb\n      filters: [category]\n" +
		"      sql: SELECT id FROM items WHERE category = $2 ORDER BY emb <-> $1 LIMIT $3\n"
	c, err := Parse("good.yml", []byte(good))
	if err != nil {
		t.Fatal(err)
	}
	q := c.Exporter.FilteredQueries[0]
	if q.Schema != "public" || q.K != 10 || q.Samples != 10 || q.Interval != 5*time.Minute || q.Timeout != time.Minute || q.Params() != 3 {
		t.Errorf("defaults: %+v", q)
	}
	cases := []struct {
		name, yaml, want string
	}{
		{"two statements", base + "    - name: q\n      index: i\n      filters: [c]\n      sql: SELECT 1 FROM t WHERE c = $2 ORDER BY e <-> $1 LIMIT $3; DROP TABLE t\n",
			`bad.yml:9: exporter.filtered_queries[0].sql: must be a single statement: text follows the ';' at offset 55`},
		{"missing filter parameter", base + "    - name: q\n      index: i\n      filters: [c, d]\n      sql: SELECT 1 FROM t WHERE c = $2 ORDER BY e <-> $1 LIMIT $4\n",
			`bad.yml:9: exporter.filtered_queries[0].sql: does not use $3 (filter 2)`},
		{"extra parameter", base + "    - name: q\n      index: i\n      filters: [c]\n      sql: SELECT 1 FROM t WHERE c = $2 AND d = $5 ORDER BY e <-> $1 LIMIT $3\n",
			`bad.yml:9: exporter.filtered_queries[0].sql: uses $5, but the query takes only $1 … $3 ($1 the vector, $2 … $2 the filters in order, $3 k)`},
		{"not a select", base + "    - name: q\n      index: i\n      filters: [c]\n      sql: DELETE FROM t WHERE c = $2 AND e <-> $1 < $3\n",
			`bad.yml:9: exporter.filtered_queries[0].sql: must be a SELECT (or WITH … SELECT) query, not DELETE`},
		{"no filters", base + "    - name: q\n      index: i\n      sql: SELECT 1 FROM t ORDER BY e <-> $1 LIMIT $2\n",
			`bad.yml:6: exporter.filtered_queries[0].filters: at least one filter column is required`},
		{"bad name", base + "    - name: by category\n      index: i\n      filters: [c]\n      sql: SELECT 1 FROM t WHERE c = $2 ORDER BY e <-> $1 LIMIT $3\n",
			`bad.yml:6: exporter.filtered_queries[0].name: "by category" is not a plain name ([a-zA-Z_][a-zA-Z0-9_]*)`},
		{"samples above limit", base + "    - name: q\n      index: i\n      filters: [c]\n      samples: 5000\n      sql: SELECT 1 FROM t WHERE c = $2 ORDER BY e <-> $1 LIMIT $3\n",
			`bad.yml:9: exporter.filtered_queries[0].samples: 5000 is above the limit of 1000`},
		{"unknown target", base + "    - name: q\n      index: i\n      filters: [c]\n      targets: [b]\n      sql: SELECT 1 FROM t WHERE c = $2 ORDER BY e <-> $1 LIMIT $3\n",
			`bad.yml:9: exporter.filtered_queries[0].targets[0]: no target is named "b"`},
		{"unknown key", base + "    - name: q\n      index: i\n      filter: [c]\n",
			`bad.yml:8: exporter.filtered_queries[0].filter: unknown key "filter"`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yml", []byte(tc.yaml))
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("error = %v\nwant it to contain %s", err, tc.want)
			}
		})
	}
}

func TestCheckFilteredSQL(t *testing.T) {
	ok := []string{
		"SELECT id FROM items WHERE category = $2 ORDER BY emb <-> $1 LIMIT $3;",
		"with c as (select $2::int as v) select id from items, c where category = c.v order by emb <-> $1 limit $3",
		"SELECT id, ';' AS semi, 'it''s $9' FROM items /* $7; nested /* ; */ */ WHERE category = $2 -- $8;\n ORDER BY emb <-> $1 LIMIT $3",
		`SELECT "a;$4" FROM items WHERE tag = $q$ ; $5 $q$ AND category = $2 ORDER BY emb <-> $1 LIMIT $3`,
		`SELECT E'\'; $6' FROM items WHERE category = $2 ORDER BY emb <-> $1 LIMIT $3`,
	}
	for _, s := range ok {
		if err := CheckFilteredSQL(s, 3); err != nil {
			t.Errorf("%s: %v", s, err)
		}
	}
	bad := map[string]string{
		"SELECT 1 FROM t WHERE c = $2 ORDER BY e <-> $1 LIMIT $3; SELECT 2":   "single statement",
		"SELECT 'unterminated FROM t WHERE c = $2 ORDER BY e <-> $1 LIMIT $3": "unterminated string",
		"SELECT 1 /* open":                    "unterminated /* comment",
		"   ":                                 "holds no statement",
		"SELECT $1, $2":                       "does not use $3 (k, the LIMIT)",
		"SELECT $1, $2, $3, $10":              "uses $10",
		"UPDATE t SET c = $2, e = $1, k = $3": "not UPDATE",
	}
	for s, want := range bad {
		if err := CheckFilteredSQL(s, 3); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want %q", s, err, want)
		}
	}
}

// TestHorizonSettings: the xmin horizon ages default to the alert's, and a sub-second one,
// which would name or hold back every short transaction, is refused with its line.
func TestHorizonSettings(t *testing.T) {
	const base = "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n"
	c, err := Parse("ok.yml", []byte(base))
	if err != nil {
		t.Fatal(err)
	}
	if c.Exporter.XminHorizonMinAge != time.Minute || c.Remediation.HorizonMinAge != 3*time.Minute || c.Remediation.HorizonMinXIDs != 1_000_000 {
		t.Errorf("defaults: exporter %s, remediation %s / %d", c.Exporter.XminHorizonMinAge, c.Remediation.HorizonMinAge, c.Remediation.HorizonMinXIDs)
	}
	_, err = Parse("bad.yml", []byte(base+"exporter:\n  xmin_horizon_min_age: 500ms\nremediation:\n  horizon_min_age: 10ms\n  horizon_min_xids: -5\n"))
	if err == nil {
		t.Fatal("no error")
	}
	lines := strings.Split(err.Error(), "\n")
	if len(lines) != 3 || !strings.HasPrefix(lines[0], "bad.yml:5: exporter.xmin_horizon_min_age: 500ms is below 1s") ||
		!strings.HasPrefix(lines[1], "bad.yml:7: remediation.horizon_min_age: 10ms is below 1s") ||
		!strings.HasPrefix(lines[2], "bad.yml:8: remediation.horizon_min_xids: must be positive") {
		t.Errorf("got %q", lines)
	}
}
