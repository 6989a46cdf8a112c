package config

import (
	"strings"
	"testing"
)

func TestBuildsErrors(t *testing.T) {
	const base = "targets:\n  - name: a\n    dsn: {value: 'postgres://x'}\n    builds:\n"
	cases := []struct{ name, yaml, want string }{
		{"negative budget", base + "      free_space_bytes: -1\n",
			`bad.yml:5: targets[0].builds.free_space_bytes: must not be negative, got -1`},
		{"budget and query", base + "      free_space_bytes: 100\n      free_space_query: node_filesystem_avail_bytes\n      prometheus_url: http://prom:9090\n",
			`bad.yml:6: targets[0].builds.free_space_query: give only one of free_space_bytes and free_space_query`},
		{"query without prometheus", base + "      free_space_query: node_filesystem_avail_bytes\n",
			`bad.yml:4: targets[0].builds.prometheus_url: must be set: free_space_query needs the Prometheus that answers it`},
		{"prometheus without query", base + "      prometheus_url: http://prom:9090\n",
			`bad.yml:5: targets[0].builds.prometheus_url: is set but free_space_query is not: nothing would be asked`},
		{"bad prometheus url", base + "      free_space_query: x\n      prometheus_url: prom:9090\n",
			`bad.yml:6: targets[0].builds.prometheus_url: "prom:9090" is not an http(s) URL`},
		{"reserve without source", base + "      reserve_bytes: 1000\n",
			`bad.yml:5: targets[0].builds.reserve_bytes: needs free_space_bytes or free_space_query: a reserve of unknown free space checks nothing`},
		{"workers out of range", base + "      max_parallel_workers: 2000\n",
			`bad.yml:5: targets[0].builds.max_parallel_workers: must be 0 to 1024 (PostgreSQL's range), got 2000`},
		{"unknown key", base + "      free_space: 10\n",
			`bad.yml:5: targets[0].builds.free_space: unknown key "free_space" (known keys: free_space_bytes, free_space_query, max_parallel_workers, prometheus_url, reserve_bytes)`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := Parse("bad.yml", []byte(tc.yaml))
			if err == nil || err.Error() != tc.want {
				t.Errorf("error\n got: %v\nwant: %s", err, tc.want)
			}
		})
	}
}

func TestBuildsParsed(t *testing.T) {
	c, err := Parse("good.yml", []byte(strings.Join([]string{
		"targets:",
		"  - name: a",
		"    dsn: {value: 'postgres://x'}",
		"    builds:",
		"      free_space_query: 'node_filesystem_avail_bytes{mountpoint=\"/var/lib/postgresql\"}'",
		"      prometheus_url: http://prom:9090",
		"      reserve_bytes: 1073741824",
		"      max_parallel_workers: 0",
		"  - name: b",
		"    dsn: {value: 'postgres://y'}",
	}, "\n")))
	if err != nil {
		t.Fatal(err)
	}
	a, b := c.Targets[0].Builds, c.Targets[1].Builds
	if !a.HasFreeSpace() || a.ReserveBytes != 1<<30 || a.MaxParallelWorkers == nil || *a.MaxParallelWorkers != 0 || a.PrometheusURL != "http://prom:9090" {
		t.Errorf("builds of a: %+v", a)
	}
	if b.HasFreeSpace() || b.MaxParallelWorkers != nil {
		t.Errorf("builds of b, none configured: %+v", b)
	}
}
