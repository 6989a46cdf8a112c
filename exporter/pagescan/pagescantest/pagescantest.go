// Package pagescantest writes fuzz seed corpora made of the real pages of an index of a test
// cluster, in the file format of go test -fuzz.
package pagescantest

import (
	"context"

	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/vectorheal/vectorheal/exporter/pagescan"
	"github.com/vectorheal/vectorheal/internal/catalog"
)

// Pages returns every page of the relation relOID, concatenated.
func Pages(ctx context.Context, t testing.TB, q catalog.Querier, relOID uint32) []byte {
	t.Helper()
	var all []byte
	err := pagescan.Scan(ctx, pagescan.NewSQLReader(q, relOID, 0, pagescan.RawPageFunc), 0, func(_ uint32, p []byte) error {
		all = append(all, p...)
		return nil
	})
	if err != nil {
		t.Fatalf("read pages of %d: %v", relOID, err)
	}
	return all
}

// WriteSeed writes data as the seed testdata/fuzz/<target>/<name> of the calling package's
// directory, for a fuzz target that takes one []byte.
func WriteSeed(t testing.TB, target, name string, data []byte) {
	t.Helper()
	dir := filepath.Join("testdata", "fuzz", target)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	body := "go test fuzz v1\n[]byte(" + strconv.Quote(string(data)) + ")\n"
	if err := os.WriteFile(filepath.Join(dir, name), []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("wrote %s seed %s (%d pages)", target, name, len(data)/pagescan.PageSize)
}
