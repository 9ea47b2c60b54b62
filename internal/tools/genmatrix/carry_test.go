package main

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/imgpipe/imgpipe/compat"
)

// TestCarryFirstSeen: regenerating the matrix keeps the firstSeen refresh recorded
// (no reference source has it, and a site's soak counts from it).
func TestCarryFirstSeen(t *testing.T) {
	t.Parallel()
	out := filepath.Join(t.TempDir(), "matrix.yaml")
	old := "schemaVersion: 1\nextensions: {}\nreleases:\n  - version: v1.13.10\n    firstSeen: \"2026-12-02T05:17:00Z\"\n    extensions: {}\n"
	if err := os.WriteFile(out, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	m := &compat.Matrix{SchemaVersion: 1, Releases: []compat.Release{{Version: "v1.13.9"}, {Version: "v1.13.10"}}}
	if err := carryFirstSeen(m, out); err != nil {
		t.Fatal(err)
	}
	if m.Releases[0].FirstSeen != "" || m.Releases[1].FirstSeen != "2026-12-02T05:17:00Z" {
		t.Errorf("carryFirstSeen = %+v; want firstSeen kept for v1.13.10 only", m.Releases)
	}
	if err := carryFirstSeen(m, filepath.Join(t.TempDir(), "none.yaml")); err != nil {
		t.Errorf("carryFirstSeen(no current matrix) = %v; want nil", err)
	}
}
