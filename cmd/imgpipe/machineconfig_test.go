package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMachineConfigCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "resolve", "--talos", "v1.12.x", "--lock", lock); code != 0 {
		t.Fatalf("resolve: exit %d: %s", code, stderr)
	}
	out, stderr, code := runImgpipe(t, nil, "machineconfig", "--lock", lock, "--profile", "gpu")
	if code != 0 {
		t.Fatalf("machineconfig --profile gpu: exit %d: %s", code, stderr)
	}
	for _, w := range []string{"install:", "nocloud-installer/", ":v1.12.11", "- name: nvidia_uvm", "bpf_jit_harden"} {
		if !strings.Contains(out, w) {
			t.Errorf("machineconfig --profile gpu: output lacks %q:\n%s", w, out)
		}
	}
	if !strings.Contains(stderr, "RuntimeClass nvidia") {
		t.Errorf("machineconfig --profile gpu: stderr lacks the GPU note: %q", stderr)
	}
	// Several profiles need --profile or --out-dir.
	if _, stderr, code := runImgpipe(t, nil, "machineconfig", "--lock", lock); code != 2 || !strings.Contains(stderr, "--out-dir") {
		t.Errorf("machineconfig without --profile: exit %d, %q; want 2 naming --out-dir", code, stderr)
	}
	outDir := filepath.Join(dir, "patches")
	if _, stderr, code := runImgpipe(t, nil, "machineconfig", "--lock", lock, "--out-dir", outDir); code != 0 {
		t.Fatalf("machineconfig --out-dir: exit %d: %s", code, stderr)
	}
	for _, p := range []string{"controlplane", "worker", "gpu"} {
		if _, err := os.Stat(filepath.Join(outDir, p+".patch.yaml")); err != nil {
			t.Errorf("machineconfig --out-dir: %v", err)
		}
	}
	if _, stderr, code := runImgpipe(t, nil, "machineconfig", "--lock", lock, "--profile", "nope"); code != 2 {
		t.Errorf("machineconfig --profile nope: exit %d (%s); want 2", code, stderr)
	}
	if _, _, code := runImgpipe(t, nil, "machineconfig", "--lock", filepath.Join(dir, "missing.json")); code != 2 {
		t.Errorf("machineconfig with missing lock: exit %d; want 2", code)
	}
}
