package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory/factorytest"
)

// TestItem7URLCredentialsRefused is issue 12 item 7: URLs with credentials in the
// config (factory.url, proxmox.url, mirror endpoints) or in --factory are refused with
// exit 2, a message naming the setting, and the secret never printed anywhere.
func TestItem7URLCredentialsRefused(t *testing.T) {
	t.Parallel()
	const secret = "s3cretPW"
	base := "version: 1\nprofiles:\n  - name: worker\n"
	tests := []struct {
		name, config, want string
	}{
		{"factory.url", base + "factory:\n  url: https://admin:" + secret + "@factory.example\n", "factory.url"},
		{"proxmox.url", base + "proxmox:\n  url: https://root:" + secret + "@pve.example:8006/api2/json\n", "proxmox.url"},
		{"mirror endpoint", base + "registries:\n  mirrors:\n    ghcr.io:\n      endpoint: http://u:" + secret + "@10.0.0.5:5010\n", "endpoint"},
		{"mirror endpoint without scheme", base + "registries:\n  mirrors:\n    ghcr.io:\n      endpoint: u:" + secret + "@10.0.0.5:5010\n", "endpoint"},
	}
	for _, tt := range tests {
		cfg := filepath.Join(t.TempDir(), "imgpipe.yaml")
		if err := os.WriteFile(cfg, []byte(tt.config), 0o644); err != nil {
			t.Fatal(err)
		}
		stdout, stderr, code := runImgpipe(t, nil, "resolve", "--config", cfg, "--talos", "v1.9.5", "-o", "json")
		if code != exitUsage || !strings.Contains(stderr, "credentials") || !strings.Contains(stderr, tt.want) {
			t.Errorf("resolve with credentials in %s = exit %d, stderr %q; want %d naming %s", tt.name, code, stderr, exitUsage, tt.want)
		}
		if strings.Contains(stdout+stderr, secret) {
			t.Errorf("resolve with credentials in %s printed the secret:\nstdout %q\nstderr %q", tt.name, stdout, stderr)
		}
	}

	_, lock := fakeSite(t, factorytest.Options{})
	stdout, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", t.TempDir(), "--factory", "https://admin:"+secret+"@127.0.0.1:1")
	if code != exitUsage || !strings.Contains(stderr, "--factory") || strings.Contains(stdout+stderr, secret) {
		t.Errorf("fetch --factory with credentials = exit %d, stderr %q; want %d naming --factory, no secret", code, stderr, exitUsage)
	}
}

// TestItem7SecretsRedactedInMessages: whatever reaches an error message or the -v log
// (at every level) goes through the same scrub: URL userinfo and the secrets the
// environment holds.
func TestItem7SecretsRedactedInMessages(t *testing.T) {
	t.Parallel()
	env := map[string]string{envFactoryPass: "fact0ryPW", "IMGPIPE_PROXMOX_TOKEN": "ci@pve!imgpipe=0a1b2c3d-tok"}
	var buf bytes.Buffer
	a := &app{stderr: &buf, getenv: func(k string) string { return env[k] }}
	log := slog.New(slog.NewTextHandler(&buf, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: a.redactAttr}))
	log.Debug("GET https://u:fact0ryPW@factory.example/x", "url", "https://admin:pw@pve:8006/api2/json")
	log.Info("token", "value", "PVEAPIToken=ci@pve!imgpipe=0a1b2c3d-tok")
	log.Error("failed", "err", os.ErrNotExist, "pw", "fact0ryPW")
	out := buf.String()
	for _, s := range []string{"fact0ryPW", "0a1b2c3d-tok", "admin:pw"} {
		if strings.Contains(out, s) {
			t.Errorf("-v log contains %q:\n%s", s, out)
		}
	}
	if !strings.Contains(out, "REDACTED") {
		t.Errorf("-v log = %q; want the secrets replaced by REDACTED", out)
	}
	if got := a.redact("dial https://a:b@h:1/x: refused"); strings.Contains(got, "a:b") {
		t.Errorf("redact(error) = %q; want the userinfo removed", got)
	}
}
