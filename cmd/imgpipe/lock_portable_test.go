package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	imgpipe "github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

// TestLockIsPortable: the same inputs resolved and fetched in two checkouts with two
// cache directories give byte-identical locks holding no local path.
func TestLockIsPortable(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	cfgText := "version: 1\nfactory:\n  url: " + f.URL() + "\nprofiles:\n  - name: worker\n    platform: nocloud\n    extensions:\n      - name: qemu-guest-agent\n"
	run := func(name string) ([]byte, []string) {
		dir := filepath.Join(t.TempDir(), name)
		cache := filepath.Join(t.TempDir(), name+"-cache")
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		cfg, matrix, lock := filepath.Join(dir, "imgpipe.yaml"), filepath.Join(dir, "matrix.yaml"), filepath.Join(dir, "imgpipe.lock.json")
		for p, data := range map[string][]byte{cfg: []byte(cfgText), matrix: imgpipe.MatrixYAML} {
			if err := os.WriteFile(p, data, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		for _, args := range [][]string{
			{"resolve", "--config", cfg, "--matrix", matrix, "--talos", "v1.9.5", "--lock", lock},
			{"schematic", "push", "--config", cfg, "--lock", lock},
			{"fetch", "--config", cfg, "--lock", lock, "--cache-dir", cache},
		} {
			if _, stderr, code := runImgpipe(t, nil, args...); code != 0 {
				t.Fatalf("%s %v = exit %d; stderr:\n%s", name, args, code, stderr)
			}
		}
		data, err := os.ReadFile(lock)
		if err != nil {
			t.Fatal(err)
		}
		return data, []string{dir, cache}
	}
	a, pathsA := run("a")
	b, pathsB := run("b")
	if !bytes.Equal(a, b) {
		t.Errorf("locks from two checkouts and caches differ:\n%s\n---\n%s", a, b)
	}
	for _, p := range append(pathsA, pathsB...) {
		if strings.Contains(string(a), p) || strings.Contains(string(a), filepath.Dir(p)) {
			t.Errorf("lock holds the local path %s:\n%s", p, a)
		}
	}
	if !strings.Contains(string(a), `"sha256": "sha256:`) || !strings.Contains(string(a), `"matrix": "matrix.yaml"`) {
		t.Errorf("lock lacks the fetched digests or the portable matrix name:\n%s", a)
	}
}
