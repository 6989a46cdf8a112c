package main

import (
	"context"
	"log/slog"
)

// onceHandler drops an attribute whose key a logger already carries, so each line names the
// index (or the repair, the target) once. The engine gives each repair a logger with its index
// and the strategies, which also run outside the engine, name the index again.
// Attributes inside a group are passed on as they are.
type onceHandler struct {
	next    slog.Handler
	keys    map[string]bool // top-level keys this logger already carries
	inGroup bool
}

func logOnce(h slog.Handler) slog.Handler { return &onceHandler{next: h, keys: map[string]bool{}} }

func (h *onceHandler) Enabled(ctx context.Context, l slog.Level) bool { return h.next.Enabled(ctx, l) }

func (h *onceHandler) Handle(ctx context.Context, r slog.Record) error {
	if h.inGroup {
		return h.next.Handle(ctx, r)
	}
	seen := map[string]bool{}
	out := slog.NewRecord(r.Time, r.Level, r.Message, r.PC)
	r.Attrs(func(a slog.Attr) bool {
		if !h.keys[a.Key] && !seen[a.Key] {
			seen[a.Key] = true
			out.AddAttrs(a)
		}
		return true
	})
	return h.next.Handle(ctx, out)
}

func (h *onceHandler) WithAttrs(as []slog.Attr) slog.Handler {
	if h.inGroup {
		return &onceHandler{next: h.next.WithAttrs(as), inGroup: true}
	}
	keys := make(map[string]bool, len(h.keys)+len(as))
	for k := range h.keys {
		keys[k] = true
	}
	var keep []slog.Attr
	for _, a := range as {
		if !keys[a.Key] {
			keys[a.Key] = true
			keep = append(keep, a)
		}
	}
	return &onceHandler{next: h.next.WithAttrs(keep), keys: keys}
}

func (h *onceHandler) WithGroup(name string) slog.Handler {
	return &onceHandler{next: h.next.WithGroup(name), inGroup: true}
}
