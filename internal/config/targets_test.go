package config

import (
	"strings"
	"testing"
)

// TestTargetDSNs: each use of a target connects with its own DSN when given, else with dsn;
// dsn may be left out only when reading and repairing both have their own.
func TestTargetDSNs(t *testing.T) {
	c, err := Parse("ok.yml", []byte(`
targets:
  - name: split
    read_dsn: {value: 'postgres://exporter@db/app'}
    repair_dsn: {env: REPAIR_DSN}
  - name: one
    dsn: {value: 'postgres://vectorheal@db/app'}
    migrate_dsn: {file: /run/secrets/admin}
`))
	if err != nil {
		t.Fatal(err)
	}
	split, one := c.Targets[0], c.Targets[1]
	for _, tc := range []struct {
		t       Target
		use     Use
		want    Secret
		wantKey string
	}{
		{split, UseRead, Secret{Value: "postgres://exporter@db/app"}, "read_dsn"},
		{split, UseRepair, Secret{Env: "REPAIR_DSN"}, "repair_dsn"},
		{split, UseMigrate, Secret{}, "dsn"},
		{one, UseRead, Secret{Value: "postgres://vectorheal@db/app"}, "dsn"},
		{one, UseRepair, Secret{Value: "postgres://vectorheal@db/app"}, "dsn"},
		{one, UseMigrate, Secret{File: "/run/secrets/admin"}, "migrate_dsn"},
	} {
		if got := tc.t.DSNFor(tc.use); got != tc.want {
			t.Errorf("%s %s: %+v, want %+v", tc.t.Name, tc.use, got, tc.want)
		}
		if got := tc.t.DSNKey(tc.use); got != tc.wantKey {
			t.Errorf("%s %s: key %s, want %s", tc.t.Name, tc.use, got, tc.wantKey)
		}
	}
	if c.Exporter.PageReaderSchema != DefaultPageReaderSchema {
		t.Errorf("page_reader_schema defaults to %q", c.Exporter.PageReaderSchema)
	}
}

func TestTargetDSNErrors(t *testing.T) {
	for _, tc := range []struct{ name, yaml, want string }{
		{"read only", "targets:\n  - name: a\n    read_dsn: {value: x}\n",
			`bad.yml:2: targets[0].dsn: must be set (value, file or env), unless both read_dsn and repair_dsn are`},
		{"two sources", "targets:\n  - name: a\n    dsn: {value: x}\n    repair_dsn: {value: x, env: Y}\n",
			`bad.yml:4: targets[0].repair_dsn: give only one of value, file and env`},
		{"schema of the state store", "state_store:\n  schema: vh\ntargets:\n  - name: a\n    dsn: {value: x}\nexporter:\n  page_reader_schema: vh\n",
			`bad.yml:7: exporter.page_reader_schema: "vh" is also state_store.schema: the page readers' schema is granted to pg_monitor and must be a schema of its own`},
		{"default state schema", "targets:\n  - name: a\n    dsn: {value: x}\nexporter:\n  page_reader_schema: vectorheal\n",
			`bad.yml:5: exporter.page_reader_schema: "vectorheal" is also state_store.schema: the page readers' schema is granted to pg_monitor and must be a schema of its own`},
		{"not an identifier", "targets:\n  - name: a\n    dsn: {value: x}\nexporter:\n  page_reader_schema: 'a; drop'\n",
			`bad.yml:5: exporter.page_reader_schema: "a; drop" is not a plain identifier`},
		{"reserved", "targets:\n  - name: a\n    dsn: {value: x}\nexporter:\n  page_reader_schema: pg_pages\n",
			`bad.yml:5: exporter.page_reader_schema: "pg_pages": names starting with pg_ are reserved by PostgreSQL`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yml", []byte(tc.yaml))
			if err == nil || strings.TrimSpace(err.Error()) != tc.want {
				t.Errorf("error\n got: %v\nwant: %s", err, tc.want)
			}
		})
	}
}
