package registry_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// fastBackoff keeps fault tests quick; the schedule itself is not under test.
var fastBackoff = registry.Backoff{Initial: 10 * time.Millisecond, Max: 100 * time.Millisecond, Steps: 8}

// fixture is an upstream registry seeded with a small Talos-like set.
type fixture struct {
	upstream *registrytest.Instance
	images   []*registrytest.Image
	lock     *site.Lock
}

// seedUpstream starts a plain upstream and seeds: a signed and attested two-platform
// "installer" sharing a base layer with a signed "kubelet", a single-platform "pause"
// and an "extension" (its digest left out of the lock, as an unknown digest).
func seedUpstream(t *testing.T) (*registrytest.Instance, []*registrytest.Image) {
	t.Helper()
	up := registrytest.StartT(t, registrytest.Config{})
	s := &registrytest.Seeder{Host: up.Host}
	ctx := context.Background()
	specs := []registrytest.Spec{
		{Repo: "siderolabs/installer", Tag: "v1.9.5", Platforms: []string{"linux/amd64", "linux/arm64"},
			Shared: []int64{300 << 10}, SharedSeed: 7, Layers: []int64{256 << 10, 64 << 10}, Seed: 1, Sign: true, Attest: true},
		{Repo: "siderolabs/kubelet", Tag: "v1.32.2", Platforms: []string{"linux/amd64", "linux/arm64"},
			Shared: []int64{300 << 10}, SharedSeed: 7, Layers: []int64{200 << 10}, Seed: 2, Sign: true},
		{Repo: "pause", Tag: "3.10", Layers: []int64{4 << 10}, Seed: 3},
		{Repo: "siderolabs/qemu-guest-agent", Tag: "9.2.0", Platforms: []string{"linux/amd64", "linux/arm64"},
			Layers: []int64{128 << 10}, Seed: 4, Sign: true},
	}
	var images []*registrytest.Image
	for _, sp := range specs {
		im, err := s.Seed(ctx, sp)
		if err != nil {
			t.Fatalf("seeding %s: %v", sp.Repo, err)
		}
		images = append(images, im)
	}
	return up, images
}

// lockFor builds a lock over the seeded images, as the resolver would write it.
func lockFor(host string, images []*registrytest.Image) *site.Lock {
	return &site.Lock{
		Schema: site.LockSchema, Talos: "v1.9.5",
		CoreImages: []site.Image{
			{Role: "installer", Ref: images[0].Ref(host), Digest: images[0].Digest},
			{Role: "kubelet", Ref: images[1].Ref(host), Digest: images[1].Digest},
			{Role: "pause", Ref: images[2].Ref(host)}, // digest unknown: resolved upstream
			{Role: "etcd", Ref: "gcr.io/etcd-development/etcd:v3.5.16"},
		},
		Profiles: []site.Profile{{Name: "worker", Extensions: []site.Extension{
			{Name: "siderolabs/qemu-guest-agent", Ref: images[3].Ref(host), Digest: images[3].Digest, DigestStatus: "pinned"},
		}, Installer: "factory.talos.dev/nocloud-installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.9.5"}},
	}
}

func place(t *testing.T, lock *site.Lock, cfg site.RegistryConfig) []registry.Placement {
	t.Helper()
	set, err := registry.ImageSet(lock, nil)
	if err != nil {
		t.Fatalf("ImageSet: %v", err)
	}
	m, err := registry.NewEndpointMap(cfg)
	if err != nil {
		t.Fatalf("NewEndpointMap: %v", err)
	}
	ps, err := registry.Place(set, m)
	if err != nil {
		t.Fatalf("Place: %v", err)
	}
	return ps
}

func mirrorCfg(upstream, mirror string, mode registry.Mode) site.RegistryConfig {
	return site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{upstream: {Endpoint: "http://" + mirror, Mode: string(mode)}}}
}

// checkServes proves that host serves every manifest (tag and digest), blob (read
// whole, digest checked) and signature tag of the images.
func checkServes(t *testing.T, host string, images []*registrytest.Image) {
	t.Helper()
	for _, im := range images {
		got := headDigest(t, host, im.Repo, im.Tag)
		if got != im.Digest {
			t.Errorf("mirror %s/%s:%s = %q; want %q", host, im.Repo, im.Tag, got, im.Digest)
		}
		for _, d := range im.Manifests {
			if body := get(t, host, im.Repo, "manifests", d); digestOf(body) != d {
				t.Errorf("mirror manifest %s/%s@%s has digest %s", host, im.Repo, d, digestOf(body))
			}
		}
		for _, b := range im.Blobs {
			if body := get(t, host, im.Repo, "blobs", b.Digest); digestOf(body) != b.Digest || int64(len(body)) != b.Size {
				t.Errorf("mirror blob %s/%s@%s: got %d bytes, digest %s; want %d", host, im.Repo, b.Digest, len(body), digestOf(body), b.Size)
			}
		}
		for _, tag := range im.Signatures {
			if headDigest(t, host, im.Repo, tag) == "" {
				t.Errorf("mirror %s/%s:%s missing", host, im.Repo, tag)
			}
		}
	}
}

