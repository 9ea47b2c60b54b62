package site_test

import (
	"os"
	"path/filepath"
	"testing"
)

// referencePath returns <module root>/../shared/reference/<name>, where CI keeps the
// reference data beside the clone, or skips the test when it is absent.
func referencePath(t *testing.T, name string) string {
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
