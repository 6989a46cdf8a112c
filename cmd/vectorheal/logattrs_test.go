package main

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestLogNamesTheIndexOnce: a logger that carries index= and a call that gives it again write
// it once, the first value; other attributes, and those inside a group, pass as they are.
func TestLogNamesTheIndexOnce(t *testing.T) {
	var b bytes.Buffer
	log := slog.New(logOnce(slog.NewTextHandler(&b, &slog.HandlerOptions{
		ReplaceAttr: func(_ []string, a slog.Attr) slog.Attr {
			if a.Key == slog.TimeKey {
				return slog.Attr{}
			}
			return a
		}})))
	repair := log.With("repair", 7, "index", "public.items_idx")
	repair.With(slog.String("strategy", "reindex"), slog.String("index", "public.items_idx")).Info("maintenance", "index", "public.items_idx", "statement", "REINDEX")
	repair.Info("twice in one call", "target", "main", "target", "other")
	repair.WithGroup("g").Info("grouped", "index", "x")
	want := `level=INFO msg=maintenance repair=7 index=public.items_idx strategy=reindex statement=REINDEX
level=INFO msg="twice in one call" repair=7 index=public.items_idx target=main
level=INFO msg=grouped repair=7 index=public.items_idx g.index=x
`
	if got := b.String(); got != want {
		t.Errorf("got:\n%swant:\n%s", got, want)
	}
	if strings.Count(b.String(), " index=") != 3 {
		t.Errorf("index= repeated:\n%s", b.String())
	}
}
