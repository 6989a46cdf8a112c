package webhook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"regexp"
	"strings"
	"time"

	"github.com/prometheus/alertmanager/template"
	"github.com/prometheus/common/model"
)

// Notification is a decoded, validated webhook payload.
type Notification struct {
	Version  string
	GroupKey string // informational only: its format changes across Alertmanager releases
	Receiver string
	Status   string
	// NotificationReason says why Alertmanager sent it ("first notification", "new alerts
	// added", "repeat interval elapsed", ...); Alertmanager 0.32 and later send it.
	NotificationReason string
	// RouteLabels are the labels of the route it came through (Alertmanager 0.34 and later).
	RouteLabels     map[string]string
	TruncatedAlerts uint64
	Alerts          []Alert // ID is zero until recorded
}

// PayloadError says what is wrong with a payload; Field is a JSON path such as
// "alerts[2].startsAt", empty when the document as a whole is wrong.
type PayloadError struct {
	Field string `json:"field,omitempty"`
	Msg   string `json:"error"`
	// Missing lists the fields of a version 4 notification the body lacks, when it lacks
	// several (a body made by a custom payload template).
	Missing []string `json:"missing,omitempty"`
}

func (e *PayloadError) Error() string {
	if e.Field == "" {
		return e.Msg
	}
	return e.Field + ": " + e.Msg
}

func payloadErr(field, format string, args ...any) *PayloadError {
	return &PayloadError{Field: field, Msg: fmt.Sprintf(format, args...)}
}

// envelope is Alertmanager's notify/webhook.Message: its fields beside template.Data are
// repeated here because importing that package would link Alertmanager's whole notification
// pipeline (Kafka, memberlist, OpenTelemetry exporters) into vectorheal. template.Data carries
// notification_reason (Alertmanager 0.32) and routeLabels (0.34); fields of later versions
// are accepted and ignored.
type envelope struct {
	*template.Data
	Version         string           `json:"version"`
	GroupKey        string           `json:"groupKey"`
	TruncatedAlerts uint64           `json:"truncatedAlerts"`
	Alerts          *template.Alerts `json:"alerts"`
}

// rawEnvelope is decoded only when envelope failed, to name the alert and field at fault.
type rawEnvelope struct {
	Alerts []json.RawMessage `json:"alerts"`
}

// fingerprintRE is what a fingerprint may look like: Alertmanager sends 16 hex digits; a
// little room is left for other senders, but nothing that could not be a fingerprint.
var fingerprintRE = regexp.MustCompile(`^[0-9A-Za-z_-]{1,64}$`)

// Decode parses and validates a version 4 webhook payload. A missing alert fingerprint is
// computed from the labels the way Alertmanager does.
func Decode(data []byte) (*Notification, error) {
	var env envelope
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&env); err != nil {
		if kind := jsonKind(data); kind != "" && kind != "object" {
			return nil, notANotification("expected an object, got JSON "+kind, []string{"version", "status", "alerts"})
		}
		return nil, locateError(data, err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, payloadErr("", "unexpected data after the JSON object")
	}
	if env.Data == nil {
		env.Data = &template.Data{}
	}
	if missing := missingFields(&env); len(missing) > 1 {
		what := "the body lacks " + strings.Join(missing, ", ")
		if kind := jsonKind(data); kind != "object" {
			what = "expected an object, got JSON " + kind
		}
		return nil, notANotification(what, missing)
	}
	switch env.Version {
	case "4":
	case "":
		return nil, payloadErr("version", "missing; this receiver takes Alertmanager webhook payload version 4")
	default:
		return nil, payloadErr("version", "unsupported version %q; this receiver takes version 4", env.Version)
	}
	if err := checkStatus("status", env.Status); err != nil {
		return nil, err
	}
	if env.Alerts == nil {
		return nil, payloadErr("alerts", "missing")
	}
	if len(*env.Alerts) == 0 {
		return nil, payloadErr("alerts", "empty; a notification carries at least one alert")
	}
	if strings.ContainsRune(env.Receiver, 0) || strings.ContainsRune(env.GroupKey, 0) {
		return nil, payloadErr("receiver", "receiver or groupKey contains a NUL character")
	}
	if strings.ContainsRune(env.NotificationReason, 0) {
		return nil, payloadErr("notification_reason", "contains a NUL character")
	}
	if err := checkText("routeLabels", env.RouteLabels); err != nil {
		return nil, err
	}
	routeLabels := map[string]string(env.RouteLabels)
	if routeLabels == nil {
		routeLabels = map[string]string{}
	}
	n := &Notification{
		Version: env.Version, GroupKey: env.GroupKey, Receiver: env.Receiver, Status: env.Status,
		NotificationReason: env.NotificationReason, RouteLabels: routeLabels, TruncatedAlerts: env.TruncatedAlerts,
		Alerts: make([]Alert, 0, len(*env.Alerts)),
	}
	for i, ta := range *env.Alerts {
		a, err := checkAlert(fmt.Sprintf("alerts[%d]", i), ta)
		if err != nil {
			return nil, err
		}
		a.Receiver, a.GroupKey = env.Receiver, env.GroupKey
		a.NotificationReason, a.RouteLabels = env.NotificationReason, routeLabels
		n.Alerts = append(n.Alerts, a)
	}
	return n, nil
}

