// Package testutil holds the few helpers several packages' tests share: finding the
// reference data copied into the module's testdata, and seeding fuzz corpora from testdata.
// Only tests import it.
package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

// ReferencePath returns <module root>/testdata/reference/<name>: the upstream facts
// tests check, copied from shared/reference by internal/tools/copyref. Tests never
// read ../shared (it is absent on GitHub), and a missing copy fails the test rather
// than skipping it.
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
			t.Fatal("module root (go.mod) not found above the test's directory")
		}
		dir = parent
	}
	p := filepath.Join(dir, "testdata", "reference", name)
	if _, err := os.Stat(p); err != nil {
		t.Fatalf("reference data %s: %v (copy it with go run ./internal/tools/copyref)", p, err)
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
