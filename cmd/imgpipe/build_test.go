package main

import (
	"errors"
	"io/fs"
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

// TestItem18ResolveNeedsNoProxmoxToken is issue 12 item 18: `build --stages resolve`
// loads no secret it does not use. The Proxmox token (env or proxmox.tokenFile) is read
// when the upload stage runs, so a missing token file fails only a build that uploads.
func TestItem18ResolveNeedsNoProxmoxToken(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imgpipe.yaml")
	yaml := "version: 1\nprofiles:\n  - name: worker\nproxmox:\n  url: https://127.0.0.1:1/api2/json\n  tokenFile: " +
		filepath.Join(dir, "missing-token") + "\n  nodes: [pve1]\n  storage: local\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "imgpipe.lock.json")
	args := []string{"build", "--config", cfg, "--lock", lock, "--report", "", "--cache-dir", filepath.Join(dir, "cache"),
		"--stages", "resolve", "--talos", "v1.9.5", "-o", "json"}
	if _, stderr, code := runImgpipe(t, nil, args...); code != exitOK {
		t.Errorf("imgpipe build --stages resolve without a Proxmox token = exit %d; want 0\n%s", code, stderr)
	}
	if _, err := os.Stat(lock); err != nil {
		t.Errorf("build --stages resolve wrote no lock: %v", err)
	}
	args[len(args)-5] = "upload"
	if _, stderr, code := runImgpipe(t, nil, args...); code != exitUsage || !strings.Contains(stderr, "token") {
		t.Errorf("imgpipe build --stages upload without a Proxmox token = exit %d; want %d about the token\n%s", code, exitUsage, stderr)
	}
}

// TestBuildKeepWithoutSiteRefusedUpFront: a --keep that cannot be scoped to a site is a
// config error found before the first stage runs, not after resolve, verify, fetch and
// mirror have done their work: no lock is written and the exit is 2.
func TestBuildKeepWithoutSiteRefusedUpFront(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imgpipe.yaml")
	yaml := "version: 1\nprofiles:\n  - name: worker\nproxmox:\n  url: https://127.0.0.1:1/api2/json\n  nodes: [pve1]\n  storage: local\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	lock := filepath.Join(dir, "imgpipe.lock.json")
	args := []string{"build", "--config", cfg, "--lock", lock, "--report", "", "--cache-dir", filepath.Join(dir, "cache"),
		"--stages", "resolve,upload", "--keep", "2", "--talos", "v1.9.5", "-o", "json"}
	stdout, stderr, code := runImgpipe(t, nil, args...)
	if code != exitUsage || !strings.Contains(stderr, "site") {
		t.Errorf("imgpipe build --keep 2 without proxmox.site = exit %d; want %d naming proxmox.site\n%s", code, exitUsage, stderr)
	}
	if stdout != "" {
		t.Errorf("imgpipe build refused up front printed %q on stdout; want nothing", stdout)
	}
	if _, err := os.Stat(lock); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("imgpipe build refused up front still wrote the lock (stat: %v)", err)
	}
}