const accept = "application/vnd.oci.image.index.v1+json, application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json, application/vnd.docker.distribution.manifest.list.v2+json"

func headDigest(t *testing.T, host, repo, ref string) string {
	t.Helper()
	req, _ := http.NewRequest(http.MethodHead, "http://"+host+"/v2/"+repo+"/manifests/"+ref, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("HEAD %s: %v", req.URL, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ""
	}
	return resp.Header.Get("Docker-Content-Digest")
}

func get(t *testing.T, host, repo, kind, ref string) []byte {
	t.Helper()
	req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/"+kind+"/"+ref, nil)
	req.Header.Set("Accept", accept)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: %v", req.URL, err)
	}
	if resp.StatusCode != http.StatusOK {
		t.Errorf("GET %s = %s; want 200", req.URL, resp.Status)
	}
	return body
}

func digestOf(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

func uniqueBlobs(images []*registrytest.Image) (n int64, bytes int64) {
	seen := map[string]bool{}
	for _, im := range images {
		for _, b := range im.Blobs {
			if !seen[b.Digest] {
				n++
				bytes += b.Size
			}
			seen[b.Digest] = true
		}
	}
	return n, bytes
}

func statusByRole(rep *registry.Report) map[string]registry.ImageReport {
	out := map[string]registry.ImageReport{}
	for i := range rep.Images {
		if _, dup := out[rep.Images[i].Role]; !dup { // the factory installer comes after the core one
			out[rep.Images[i].Role] = rep.Images[i]
		}
	}
	return out
}

func TestPushMirrorsWholeIndexWithSignatures(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	mirror := registrytest.StartT(t, registrytest.Config{})
	lock := lockFor(up.Host, images)
	ps := place(t, lock, mirrorCfg(up.Host, mirror.Host, registry.ModePush))
	ctx := context.Background()

	var blobEvents atomic.Int64
	m := registry.New(registry.WithJobs(3), registry.WithProgress(func(e registry.Event) {
		if e.Kind == "blob" {
			blobEvents.Add(1)
		}
	}))
	rep, err := m.Run(ctx, ps)
	if err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	got := statusByRole(rep)
	for _, role := range []string{"installer", "kubelet", "pause", "extension"} {
		if got[role].Status != registry.StatusCopied || !got[role].Verified || got[role].Mode != registry.ModePush {
			t.Errorf("image %s: status %q verified %v mode %q (%s); want copied, verified, push", role, got[role].Status, got[role].Verified, got[role].Mode, got[role].Error)
		}
	}
	if g := got["pause"]; g.Digest != images[2].Digest || g.DigestSource != "upstream" {
		t.Errorf("pause digest = %q from %q; want %q from upstream", g.Digest, g.DigestSource, images[2].Digest)
	}
	if g := got["installer"].Signatures; len(g) != 2 {
		t.Errorf("installer signatures = %v; want the .sig and .att tags", g)
	}
	var unmirrored []string
	for _, ir := range rep.Images {
		if ir.Status == registry.StatusUnmirrored {
			unmirrored = append(unmirrored, ir.Ref)
		}
	}
	if len(unmirrored) != 2 {
		t.Errorf("unmirrored = %v; want gcr.io etcd and the factory installer reported", unmirrored)
	}
	checkServes(t, mirror.Host, images)

	// Blobs shared between images (the base layer) crossed the wire once.
	wantBlobs, wantBytes := uniqueBlobs(images)
	if rep.Totals.BytesMoved != wantBytes || rep.Totals.BlobsMoved != wantBlobs {
		t.Errorf("first run moved %d blobs, %d bytes; want %d, %d (each unique blob once)", rep.Totals.BlobsMoved, rep.Totals.BytesMoved, wantBlobs, wantBytes)
	}
	if rep.Totals.BlobsMounted == 0 {
		t.Errorf("first run mounted 0 blobs; want the shared base layer mounted across repositories")
	}
	if blobEvents.Load() != wantBlobs {
		t.Errorf("blob progress events = %d; want %d", blobEvents.Load(), wantBlobs)
	}

	// A rerun finds everything and moves nothing.
	rep2, err := m.Run(ctx, ps)
	if err != nil {
		t.Fatalf("rerun = %v; want nil", err)
	}
	if rep2.Totals.BytesMoved != 0 || rep2.Totals.Present != 4 || rep2.Totals.Verified != 4 {
		t.Errorf("rerun: moved %d bytes, %d present, %d verified; want 0, 4, 4", rep2.Totals.BytesMoved, rep2.Totals.Present, rep2.Totals.Verified)
	}
}

func TestWarmPullThroughServesAfterUpstreamStops(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: up.URL()})
	lock := lockFor(up.Host, images)
	// auto must find out that the cache refuses pushes and warm it instead.
	ps := place(t, lock, mirrorCfg(up.Host, cache.Host, registry.ModeAuto))
	journal := filepath.Join(t.TempDir(), "warm.json")
	m := registry.New(registry.WithJobs(3), registry.WithJournal(journal, 0))
	rep, err := m.Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run = %v; want nil", err)
	}
	if len(rep.Endpoints) != 1 || rep.Endpoints[0].Mode != registry.ModeWarm {
		t.Fatalf("endpoints = %+v; want one, probed as warm", rep.Endpoints)
	}
	if rep.Totals.Warmed != 4 || rep.Totals.Verified != 4 {
		t.Fatalf("warmed %d, verified %d; want 4, 4: %+v", rep.Totals.Warmed, rep.Totals.Verified, rep.Images)
	}
	if g := statusByRole(rep)["installer"].Signatures; len(g) != 2 {
		t.Errorf("installer signatures = %v; want .sig and .att", g)
	}
	if g := statusByRole(rep)["pause"]; g.Digest != images[2].Digest || g.DigestSource != "upstream" {
		t.Errorf("pause digest = %q from %q; want %q resolved upstream", g.Digest, g.DigestSource, images[2].Digest)
	}

	// A rerun reads only what the journal does not have: nothing.
	rep2, err := m.Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("rerun = %v; want nil", err)
	}
	if rep2.Totals.BytesMoved != 0 {
		t.Errorf("warm rerun read %d blob bytes; want 0", rep2.Totals.BytesMoved)
	}

	up.Stop()
	checkServes(t, cache.Host, images)
}

