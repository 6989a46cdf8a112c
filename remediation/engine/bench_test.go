package engine_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/vectorheal/vectorheal/remediation/engine"
	"github.com/vectorheal/vectorheal/webhook"
)

// BenchmarkQueueRepairs measures what queueing repairs costs the webhook: notifications of 100
// firing alerts each, recorded with no Hook (baseline) and with the engine's Hook, which
// matches each alert against the runbook and inserts a repairs row and a River job in the same
// transaction. No worker runs.
func BenchmarkQueueRepairs(b *testing.B) {
	const perNotification = 100
	for _, withHook := range []bool{false, true} {
		name := "record_only"
		if withHook {
			name = "record_and_queue"
		}
		b.Run(name, func(b *testing.B) {
			bu := setup(b)
			e := bu.engine(b, bu.parseRunbook(b, okRunbook), func(o *engine.Options) { o.Workers = false })
			o := webhook.Options{Pool: bu.state, AllowUnauthenticated: true}
			if withHook {
				o.Hook = e.Hook
			}
			h, err := webhook.NewHandler(o)
			if err != nil {
				b.Fatal(err)
			}
			start := time.Now()
			bodies := make([][]byte, b.N)
			for i := range bodies {
				alerts := make([]map[string]any, perNotification)
				for j := range alerts {
					alerts[j] = alert("VecTest", "firing", start, map[string]string{"n": fmt.Sprintf("%d-%d", i, j)})
				}
				bodies[i], _ = json.Marshal(map[string]any{"version": "4", "status": "firing", "receiver": "vectorheal",
					"groupKey": "{}:{}", "alerts": alerts})
			}
			b.ResetTimer()
			for i := range b.N {
				req := httptest.NewRequest(http.MethodPost, webhook.Path, bytes.NewReader(bodies[i]))
				req.Header.Set("Content-Type", "application/json")
				rec := httptest.NewRecorder()
				h.ServeHTTP(rec, req)
				if rec.Code != http.StatusOK {
					b.Fatalf("webhook answered %d: %s", rec.Code, rec.Body)
				}
			}
			b.StopTimer()
			b.ReportMetric(float64(b.N*perNotification)/b.Elapsed().Seconds(), "alerts/s")
			if withHook {
				var n int
				if err := bu.state.QueryRow(bu.ctx, `SELECT count(*) FROM repairs r JOIN river_job j ON j.id = r.job_id`).Scan(&n); err != nil || n != b.N*perNotification {
					b.Fatalf("%d repairs with jobs (%v), want %d", n, err, b.N*perNotification)
				}
			}
		})
	}
}
