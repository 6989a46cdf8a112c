package measure

import (
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
)

func TestReading(t *testing.T) {
	failed := errors.New("pages cannot be read")
	r := Reading{
		"dead":   {V: 40, Source: "structure"},
		"live":   {V: 960, Source: "structure"},
		"recall": {Err: failed, Source: "probe"},
	}
	if v, err := r.Get("dead"); v != 40 || err != nil {
		t.Errorf("Get(dead) = %v, %v", v, err)
	}
	if _, err := r.Get("recall"); !errors.Is(err, failed) {
		t.Errorf("Get(recall) error = %v, want the reading's", err)
	}
	if _, err := r.Get("size"); err == nil || err.Error() != "figure size was not read" {
		t.Errorf("Get of a figure not read: %v", err)
	}
	if !r.Has("dead") || r.Has("recall") || r.Has("size") {
		t.Error("Has: a value, an error and a figure not read")
	}
	if got := r.Names(); !slices.Equal(got, []string{"dead", "live", "recall"}) {
		t.Errorf("Names = %v", got)
	}

	// With: r's values stand; what r lacks or failed to read comes from the other reading.
	later := Reading{"dead": {V: 45}, "recall": {V: 0.97, Source: "probe"}, "size": {V: 8192}}
	w := r.With(later)
	if v, _ := w.Get("dead"); v != 40 {
		t.Errorf("With kept dead = %v, want r's 40", v)
	}
	if v, err := w.Get("recall"); v != 0.97 || err != nil {
		t.Errorf("With recall = %v, %v, want the other reading's value in place of r's error", v, err)
	}
	if v, _ := w.Get("size"); v != 8192 {
		t.Errorf("With size = %v", v)
	}
	if r.Has("size") {
		t.Error("With changed its receiver")
	}
	if got := Reading(nil).With(later); len(got) != 3 {
		t.Errorf("nil.With = %v", got)
	}
}

func TestReadingLogValue(t *testing.T) {
	var b strings.Builder
	log := slog.New(slog.NewTextHandler(&b, nil))
	log.Info("x", "reading", Reading{
		"dead":   {V: 40, Source: "structure", Server: "standby"},
		"recall": {Err: errors.New("no rows"), Source: "probe", Server: "primary"},
		"bare":   {V: 1},
	})
	for _, want := range []string{`reading.dead="40 (structure on standby)"`, `reading.recall="error: no rows (probe on primary)"`, `reading.bare=1`} {
		if !strings.Contains(b.String(), want) {
			t.Errorf("log line %q lacks %s", b.String(), want)
		}
	}
}
