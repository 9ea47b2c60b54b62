package ghasim

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func touch(t *testing.T, paths ...string) {
	t.Helper()
	for _, p := range paths {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// TestArtifactRooting pins upload-artifact@v4's rooting, including the case that
// broke build.yml: two workspace files plus one file in RUNNER_TEMP root at the
// common "work" directory, so the files are NOT at the artifact's top level.
func TestArtifactRooting(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ws := filepath.Join(dir, "work", "repo", "repo")
	temp := filepath.Join(dir, "work", "_temp")
	touch(t, filepath.Join(ws, "matrix.yaml"), filepath.Join(ws, "imgpipe.lock.json"), filepath.Join(temp, "drift.md"),
		filepath.Join(ws, "out", "a.iso"), filepath.Join(ws, "out", "sub", "b.raw"), filepath.Join(ws, "out", ".hidden"))
	tests := []struct {
		name     string
		patterns []string
		root     string
		rel      []string
	}{
		{"files in workspace and temp", []string{filepath.Join(ws, "matrix.yaml"), filepath.Join(ws, "imgpipe.lock.json"), filepath.Join(temp, "drift.md")},
			filepath.Join(dir, "work"), []string{"_temp/drift.md", "repo/repo/imgpipe.lock.json", "repo/repo/matrix.yaml"}},
		{"two files in one directory", []string{filepath.Join(ws, "matrix.yaml"), filepath.Join(ws, "imgpipe.lock.json")},
			ws, []string{"imgpipe.lock.json", "matrix.yaml"}},
		{"one file", []string{filepath.Join(temp, "drift.md")}, temp, []string{"drift.md"}},
		{"a directory keeps its inner layout, hidden files left out", []string{filepath.Join(ws, "out")},
			filepath.Join(ws, "out"), []string{"a.iso", "sub/b.raw"}},
		{"a glob roots at its literal prefix", []string{filepath.Join(ws, "out", "*")},
			filepath.Join(ws, "out"), []string{"a.iso", "sub/b.raw"}},
		{"nothing matches", []string{filepath.Join(ws, "nope")}, "", nil},
	}
	for _, tt := range tests {
		files, root, err := ArtifactFiles(tt.patterns, false)
		if err != nil {
			t.Fatalf("%s: %v", tt.name, err)
		}
		var rel []string
		for _, f := range files {
			r, _ := filepath.Rel(root, f)
			rel = append(rel, filepath.ToSlash(r))
		}
		slices.Sort(rel)
		if root != tt.root || !slices.Equal(rel, tt.rel) {
			t.Errorf("%s: ArtifactFiles = root %q files %q; want root %q files %q", tt.name, root, rel, tt.root, tt.rel)
		}
	}
}
