package webhook_test

import (
	"bytes"
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/prometheus/alertmanager/template"

	"github.com/vectorheal/vectorheal/internal/store"
	"github.com/vectorheal/vectorheal/internal/testenv"
	"github.com/vectorheal/vectorheal/webhook"
)

const (
	benchSenders   = 100 // concurrent notifications per burst
	benchPerSender = 100 // alerts per notification
	benchConns     = 8   // state store connections, the same for the handler and the baseline
)

func benchStore(b *testing.B) *pgxpool.Pool {
	b.Helper()
	pg := testenv.SharedPostgres(b)
	ctx := context.Background()
	pool, err := store.Open(ctx, pg.CreateDatabase(b), schema, benchConns)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(pool.Close)
	if _, err := store.Migrate(ctx, pool, schema, slog.New(slog.DiscardHandler)); err != nil {
		b.Fatal(err)
	}
	return pool
}

// burstAlerts are the alerts sender s sends in burst n: distinct everywhere, so every one is new.
func burstAlerts(n, s int) []template.Alert {
	out := make([]template.Alert, benchPerSender)
	for i := range out {
		out[i] = alert("PgvectorHNSWDeadTuples", map[string]string{
			"burst": strconv.Itoa(n), "sender": strconv.Itoa(s), "indexrelname": "idx_" + strconv.Itoa(i)})
	}
	return out
}

// BenchmarkIntake posts bursts of benchSenders concurrent notifications of benchPerSender
// alerts each to the handler, and inserts the same rows straight into PostgreSQL with COPY from
// as many concurrent writers, in the same run. It reports alerts/s of both, their ratio, and the
// p50/p99 latency to the handler's 200; it fails if a row is missing.
func BenchmarkIntake(b *testing.B) {
	hookPool := benchStore(b)
	h, err := webhook.NewHandler(webhook.Options{Pool: hookPool, BearerToken: token, MaxBodyBytes: 8 << 20})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: benchSenders}}
	basePool := benchStore(b)

	var (
		latencies         []time.Duration
		hookTime, rawTime time.Duration
	)
	ctx := context.Background()
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		bodies := make([][]byte, benchSenders)
		rows := make([][][]any, benchSenders)
		for s := range bodies {
			as := burstAlerts(n, s)
			bodies[s] = payload(b, as...)
			rows[s] = copyRows(as)
		}

		// Through the handler.
		lat := make([]time.Duration, benchSenders)
		start := time.Now()
		var wg sync.WaitGroup
		for s := range bodies {
			wg.Add(1)
			go func() {
				defer wg.Done()
				t0 := time.Now()
				code, err := postWith(client, srv.URL, bodies[s])
				lat[s] = time.Since(t0)
				if err != nil || code != http.StatusOK {
					b.Errorf("sender %d: status %d, %v", s, code, err)
				}
			}()
		}
		wg.Wait()
		hookTime += time.Since(start)
		latencies = append(latencies, lat...)

		// Straight into PostgreSQL.
		start = time.Now()
		for s := range rows {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if _, err := basePool.CopyFrom(ctx, pgx.Identifier{"alerts"}, copyColumns, pgx.CopyFromRows(rows[s])); err != nil {
					b.Errorf("copy: %v", err)
				}
			}()
		}
		wg.Wait()
		rawTime += time.Since(start)
	}
	b.StopTimer()

	want := b.N * benchSenders * benchPerSender
	for name, p := range map[string]*pgxpool.Pool{"handler": hookPool, "baseline": basePool} {
		if got := countRows(b, p); got != want {
			b.Fatalf("%s: %d rows, want %d: alerts lost", name, got, want)
		}
	}
	slices.Sort(latencies)
	pct := func(q float64) float64 { return latencies[int(q*float64(len(latencies)-1))].Seconds() * 1000 }
	hookRate := float64(want) / hookTime.Seconds()
	rawRate := float64(want) / rawTime.Seconds()
	b.ReportMetric(hookRate, "alerts/s")
	b.ReportMetric(rawRate, "baseline-alerts/s")
	b.ReportMetric(hookRate/rawRate, "ratio")
	b.ReportMetric(pct(0.5), "p50-ms")
	b.ReportMetric(pct(0.99), "p99-ms")
}

var copyColumns = []string{"fingerprint", "status", "starts_at", "alertname", "labels", "annotations",
	"generator_url", "receiver", "group_key"}

func copyRows(as []template.Alert) [][]any {
	out := make([][]any, len(as))
	for i, a := range as {
		out[i] = []any{fingerprint(a.Labels), a.Status, a.StartsAt, a.Labels["alertname"],
			map[string]string(a.Labels), map[string]string(a.Annotations), a.GeneratorURL, "vectorheal", `{}:{alertname="X"}`}
	}
	return out
}

func postWith(c *http.Client, url string, body []byte) (int, error) {
	req, err := http.NewRequest(http.MethodPost, url+webhook.Path, bytes.NewReader(body))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := c.Do(req)
	if err != nil {
		return 0, err
	}
	resp.Body.Close()
	return resp.StatusCode, nil
}

// BenchmarkIntakeOne posts one notification of benchPerSender new alerts at a time: the
// latency of a notification that does not queue behind others.
func BenchmarkIntakeOne(b *testing.B) {
	pool := benchStore(b)
	h, err := webhook.NewHandler(webhook.Options{Pool: pool, BearerToken: token})
	if err != nil {
		b.Fatal(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	bodies := make([][]byte, b.N)
	for n := range bodies {
		bodies[n] = payload(b, burstAlerts(n, 0)...)
	}
	b.ResetTimer()
	for n := 0; n < b.N; n++ {
		if code, err := postWith(srv.Client(), srv.URL, bodies[n]); err != nil || code != http.StatusOK {
			b.Fatalf("status %d, %v", code, err)
		}
	}
	b.StopTimer()
	if got := countRows(b, pool); got != b.N*benchPerSender {
		b.Fatalf("%d rows, want %d", got, b.N*benchPerSender)
	}
}
