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

// TestMachineConfigOutDirAllOrNothing (issue 12 item 20): when one file cannot be
// written, none is: before, controlplane.patch.yaml landed and worker failed.
func TestMachineConfigOutDirAllOrNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "resolve", "--talos", "v1.12.x", "--lock", lock); code != 0 {
		t.Fatalf("resolve: exit %d: %s", code, stderr)
	}
	outDir := filepath.Join(dir, "patches")
	// A directory where worker's patch goes: that one write must fail.
	if err := os.MkdirAll(filepath.Join(outDir, "worker.patch.yaml"), 0o755); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runImgpipe(t, nil, "machineconfig", "--lock", lock, "--out-dir", outDir)
	if code == 0 {
		t.Fatalf("machineconfig --out-dir with a directory in the way: exit 0; want an error")
	}
	entries, err := os.ReadDir(outDir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "worker.patch.yaml" {
			t.Errorf("machineconfig --out-dir failed (%s) but left %s behind", strings.TrimSpace(stderr), e.Name())
		}
	}
}

// TestMachineConfigInvalidPatch: a patch Talos refuses exits 2 naming profile and field.
func TestMachineConfigInvalidPatch(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imgpipe.yaml")
	if err := os.WriteFile(cfg, []byte(`version: 1
profiles:
  - name: worker
    extensions: [{name: qemu-guest-agent}]
    taints:
      dedicated: "true:Bogus"
`), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "resolve", "-c", cfg, "--talos", "v1.12.x", "--lock", lock); code != 0 {
		t.Fatalf("resolve: exit %d: %s", code, stderr)
	}
	stdout, stderr, code := runImgpipe(t, nil, "machineconfig", "-c", cfg, "--lock", lock, "--profile", "worker")
	if code != 2 || !strings.Contains(stderr, "profile worker") || !strings.Contains(stderr, "node taints") || stdout != "" {
		t.Errorf("machineconfig with a bad taint: exit %d, stdout %q, stderr %q; want 2 naming profile worker and node taints", code, stdout, stderr)
	}
}

// TestMachineConfigExamplePatches: the example config's patch files are read relative
// to the config and merged.
func TestMachineConfigExamplePatches(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join("..", "..", "testdata", "imgpipe.yaml")
	lock := filepath.Join(dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "resolve", "-c", cfg, "--talos", "v1.12.x", "--lock", lock); code != 0 {
		t.Fatalf("resolve: exit %d: %s", code, stderr)
	}
	out, stderr, code := runImgpipe(t, nil, "machineconfig", "-c", cfg, "--lock", lock, "-p", "controlplane")
	if code != 0 {
		t.Fatalf("machineconfig: exit %d: %s", code, stderr)
	}
	for _, w := range []string{"oidc-issuer-url:", "kind: RegistryMirrorConfig", "merged with: imgpipe.yaml patches[0].inline, patches/controlplane-apiserver.yaml"} {
		if !strings.Contains(out, w) {
			t.Errorf("machineconfig -p controlplane lacks %q:\n%s", w, out)
		}
	}
}
