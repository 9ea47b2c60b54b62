package site_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

const patchBase = "version: 1\nprofiles:\n  - name: worker\n"

func TestConfigPatchesValidation(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, yaml, want string
	}{
		{"both", patchBase + "patches:\n  - inline: {machine: {}}\n    file: a.yaml\n", "patches[0]: a patch needs exactly one of inline or file"},
		{"neither", patchBase + "    patches:\n      - {}\n", "profiles[0].patches[0]: a patch needs exactly one"},
		{"absolute", patchBase + "patches:\n  - file: /etc/passwd\n", "patches[0].file: patch file \"/etc/passwd\" must be a relative path"},
		{"escape", patchBase + "    patches:\n      - file: ../x.yaml\n", "profiles[0].patches[0].file:"},
		{"unknown key", patchBase + "patches:\n  - inlin: {}\n", "inlin"},
	}
	for _, tt := range tests {
		_, err := site.ParseConfig("imgpipe.yaml", []byte(tt.yaml))
		if !errors.Is(err, fail.ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: ParseConfig = %v; want a usage error containing %q", tt.name, err, tt.want)
		}
	}
}

func TestPatchSources(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "p"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "p", "w.yaml"), []byte("machine:\n  sysctls:\n    vm.swappiness: \"1\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	outside := filepath.Join(t.TempDir(), "secret.yaml")
	if err := os.WriteFile(outside, []byte("machine: {}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(outside, filepath.Join(dir, "p", "link.yaml")); err != nil {
		t.Fatal(err)
	}
	cfg, err := site.ParseConfig("imgpipe.yaml", []byte(patchBase+
		"    patches:\n      - file: p/w.yaml\n  - name: cp\n    patches:\n      - file: p/link.yaml\n"+
		"patches:\n  - inline:\n      machine:\n        time:\n          servers: [10.0.0.1]\n"))
	if err != nil {
		t.Fatal(err)
	}
	cfg.ResolvePaths(dir)
	srcs, err := cfg.PatchSources("worker")
	if err != nil {
		t.Fatal(err)
	}
	if len(srcs) != 2 || srcs[0].Name != "imgpipe.yaml patches[0].inline" || srcs[1].Name != "p/w.yaml" ||
		!strings.Contains(string(srcs[0].YAML), "- 10.0.0.1") || !strings.Contains(string(srcs[1].YAML), "vm.swappiness") {
		t.Errorf("PatchSources(worker) = %+v; want the site's inline patch, then p/w.yaml", srcs)
	}
	// A symlink out of the config's directory is refused like "..".
	if _, err := cfg.PatchSources("cp"); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("PatchSources(cp) with a symlink out of the config dir = %v; want a usage error", err)
	}
}