func TestPushRetriesFaultyUpstream(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	f := &registrytest.Faults{}
	f.CutBlobs.Store(3)
	f.Throttle.Store(2)
	f.Unavailable.Store(2)
	h, err := registrytest.FaultProxy(up.URL(), f)
	if err != nil {
		t.Fatal(err)
	}
	faulty := httptest.NewServer(h)
	t.Cleanup(faulty.Close)
	faultyHost := faulty.Listener.Addr().String()

	mirror := registrytest.StartT(t, registrytest.Config{})
	ps := place(t, lockFor(faultyHost, images), mirrorCfg(faultyHost, mirror.Host, registry.ModePush))
	rep, err := registry.New(registry.WithBackoff(fastBackoff)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run through faults = %v; want nil", err)
	}
	if f.Injected.Load() != 7 {
		t.Errorf("faults injected = %d; want 7", f.Injected.Load())
	}
	if rep.Totals.Retries < int64(f.Injected.Load()) {
		t.Errorf("retries = %d; want >= %d", rep.Totals.Retries, f.Injected.Load())
	}
	if rep.Totals.Verified != 4 {
		t.Errorf("verified = %d; want 4", rep.Totals.Verified)
	}
	checkServes(t, mirror.Host, images)
}

func TestWarmRetriesFaultyUpstream(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	f := &registrytest.Faults{}
	h, err := registrytest.FaultProxy(up.URL(), f)
	if err != nil {
		t.Fatal(err)
	}
	faulty := httptest.NewServer(h)
	t.Cleanup(faulty.Close)
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: faulty.URL})
	// Faults start after the cache's startup ping.
	f.CutBlobs.Store(3)
	f.Throttle.Store(2)
	f.Unavailable.Store(2)

	ps := place(t, lockFor(up.Host, images), mirrorCfg(up.Host, cache.Host, registry.ModeWarm))
	rep, err := registry.New(registry.WithBackoff(fastBackoff)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run through faults = %v; want nil", err)
	}
	if f.Injected.Load() == 0 || rep.Totals.Retries == 0 {
		t.Errorf("faults injected %d, retries %d; want both > 0", f.Injected.Load(), rep.Totals.Retries)
	}
	faulty.Close()
	up.Stop()
	checkServes(t, cache.Host, images)
}

