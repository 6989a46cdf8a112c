package webhook

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/vectorheal/vectorheal/internal/metricdoc"
)

// Outcomes of a notification, the values of vectorheal_webhook_notifications_total{outcome}.
const (
	outcomeRecorded         = "recorded"
	outcomeUnauthorized     = "unauthorized"
	outcomeForbidden        = "forbidden"
	outcomeBadRequest       = "bad_request"
	outcomeUnsupportedMedia = "unsupported_media_type"
	outcomeTooLarge         = "too_large"
	outcomeMethodNotAllowed = "method_not_allowed"
	outcomeStoreUnavailable = "store_unavailable"
	outcomeHookFailed       = "hook_failed"
)

// Outcomes of an alert, the values of vectorheal_webhook_alerts_total{outcome}.
const (
	alertNew       = "new"       // recorded for the first time and handed to the hook
	alertDuplicate = "duplicate" // recorded before (retry, HA peer) or repeated in one notification
	alertFailed    = "failed"    // part of a notification that could not be recorded
)

const (
	nameNotifications = "vectorheal_webhook_notifications_total"
	nameAlerts        = "vectorheal_webhook_alerts_total"
	nameIntake        = "vectorheal_webhook_intake_duration_seconds"
)

// Metrics describes the metrics the handler publishes.
func Metrics() []metricdoc.Metric {
	return []metricdoc.Metric{
		{Name: nameNotifications, Type: "counter", Labels: []string{"outcome"},
			Help: "Alertmanager notifications received, by outcome (recorded, unauthorized, forbidden, bad_request, unsupported_media_type, too_large, method_not_allowed, store_unavailable, hook_failed)."},
		{Name: nameAlerts, Type: "counter", Labels: []string{"outcome"},
			Help: "Alerts received in notifications, by outcome (new, duplicate, failed); alerts of a malformed notification are not counted."},
		{Name: nameIntake, Type: "histogram",
			Help: "Time from receiving a notification to answering it, including the durable write."},
	}
}

type metrics struct {
	notifications *prometheus.CounterVec
	alerts        *prometheus.CounterVec
	intake        prometheus.Histogram
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	doc := map[string]metricdoc.Metric{}
	for _, m := range Metrics() {
		doc[m.Name] = m
	}
	m := &metrics{
		notifications: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameNotifications, Help: doc[nameNotifications].Help}, doc[nameNotifications].Labels),
		alerts: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: nameAlerts, Help: doc[nameAlerts].Help}, doc[nameAlerts].Labels),
		intake: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name: nameIntake, Help: doc[nameIntake].Help,
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5}}),
	}
	// Start every known series at zero so rate() works from the first scrape.
	for _, o := range []string{outcomeRecorded, outcomeUnauthorized, outcomeForbidden, outcomeBadRequest,
		outcomeUnsupportedMedia, outcomeTooLarge, outcomeMethodNotAllowed, outcomeStoreUnavailable, outcomeHookFailed} {
		m.notifications.WithLabelValues(o)
	}
	for _, o := range []string{alertNew, alertDuplicate, alertFailed} {
		m.alerts.WithLabelValues(o)
	}
	if reg != nil {
		for _, c := range []prometheus.Collector{m.notifications, m.alerts, m.intake} {
			if err := reg.Register(c); err != nil {
				return nil, fmt.Errorf("webhook: register metrics: %w", err)
			}
		}
	}
	return m, nil
}

func (m *metrics) notification(outcome string) { m.notifications.WithLabelValues(outcome).Inc() }

func (m *metrics) alert(outcome string, n int) {
	if n > 0 {
		m.alerts.WithLabelValues(outcome).Add(float64(n))
	}
}
