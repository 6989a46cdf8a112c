package exporter

import (
	"context"
	"errors"
	"strings"
	"time"

	"github.com/vectorheal/vectorheal/internal/pgvector"
)

// kindExtension is the collector that reads the installed pgvector version.
const kindExtension = "extension"

// extension is the pgvector installed in one target's database.
type extension struct {
	datname string
	raw     string // extversion as the catalog holds it
	version pgvector.Version
	parsed  bool             // false: raw is not a version pgvector.ParseVersion reads
	issues  []pgvector.Issue // known issues of version
}

// readExtension reads the installed pgvector of t, outside t.mu (it queries the database), and
// keeps it on t. It returns nil when the extension is not installed or cannot be read.
func (e *Exporter) readExtension(ctx context.Context, t *target) *extension {
	start := time.Now()
	var ext extension
	// pgvector.Installed holds the query; the strategies' version gates read the same.
	in, err := pgvector.Installed(ctx, t.Pool)
	ext.datname, ext.raw = in.Datname, in.Raw
	missing := errors.Is(err, pgvector.ErrNotInstalled)
	if missing {
		err = nil
	}
	if err == nil && !missing {
		v, perr := pgvector.ParseVersion(ext.raw)
		ext.version, ext.parsed = v, perr == nil
		if ext.parsed {
			ext.issues = pgvector.Affecting(v)
		}
	}

	t.mu.Lock()
	defer t.mu.Unlock()
	t.record(kindExtension, 0, start, err)
	t.noteOutcome(kindExtension, "", err)
	switch {
	case err != nil:
		return t.extension // the version rarely changes: keep publishing the last one read
	case missing:
		t.extension = nil
		return nil
	}
	if t.extension == nil || t.extension.raw != ext.raw || t.extension.datname != ext.datname {
		t.logExtension(&ext)
	}
	t.extension = &ext
	return t.extension
}

// logExtension says once, when it is first read or changes, which pgvector a target runs and
// what vectorheal gates on it.
func (t *target) logExtension(ext *extension) {
	if !ext.parsed {
		t.logger.Warn("pgvector version not understood: known issues are not checked", "datname", ext.datname, "version", ext.raw)
		return
	}
	if len(ext.issues) == 0 {
		t.logger.Info("pgvector version", "datname", ext.datname, "version", ext.raw, "known_issues", 0)
		return
	}
	var ids, gates []string
	for _, i := range ext.issues {
		ids = append(ids, i.ID)
	}
	for _, g := range pgvector.Gates(ext.version) {
		gates = append(gates, string(g))
	}
	// Info, not Warn: it is a fact of the target, not a fault of vectorheal, and the
	// VectorhealPgvectorKnownIssue alert is where it is raised.
	t.logger.Info("pgvector version has known issues", "datname", ext.datname, "version", ext.raw,
		"known_issues", strings.Join(ids, ","), "gates", strings.Join(gates, ","))
}

// emit publishes the extension's version and its known issues; nothing when ext is nil.
func (ext *extension) emit(m emitter, targetName string) {
	if ext == nil {
		return
	}
	m.gauge("pgvector_extension_info", 1, targetName, ext.datname, ext.raw)
	for _, i := range ext.issues {
		m.gauge("pgvector_known_issue", 1, targetName, ext.datname, ext.raw, i.ID, i.Fixed.String(), i.GateList())
	}
}