func TestPushResumesAfterInterruption(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	mirror := registrytest.StartT(t, registrytest.Config{})
	ps := place(t, lockFor(up.Host, images), mirrorCfg(up.Host, mirror.Host, registry.ModePush))

	ctx, cancel := context.WithCancel(context.Background())
	var first atomic.Int64
	m := registry.New(registry.WithJobs(1), registry.WithProgress(func(e registry.Event) {
		if e.Kind == "blob" && first.Add(e.Bytes) > 0 {
			cancel() // interrupt after the first blob landed
		}
	}))
	rep1, err := m.Run(ctx, ps)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Run = %v; want context.Canceled", err)
	}
	_, total := uniqueBlobs(images)
	if rep1.Totals.BytesMoved == 0 || rep1.Totals.BytesMoved >= total {
		t.Fatalf("interrupted run moved %d of %d bytes; want some but not all", rep1.Totals.BytesMoved, total)
	}
	rep2, err := registry.New().Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("resumed Run = %v; want nil", err)
	}
	if rep1.Totals.BytesMoved+rep2.Totals.BytesMoved != total {
		t.Errorf("moved %d + %d bytes over two runs; want %d (nothing twice)", rep1.Totals.BytesMoved, rep2.Totals.BytesMoved, total)
	}
	checkServes(t, mirror.Host, images)
}

func TestDryRunWritesNothing(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	mirror := registrytest.StartT(t, registrytest.Config{})
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: up.URL()})
	for _, tc := range []struct {
		name string
		host string
		mode registry.Mode
	}{{"push", mirror.Host, registry.ModePush}, {"warm", cache.Host, registry.ModeWarm}} {
		ps := place(t, lockFor(up.Host, images), mirrorCfg(up.Host, tc.host, tc.mode))
		rep, err := registry.New(registry.WithDryRun(true)).Run(context.Background(), ps)
		if err != nil {
			t.Fatalf("%s: dry Run = %v; want nil", tc.name, err)
		}
		if rep.Totals.Planned != 4 || !rep.DryRun {
			t.Errorf("%s: planned = %d, dry_run %v; want 4, true", tc.name, rep.Totals.Planned, rep.DryRun)
		}
		if tc.mode == registry.ModePush {
			_, total := uniqueBlobs(images)
			if rep.Totals.BytesMoved != total {
				t.Errorf("push dry run plans %d bytes; want %d", rep.Totals.BytesMoved, total)
			}
		}
	}
	if d := headDigest(t, mirror.Host, images[0].Repo, images[0].Tag); d != "" {
		t.Errorf("after dry run the mirror has %s:%s = %s; want nothing", images[0].Repo, images[0].Tag, d)
	}
	// Nothing was pulled through the cache: with the upstream gone it has nothing to serve.
	up.Stop()
	req, _ := http.NewRequest(http.MethodGet, fmt.Sprintf("http://%s/v2/%s/blobs/%s", cache.Host, images[0].Repo, images[0].Blobs[0].Digest), nil)
	if resp, err := http.DefaultClient.Do(req); err == nil {
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("after warm dry run the cache serves %s offline; want it never fetched", images[0].Blobs[0].Digest)
		}
	}
}

func TestWarmResumesAfterInterruption(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: up.URL()})
	ps := place(t, lockFor(up.Host, images), mirrorCfg(up.Host, cache.Host, registry.ModeWarm))
	journal := filepath.Join(t.TempDir(), "warm.json")

	ctx, cancel := context.WithCancel(context.Background())
	m := registry.New(registry.WithJobs(1), registry.WithJournal(journal, 0), registry.WithProgress(func(e registry.Event) {
		if e.Kind == "blob" {
			cancel()
		}
	}))
	rep1, err := m.Run(ctx, ps)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("interrupted Run = %v; want context.Canceled", err)
	}
	// A cache links blobs per repository, so each repository reads its own copy.
	var total int64
	for _, im := range images {
		total += im.Bytes
		for _, b := range im.Blobs[len(im.Blobs)-2*len(im.Signatures):] {
			total += b.Size
		}
	}
	if rep1.Totals.BytesMoved == 0 || rep1.Totals.BytesMoved >= total {
		t.Fatalf("interrupted warm read %d of %d bytes; want some but not all", rep1.Totals.BytesMoved, total)
	}
	rep2, err := registry.New(registry.WithJournal(journal, 0)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("resumed Run = %v; want nil", err)
	}
	if got := rep1.Totals.BytesMoved + rep2.Totals.BytesMoved; got != total {
		t.Errorf("warm read %d + %d bytes over two runs; want %d (nothing twice)", rep1.Totals.BytesMoved, rep2.Totals.BytesMoved, total)
	}
	up.Stop()
	checkServes(t, cache.Host, images)
}
