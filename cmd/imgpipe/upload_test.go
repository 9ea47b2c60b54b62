package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

const uploadTestSchematic = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"

// proxmoxSite writes a lock whose profile has a cached ISO and qcow2 disk image,
// and an imgpipe.yaml pointing at a fake PVE (CA pinned via caFile when withCA).
func proxmoxSite(t *testing.T, srv *pvetest.Server, withCA bool) string {
	t.Helper()
	dir := t.TempDir()
	iso := bytes.Repeat([]byte("talos-iso "), 300<<10)
	disk := bytes.Repeat([]byte("qcow2 "), 200<<10)
	write := func(name string, b []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	sum := func(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
	// imgpipe fetch keeps downloads in its cache by digest; the lock names only the digest.
	cached := func(b []byte) string {
		p := factory.Cache{Dir: filepath.Join(dir, "cache")}.BlobPath(sum(b))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	base := "https://factory.example/image/" + uploadTestSchematic + "/v1.9.5/"
	lock := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.5", Factory: "https://factory.example", Profiles: []site.Profile{{
		Name: "worker", Platform: "nocloud", Arch: "amd64", Schematic: site.Schematic{ID: uploadTestSchematic},
		Extensions: []site.Extension{{Name: "siderolabs/qemu-guest-agent", Version: "9.2.0"}},
		ISO:        base + "nocloud-amd64.iso", DiskImage: base + "nocloud-amd64.qcow2",
		Artifacts: []site.Artifact{
			{Kind: "iso", URL: base + "nocloud-amd64.iso", File: cached(iso), Size: int64(len(iso)), SHA256: sum(iso)},
			{Kind: "disk", URL: base + "nocloud-amd64.qcow2", File: cached(disk), Size: int64(len(disk)), SHA256: sum(disk)},
		},
	}}}
	if err := site.WriteLock(filepath.Join(dir, "imgpipe.lock.json"), lock); err != nil {
		t.Fatal(err)
	}
	ca := ""
	if withCA {
		ca = "  caFile: " + write("pve-ca.pem", srv.CertPEM()) + "\n"
	}
	cfg := fmt.Sprintf("version: 1\nprofiles:\n  - name: worker\nproxmox:\n  url: %s\n%s  nodes: [pve1]\n  storage: local\n  isoMethod: upload\n", srv.URL, ca)
	write("imgpipe.yaml", []byte(cfg))
	return dir
}

