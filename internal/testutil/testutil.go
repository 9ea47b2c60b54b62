// Package testutil holds the few helpers several packages' tests share: finding the
// shared reference data beside the clone, and seeding fuzz corpora from testdata.
// Only tests import it.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// ReferencePath returns <module root>/../shared/reference/<name>, where CI keeps the
// reference data beside the clone, or skips the test when it is absent.
func ReferencePath(t *testing.T, name string) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			break
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Skip("module root not found; skipping the comparison with shared/reference")
		}
		dir = parent
	}
	p := filepath.Join(dir, "..", "shared", "reference", name)
	if _, err := os.Stat(p); err != nil {
		t.Skipf("reference data %s not present (%v); skipping the comparison with shared/reference", p, err)
	}
	return p
}

// SeedFiles adds the content of every file matching the glob patterns to f's corpus.
func SeedFiles(f *testing.F, patterns ...string) {
	f.Helper()
	for _, pattern := range patterns {
		files, err := filepath.Glob(pattern)
		if err != nil {
			f.Fatal(err)
		}
		for _, file := range files {
			data, err := os.ReadFile(file)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(data)
		}
	}
}