// missingFields names the fields every version 4 notification has that env lacks.
func missingFields(env *envelope) []string {
	var out []string
	if env.Version == "" {
		out = append(out, "version")
	}
	if env.Status == "" {
		out = append(out, "status")
	}
	if env.Alerts == nil {
		out = append(out, "alerts")
	}
	return out
}

// notANotification explains a body that is not a version 4 notification at all: the usual
// cause is a custom payload template in the receiver's webhook_config (Alertmanager 0.32 and
// later), which replaces the notification with whatever the template renders.
func notANotification(what string, missing []string) *PayloadError {
	return &PayloadError{Missing: missing, Msg: "not an Alertmanager webhook notification (version 4): " + what +
		"; a custom payload template replaces the notification, so remove payload from the webhook_config that sends to vectorheal"}
}

// jsonKind names the kind of the JSON value data starts with, or "" when it is not JSON.
func jsonKind(data []byte) string {
	tok, err := json.NewDecoder(bytes.NewReader(data)).Token()
	if err != nil {
		return ""
	}
	switch tok := tok.(type) {
	case json.Delim:
		if tok == '[' {
			return "array"
		}
		return "object"
	case string:
		return "string"
	case float64:
		return "number"
	case bool:
		return "boolean"
	case nil:
		return "null"
	}
	return ""
}

func checkStatus(field, s string) error {
	switch s {
	case "firing", "resolved":
		return nil
	case "":
		return payloadErr(field, `missing; must be "firing" or "resolved"`)
	}
	return payloadErr(field, `%q is not "firing" or "resolved"`, s)
}

// checkText refuses NUL characters, which PostgreSQL cannot store in text or jsonb: such an
// alert would fail on every retry, so it is refused at once, naming the label.
func checkText(field string, kv map[string]string) error {
	for k, v := range kv {
		if strings.ContainsRune(k, 0) {
			return payloadErr(field, "a name contains a NUL character")
		}
		if strings.ContainsRune(v, 0) {
			return payloadErr(field+"."+k, "value contains a NUL character")
		}
	}
	return nil
}

// locateError turns a decoding error into one that names the field: a type error inside an
// alert names the alert's index, found by decoding the alerts one by one.
func locateError(data []byte, err error) error {
	var se *json.SyntaxError
	if errors.As(err, &se) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
		return jsonError("", err)
	}
	var raw rawEnvelope
	if json.Unmarshal(data, &raw) == nil {
		for i, ra := range raw.Alerts {
			var ta template.Alert
			if aerr := json.Unmarshal(ra, &ta); aerr != nil {
				return alertFieldError(fmt.Sprintf("alerts[%d]", i), ra, aerr)
			}
		}
	}
	return jsonError("", err)
}