func runUpload(t *testing.T, dir string, env map[string]string, args ...string) (int, string, string) {
	t.Helper()
	var out, errb bytes.Buffer
	full := append([]string{"--config", filepath.Join(dir, "imgpipe.yaml"), "upload"}, args...)
	full = append(full, "--lock", filepath.Join(dir, "imgpipe.lock.json"), "--cache-dir", filepath.Join(dir, "cache"))
	code := run(context.Background(), full, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return code, out.String(), errb.String()
}

func TestUploadCommand(t *testing.T) {
	t.Parallel()
	srv := pvetest.New()
	defer srv.Close()
	dir := proxmoxSite(t, srv, true)
	env := map[string]string{proxmox.TokenEnv: srv.Token()}

	for i, want := range []string{proxmox.ActionUploaded, proxmox.ActionSkipped} {
		code, out, stderr := runUpload(t, dir, env, "iso", "-o", "json", "-v")
		if code != 0 {
			t.Fatalf("run %d: imgpipe upload iso = %d; stderr: %s", i, code, stderr)
		}
		var rep uploadReport
		if err := json.Unmarshal([]byte(out), &rep); err != nil {
			t.Fatalf("run %d: decoding %q: %v", i, out, err)
		}
		if rep.What != "iso" || len(rep.Results) != 1 || rep.Results[0].Action != want {
			t.Errorf("run %d: report %+v; want one %q", i, rep, want)
		}
		if strings.Contains(stderr+out, srv.Secret()) {
			t.Errorf("run %d: output contains the token secret", i)
		}
		if i == 0 && !strings.Contains(stderr, "uploading talos_default_worker_v1.9.5_376567988ad3_nocloud-amd64.iso to pve1: 100%") {
			t.Errorf("run %d: stderr %q; want plain progress lines", i, stderr)
		}
	}

	code, out, stderr := runUpload(t, dir, env, "template", "--dry-run")
	if code != 0 || !strings.Contains(out, "would-create") || len(srv.VMs()) != 0 {
		t.Errorf("upload template --dry-run = %d, %q, %d VMs (stderr %s); want 0, would-create, no VM", code, out, len(srv.VMs()), stderr)
	}
	code, out, stderr = runUpload(t, dir, env, "template", "-o", "yaml")
	if code != 0 || !strings.Contains(out, "action: created") || len(srv.VMs()) != 1 {
		t.Errorf("upload template = %d, %q, %d VMs (stderr %s); want 0, created, one template", code, out, len(srv.VMs()), stderr)
	}
}

func TestUploadCommandErrors(t *testing.T) {
	t.Parallel()
	srv := pvetest.New()
	defer srv.Close()
	withCA := proxmoxSite(t, srv, true)
	noCA := proxmoxSite(t, srv, false)
	good := map[string]string{proxmox.TokenEnv: srv.Token()}
	tokenFile := filepath.Join(t.TempDir(), "token")
	if err := os.WriteFile(tokenFile, []byte("PVEAPIToken="+srv.Token()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		dir      string
		env      map[string]string
		args     []string
		wantCode int
		wantErr  string
	}{
		{"no token", withCA, nil, []string{"iso"}, exitUsage, "IMGPIPE_PROXMOX_TOKEN"},
		{"malformed token", withCA, map[string]string{proxmox.TokenEnv: "root@pam=" + srv.Secret()}, []string{"iso"}, exitUsage, "user@realm!tokenid"},
		{"wrong secret", withCA, map[string]string{proxmox.TokenEnv: srv.TokenID() + "=nope"}, []string{"iso"}, exitOperational, "refused the API token"},
		{"unknown what", withCA, good, []string{"vm"}, exitUsage, "use iso or template"},
		{"unknown profile", withCA, good, []string{"iso", "--profile", "gpu"}, exitUsage, "gpu"},
		{"self-signed without CA", noCA, good, []string{"iso"}, exitOperational, "certificate"},
		{"--proxmox-ca", noCA, good, []string{"iso", "--dry-run", "--proxmox-ca", filepath.Join(withCA, "pve-ca.pem")}, 0, ""},
		{"--insecure", noCA, good, []string{"iso", "--dry-run", "--insecure"}, 0, "TLS verification of the Proxmox API is off"},
		{"bad --keep", withCA, good, []string{"iso", "--keep", "-3"}, exitUsage, "--keep"},
		{"--keep without proxmox.site", withCA, good, []string{"iso", "--keep", "1"}, exitUsage, "set proxmox.site"},
	}
	for _, tt := range tests {
		code, _, stderr := runUpload(t, tt.dir, tt.env, tt.args...)
		if code != tt.wantCode || !strings.Contains(stderr, tt.wantErr) {
			t.Errorf("imgpipe upload %v (%s) = %d, stderr %q; want %d and %q", tt.args, tt.name, code, stderr, tt.wantCode, tt.wantErr)
		}
		if strings.Contains(stderr, srv.Secret()) {
			t.Errorf("imgpipe upload (%s): stderr contains the token secret", tt.name)
		}
	}
	// The token file is used when the environment has none.
	cfgPath := filepath.Join(withCA, "imgpipe.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, append(cfg, []byte("  tokenFile: "+tokenFile+"\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	if code, _, stderr := runUpload(t, withCA, nil, "iso", "--dry-run"); code != 0 {
		t.Errorf("imgpipe upload iso with proxmox.tokenFile = %d (%s); want 0", code, stderr)
	}
	// A failing PVE task is an operational error with the task's message.
	srv.Inject(pvetest.Fault{Kind: pvetest.FaultTaskFail, Path: "/upload", Message: "no space left on device"})
	if code, _, stderr := runUpload(t, withCA, good, "iso"); code != exitOperational || !strings.Contains(stderr, "no space left on device") {
		t.Errorf("imgpipe upload iso (task fails) = %d, %q; want %d with the task message", code, stderr, exitOperational)
	}
}

// Item 15 at the CLI: with proxmox.site set, --profile P --keep N prunes only
// that site's images of P; proxmox.timeout and stallTimeout are read.
func TestUploadCommandSiteScopedKeep(t *testing.T) {
	t.Parallel()
	srv := pvetest.New()
	defer srv.Close()
	dir := proxmoxSite(t, srv, true)
	cfgPath := filepath.Join(dir, "imgpipe.yaml")
	cfg, _ := os.ReadFile(cfgPath)
	if err := os.WriteFile(cfgPath, append(cfg, []byte("  site: lab\n  timeout: 20s\n  stallTimeout: 1m\n")...), 0o644); err != nil {
		t.Fatal(err)
	}
	mine := "local:iso/talos_lab_worker_v1.9.4_" + uploadTestSchematic[:12] + "_nocloud-amd64.iso"
	theirs := "local:iso/talos_edge_worker_v1.9.4_" + uploadTestSchematic[:12] + "_nocloud-amd64.iso"
	for _, v := range []string{mine, theirs} {
		srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: v, Content: "iso", Format: "iso", Size: 1})
	}
	code, out, stderr := runUpload(t, dir, map[string]string{proxmox.TokenEnv: srv.Token()}, "iso", "--profile", "worker", "--keep", "1", "-o", "json")
	if code != 0 {
		t.Fatalf("imgpipe upload iso --keep 1 = %d; stderr %s", code, stderr)
	}
	var rep uploadReport
	if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Results) != 2 || rep.Results[1].Volume != mine || rep.Results[1].Action != proxmox.ActionRemoved {
		t.Errorf("report %s (%v); want the upload, then %s removed", out, err, mine)
	}
	var left []string
	for _, v := range srv.Volumes() {
		left = append(left, v.VolID)
	}
	if !slices.Contains(left, theirs) || slices.Contains(left, mine) {
		t.Errorf("volumes %v; want %s kept and %s removed", left, theirs, mine)
	}
}

func TestUploadCommandInterrupted(t *testing.T) {
	t.Parallel()
	srv := pvetest.New()
	defer srv.Close()
	dir := proxmoxSite(t, srv, true)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	var out, errb bytes.Buffer
	code := run(ctx, []string{"--config", filepath.Join(dir, "imgpipe.yaml"), "upload", "iso", "--lock", filepath.Join(dir, "imgpipe.lock.json")},
		strings.NewReader(""), &out, &errb, func(k string) string { return map[string]string{proxmox.TokenEnv: srv.Token()}[k] })
	if code != exitInterrupted {
		t.Errorf("imgpipe upload iso (interrupted) = %d, stderr %q; want %d", code, errb.String(), exitInterrupted)
	}
	if v := srv.Volumes(); len(v) != 0 {
		t.Errorf("volumes after interrupt: %+v; want none", v)
	}
}
