// Package pagescantest writes fuzz seed corpora made of the real pages of an index of a test
// cluster, in the file format of go test -fuzz, and reads them back for tests that need real
// pages without a database.
package pagescantest

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
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

// ReadSeed returns the data of the seed testdata/fuzz/<target>/<name> of the package
// directory dir ("" for the calling package's), as WriteSeed wrote it.
func ReadSeed(t testing.TB, dir, target, name string) []byte {
	t.Helper()
	path := filepath.Join(dir, "testdata", "fuzz", target, name)
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	body, ok := strings.CutPrefix(string(raw), "go test fuzz v1\n[]byte(")
	body, ok2 := strings.CutSuffix(strings.TrimRight(body, "\n"), ")")
	if !ok || !ok2 {
		t.Fatalf("%s: not a go test fuzz v1 seed of one []byte", path)
	}
	data, err := strconv.Unquote(body)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return []byte(data)
}

// Seeds lists the seed names of testdata/fuzz/<target> under dir, sorted.
func Seeds(t testing.TB, dir, target string) []string {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(dir, "testdata", "fuzz", target))
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range entries {
		if !e.IsDir() {
			out = append(out, e.Name())
		}
	}
	return out
}