func checkAlert(field string, ta template.Alert) (Alert, error) {
	if err := checkStatus(field+".status", ta.Status); err != nil {
		return Alert{}, err
	}
	if err := checkText(field+".labels", ta.Labels); err != nil {
		return Alert{}, err
	}
	if err := checkText(field+".annotations", ta.Annotations); err != nil {
		return Alert{}, err
	}
	if strings.ContainsRune(ta.GeneratorURL, 0) {
		return Alert{}, payloadErr(field+".generatorURL", "contains a NUL character")
	}
	if len(ta.Labels) == 0 {
		return Alert{}, payloadErr(field+".labels", "missing or empty; an alert is identified by its labels")
	}
	if ta.StartsAt.IsZero() {
		return Alert{}, payloadErr(field+".startsAt", "missing")
	}
	fp := ta.Fingerprint
	if fp == "" {
		ls := make(model.LabelSet, len(ta.Labels))
		for k, v := range ta.Labels {
			ls[model.LabelName(k)] = model.LabelValue(v)
		}
		fp = ls.Fingerprint().String()
	} else if !fingerprintRE.MatchString(fp) {
		return Alert{}, payloadErr(field+".fingerprint", "%q is not a fingerprint (hex digits expected)", truncate(fp, 80))
	}
	a := Alert{
		Fingerprint: fp, Status: ta.Status, StartsAt: ta.StartsAt,
		Labels: ta.Labels, Annotations: ta.Annotations, GeneratorURL: ta.GeneratorURL,
	}
	if a.Annotations == nil {
		a.Annotations = map[string]string{}
	}
	// Alertmanager sends 0001-01-01 for "no end yet"; keep that as the zero time.
	if ta.EndsAt.After(time.Time{}) {
		a.EndsAt = ta.EndsAt
	}
	return a, nil
}

// alertFieldError turns a decoding error of one alert into one that names the field: the
// alert is decoded again key by key to find the culprit, since time and map errors do not
// carry the field.
func alertFieldError(field string, raw json.RawMessage, err error) error {
	var keys map[string]json.RawMessage
	if json.Unmarshal(raw, &keys) != nil {
		return jsonError(field, err)
	}
	targets := map[string]func() any{
		"status": func() any { return new(string) }, "labels": func() any { return new(template.KV) },
		"annotations": func() any { return new(template.KV) }, "startsAt": func() any { return new(time.Time) },
		"endsAt": func() any { return new(time.Time) }, "generatorURL": func() any { return new(string) },
		"fingerprint": func() any { return new(string) },
	}
	for k, v := range keys {
		// encoding/json matches keys case-insensitively; so does this search.
		for name, mk := range targets {
			if strings.EqualFold(k, name) {
				if e := json.Unmarshal(v, mk()); e != nil {
					return payloadErr(field+"."+name, "%s", describeJSONError(e))
				}
			}
		}
	}
	return jsonError(field, err)
}

func jsonError(field string, err error) error {
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) && te.Field != "" {
		// Fields of the embedded template.Data come prefixed with its Go name.
		f := strings.TrimPrefix(te.Field, "Data.")
		if field != "" {
			f = field + "." + f
		}
		return payloadErr(f, "%s", describeJSONError(err))
	}
	if field == "" && errors.Is(err, io.EOF) {
		return payloadErr("", "empty body; a JSON object was expected")
	}
	return payloadErr(field, "%s", describeJSONError(err))
}

func describeJSONError(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	var pe *time.ParseError
	switch {
	case errors.As(err, &se):
		return fmt.Sprintf("malformed JSON at byte %d: %s", se.Offset, se.Error())
	case errors.As(err, &te):
		return fmt.Sprintf("expected %s, got JSON %s", typeDesc(te.Type), te.Value)
	case errors.As(err, &pe):
		return fmt.Sprintf("%q is not an RFC 3339 time", truncate(pe.Value, 80))
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "malformed JSON: unexpected end of input"
	}
	return truncate(err.Error(), 200)
}

// typeDesc names a Go type the way a JSON author thinks of it.
func typeDesc(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Map:
		return "an object of strings"
	case reflect.Struct:
		if t == reflect.TypeOf(time.Time{}) {
			return "an RFC 3339 time string"
		}
		return "an object"
	case reflect.Slice:
		return "an array"
	case reflect.Uint64, reflect.Int, reflect.Int64:
		return "a whole number"
	}
	return t.String()
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}
