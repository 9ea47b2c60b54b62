package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// mirrorSite seeds an in-memory upstream with two images and writes a lock and an
// imgpipe.yaml whose registries section sends that upstream to an in-memory mirror.
func mirrorSite(t *testing.T) (dir, upHost, mirrorHost string, images []*registrytest.Image) {
	t.Helper()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	up := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(up.Close)
	mirror := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(mirror.Close)
	upHost, mirrorHost = up.Listener.Addr().String(), mirror.Listener.Addr().String()
	s := &registrytest.Seeder{Host: upHost}
	for i, sp := range []registrytest.Spec{
		{Repo: "siderolabs/kubelet", Tag: "v1.32.4", Platforms: []string{"linux/amd64", "linux/arm64"}, Layers: []int64{32 << 10}, Seed: 1, Sign: true},
		{Repo: "kyverno/kyverno", Tag: "v1.13.4", Layers: []int64{16 << 10}, Seed: 2},
	} {
		im, err := s.Seed(context.Background(), sp)
		if err != nil {
			t.Fatalf("seeding %d: %v", i, err)
		}
		images = append(images, im)
	}
	dir = t.TempDir()
	lock := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.6", CoreImages: []site.Image{
		{Role: "kubelet", Ref: images[0].Ref(upHost)}, // digest unknown until mirror --pin
		{Role: "etcd", Ref: "gcr.io/etcd-development/etcd:v3.5.21"},
	}}
	if err := site.WriteLock(filepath.Join(dir, "imgpipe.lock.json"), lock); err != nil {
		t.Fatal(err)
	}
	cfg := fmt.Sprintf("version: 1\nprofiles:\n  - name: worker\nregistries:\n  mirrors:\n    %q:\n      endpoint: http://%s\n      mode: push\nimages:\n  - %s\n",
		upHost, mirrorHost, images[1].Ref(upHost))
	if err := os.WriteFile(filepath.Join(dir, "imgpipe.yaml"), []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir, upHost, mirrorHost, images
}

func TestImagesCommand(t *testing.T) {
	t.Parallel()
	dir, upHost, _, images := mirrorSite(t)
	stdout, stderr, code := runImgpipe(t, nil, "images", "--lock", filepath.Join(dir, "imgpipe.lock.json"), "--config", filepath.Join(dir, "imgpipe.yaml"))
	if code != 0 {
		t.Fatalf("images = exit %d; stderr:\n%s", code, stderr)
	}
	want := images[0].Ref(upHost) + "\ngcr.io/etcd-development/etcd:v3.5.21\n" + images[1].Ref(upHost) + "\n"
	if stdout != want {
		t.Errorf("images stdout =\n%s\nwant\n%s", stdout, want)
	}
	if !strings.Contains(stderr, "no mirror configured: gcr.io/etcd-development/etcd:v3.5.21") || !strings.Contains(stderr, "no digest in the lock") {
		t.Errorf("images stderr = %q; want the unmirrored etcd and the unknown digests reported", stderr)
	}
}

func TestMirrorCommand(t *testing.T) {
	t.Parallel()
	dir, upHost, mirrorHost, images := mirrorSite(t)
	args := []string{"mirror", "--lock", filepath.Join(dir, "imgpipe.lock.json"), "--config", filepath.Join(dir, "imgpipe.yaml"),
		"--journal", "off", "-o", "json"}

	stdout, stderr, code := runImgpipe(t, nil, append(args, "--dry-run")...)
	if code != 0 {
		t.Fatalf("mirror --dry-run = exit %d; stderr:\n%s", code, stderr)
	}
	var dry registry.Report
	if err := json.Unmarshal([]byte(stdout), &dry); err != nil {
		t.Fatalf("mirror -o json: %v\n%s", err, stdout)
	}
	if !dry.DryRun || dry.Totals.Planned != 2 || dry.Totals.Unmirrored != 1 {
		t.Errorf("dry run totals = %+v; want 2 planned, 1 unmirrored", dry.Totals)
	}

	stdout, stderr, code = runImgpipe(t, nil, append(args, "--pin")...)
	if code != 0 {
		t.Fatalf("mirror --pin = exit %d; stderr:\n%s", code, stderr)
	}
	var rep registry.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("mirror -o json: %v\n%s", err, stdout)
	}
	if rep.Totals.Copied != 2 || rep.Totals.Verified != 2 || rep.Totals.Unmirrored != 1 {
		t.Errorf("mirror totals = %+v; want 2 copied and verified, 1 unmirrored", rep.Totals)
	}
	if got := rep.Images[0]; got.Mirror != mirrorHost+"/"+images[0].Repo+":"+images[0].Tag || len(got.Signatures) != 1 {
		t.Errorf("kubelet report = %+v; want mirror %s and its .sig", got, mirrorHost)
	}
	if !strings.Contains(stderr, "gcr.io/etcd-development/etcd:v3.5.21: no mirror configured") {
		t.Errorf("mirror stderr = %q; want the unmirrored etcd reported", stderr)
	}

	// --pin wrote the kubelet digest resolved upstream into the lock; images prints it.
	stdout, _, _ = runImgpipe(t, nil, "images", "--lock", filepath.Join(dir, "imgpipe.lock.json"), "--config", filepath.Join(dir, "imgpipe.yaml"))
	if want := images[0].Ref(upHost) + "@" + images[0].Digest + "\n"; !strings.HasPrefix(stdout, want) {
		t.Errorf("images after mirror --pin =\n%s\nwant first line %q", stdout, want)
	}

	// Table output of a rerun: everything present.
	stdout, _, code = runImgpipe(t, nil, args[:len(args)-2]...)
	if code != 0 || !strings.Contains(stdout, "0 copied, 2 present") {
		t.Errorf("mirror rerun = exit %d, table:\n%s\nwant exit 0 and 2 present", code, stdout)
	}
}

func TestMirrorCommandUsageErrors(t *testing.T) {
	t.Parallel()
	dir, _, _, _ := mirrorSite(t)
	lock, cfg := filepath.Join(dir, "imgpipe.lock.json"), filepath.Join(dir, "imgpipe.yaml")
	empty := filepath.Join(dir, "empty.yaml")
	if err := os.WriteFile(empty, []byte("version: 1\nprofiles:\n  - name: worker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := [][]string{
		{"mirror", "--lock", lock, "--config", cfg, "--mode", "copy"},
		{"mirror", "--lock", lock, "--config", cfg, "--jobs", "0"},
		{"mirror", "--lock", lock, "--config", cfg, "-o", "xml"},
		{"mirror", "--lock", lock, "--config", empty},
		{"mirror", "--lock", filepath.Join(dir, "missing.json"), "--config", cfg},
	}
	for _, args := range tests {
		if _, stderr, code := runImgpipe(t, nil, args...); code != exitUsage {
			t.Errorf("imgpipe %s = exit %d (%s); want %d", strings.Join(args, " "), code, stderr, exitUsage)
		}
	}
}
