package webhook

import (
	"encoding/json"
	"errors"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"
)

func (h *handler) serveNotification(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	defer func() { h.m.intake.Observe(time.Since(start).Seconds()) }()

	switch h.auth.check(r) {
	case authMissing:
		w.Header().Set("WWW-Authenticate", h.auth.challenge)
		h.m.notification(outcomeUnauthorized)
		writeError(w, http.StatusUnauthorized, "", "credentials required")
		return
	case authWrong:
		h.m.notification(outcomeForbidden)
		h.logger.Warn("notification with wrong credentials refused", "remote", r.RemoteAddr)
		writeError(w, http.StatusForbidden, "", "wrong credentials")
		return
	}
	if !isJSON(r.Header.Get("Content-Type")) {
		h.m.notification(outcomeUnsupportedMedia)
		writeError(w, http.StatusUnsupportedMediaType, "", "Content-Type must be application/json")
		return
	}
	if r.ContentLength > h.maxBody {
		h.tooLarge(w)
		return
	}
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, h.maxBody))
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			h.tooLarge(w)
			return
		}
		h.m.notification(outcomeBadRequest)
		writeError(w, http.StatusBadRequest, "", "cannot read body: "+err.Error())
		return
	}
	n, err := Decode(body)
	if err != nil {
		h.m.notification(outcomeBadRequest)
		var pe *PayloadError
		if !errors.As(err, &pe) {
			pe = &PayloadError{Msg: err.Error()}
		}
		h.logger.Warn("malformed notification refused", "remote", r.RemoteAddr, "err", err)
		writeJSON(w, http.StatusBadRequest, pe)
		return
	}
	res, err := record(r.Context(), h.pool, h.hook, n.Alerts)
	if err != nil {
		h.m.alert(alertFailed, len(n.Alerts))
		var he *hookError
		if errors.As(err, &he) {
			h.m.notification(outcomeHookFailed)
			h.logger.Error("notification not recorded: hook failed", "group_key", n.GroupKey, "err", err)
			writeError(w, http.StatusInternalServerError, "", "notification not recorded; retry")
			return
		}
		h.m.notification(outcomeStoreUnavailable)
		h.logger.Error("notification not recorded: state store unavailable", "group_key", n.GroupKey, "err", err)
		w.Header().Set("Retry-After", "10")
		writeError(w, http.StatusServiceUnavailable, "", "state store unavailable; retry")
		return
	}
	h.m.notification(outcomeRecorded)
	h.m.alert(alertNew, len(res.New))
	h.m.alert(alertDuplicate, res.Duplicate)
	h.logger.Debug("notification recorded", "group_key", n.GroupKey, "status", n.Status,
		"alerts", len(n.Alerts), "new", len(res.New), "duplicate", res.Duplicate)
	writeJSON(w, http.StatusOK, map[string]any{"status": "recorded", "alerts": len(n.Alerts), "new": len(res.New)})
}

func (h *handler) tooLarge(w http.ResponseWriter) {
	h.m.notification(outcomeTooLarge)
	writeError(w, http.StatusRequestEntityTooLarge, "", "body larger than the limit of "+itoa(h.maxBody)+" bytes")
}

// isJSON accepts application/json with any parameters (Alertmanager sends no charset).
func isJSON(ct string) bool {
	mt, _, err := mime.ParseMediaType(ct)
	return err == nil && strings.EqualFold(mt, "application/json")
}

func writeError(w http.ResponseWriter, code int, field, msg string) {
	writeJSON(w, code, &PayloadError{Field: field, Msg: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	_ = json.NewEncoder(w).Encode(v)
}

func itoa(n int64) string {
	b, _ := json.Marshal(n)
	return string(b)
}
