package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBuildFirstRunWithFactoryCredentials: the first build of a self-hosted factory's
// site has factory credentials in the environment but no lock yet; building the
// verifier's keychain must use the config's factory rather than dereference the lock.
func TestBuildFirstRunWithFactoryCredentials(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imgpipe.yaml")
	yaml := "version: 1\nfactory:\n  url: http://127.0.0.1:1\nprofiles:\n  - name: worker\n    extensions:\n      - name: qemu-guest-agent\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{envFactoryUser: "ci", envFactoryPass: "s3cret-pw"}
	args := []string{"build", "--config", cfg, "--lock", filepath.Join(dir, "imgpipe.lock.json"), "--report", "",
		"--cache-dir", filepath.Join(dir, "cache"), "--stages", "resolve,verify", "--talos", "v1.12.x", "--dry-run", "-o", "json"}
	if _, stderr, code := runImgpipe(t, env, args...); code != exitOK {
		t.Errorf("imgpipe build --dry-run with factory credentials and no lock = exit %d; want 0\n%s", code, stderr)
	}
}

// TestBuildFactoryOverride: `build --factory URL` resolves against that factory: the
// lock the report carries names it in every derived reference.
func TestBuildFactoryOverride(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := []string{"build", "--factory", "http://127.0.0.1:1", "--lock", filepath.Join(dir, "imgpipe.lock.json"), "--report", "",
		"--cache-dir", filepath.Join(dir, "cache"), "--stages", "resolve", "--talos", "v1.12.x", "--dry-run", "-o", "json"}
	stdout, stderr, code := runImgpipe(t, nil, args...)
	if code != exitOK {
		t.Fatalf("imgpipe build --factory --dry-run = exit %d; want 0\n%s", code, stderr)
	}
	if strings.Contains(stdout, "factory.talos.dev") || !strings.Contains(stdout, "127.0.0.1:1/nocloud-installer/") || !strings.Contains(stdout, "http://127.0.0.1:1/image/") {
		t.Errorf("build --factory: report does not use the factory everywhere:\n%s", stdout)
	}
}
