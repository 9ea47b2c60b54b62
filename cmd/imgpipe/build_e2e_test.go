package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/klauspost/compress/zstd"
	"github.com/sigstore/sigstore/pkg/signature"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/pipeline"
	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// e2eSite is a whole site on loopback: the fake Image Factory, an upstream registry U
// standing in for ghcr.io, registry.k8s.io and a third-party registry, two
// pull-through caches of U (the ghcr.io and registry.k8s.io mirrors), a plain registry
// P (the mirror of U itself, for the site's extra images, filled by push) and the fake
// Proxmox VE. Every registry is a real docker-registry process behind a counting proxy,
// so the test can say how many requests a run made to each.
type e2eSite struct {
	dir, config, keyFile, trustedRoot string

	factory *factorytest.Factory
	pve     *pvetest.Server

	up, c1, c2, plain *registrytest.Instance
	// hits count the requests that reached each registry through its proxy; the
	// proxy hosts are what imgpipe and the caches are configured with.
	hits                                 map[string]*registrytest.Faults
	upHost, c1Host, c2Host, plainHost    string
	signer                               signature.SignerVerifier
	seeded                               map[string]string // upstream ref (tag) -> digest seeded in U
	kyverno, kyvernoDigest, unmirroredGC string
}

const (
	e2eImageSize = 192 << 10 // ISO size; small keeps the run well inside the time budget
	e2eDiskSize  = 320 << 10 // decompressed nocloud disk image
)

// e2eDisk is the deterministic raw disk image the fake factory serves (zstd-compressed)
// for one schematic and version.
func e2eDisk(id, version string) []byte {
	seed := sha256.Sum256([]byte("disk/" + id + "/" + version))
	return bytes.Repeat(seed[:], e2eDiskSize/len(seed))
}

func newE2ESite(t *testing.T) *e2eSite {
	t.Helper()
	registrytest.Require(t)
	s := &e2eSite{dir: t.TempDir(), hits: map[string]*registrytest.Faults{}, seeded: map[string]string{}}

	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	s.factory = factorytest.New(t, factorytest.Options{
		Catalog:   factorytest.ReferenceCatalog(),
		ImageSize: e2eImageSize,
		// PVE imports the nocloud .raw.zst after imgpipe decompresses it, so the
		// fake must serve a real zstd stream there.
		Content: func(id, version, path string) []byte {
			if strings.HasSuffix(path, ".raw.zst") {
				return enc.EncodeAll(e2eDisk(id, version), nil)
			}
			return nil
		},
	})

	// The caches need their upstream (its proxy) running when they start.
	s.up = registrytest.StartT(t, registrytest.Config{Root: filepath.Join(s.dir, "reg-upstream")})
	s.upHost = s.countingProxy(t, "upstream", s.up)
	s.c1 = registrytest.StartT(t, registrytest.Config{Root: filepath.Join(s.dir, "reg-cache-ghcr"), RemoteURL: "http://" + s.upHost})
	s.c1Host = s.countingProxy(t, "cache-ghcr", s.c1)
	s.c2 = registrytest.StartT(t, registrytest.Config{Root: filepath.Join(s.dir, "reg-cache-k8s"), RemoteURL: "http://" + s.upHost})
	s.c2Host = s.countingProxy(t, "cache-k8s", s.c2)
	s.plain = registrytest.StartT(t, registrytest.Config{Root: filepath.Join(s.dir, "reg-plain")})
	s.plainHost = s.countingProxy(t, "plain", s.plain)

	s.pve = pvetest.New(pvetest.WithTaskPolls(0))
	t.Cleanup(s.pve.Close)

	var pemKey []byte
	s.signer, pemKey = verifytest.NewKey(t)
	s.keyFile = s.write(t, "cosign.pub", pemKey)
	s.trustedRoot = verifytest.NewSigstore(t).WriteTrustedRoot(t, s.dir)
	caFile := s.write(t, "pve-ca.pem", s.pve.CertPEM())

	// A third-party image the site mirrors by push into P, and a gcr.io image no
	// mirror takes (reported, not a failure).
	s.kyverno = s.upHost + "/kyverno/kyverno:v1.15.2"
	s.unmirroredGC = "gcr.io/etcd-development/etcd:v3.5.21"
	cfg := fmt.Sprintf(`version: 1
talos: v1.12.x
factory:
  url: %[1]s
profiles:
  - name: controlplane
    role: controlplane
    extensions:
      - name: qemu-guest-agent
  - name: worker
    extensions:
      - name: qemu-guest-agent
      - name: nfs-utils
        optional: true
registries:
  insecure: true
  mirrors:
    ghcr.io:
      endpoint: http://%[2]s
      mode: warm
    registry.k8s.io:
      endpoint: http://%[3]s
      mode: warm
    %[4]q:
      endpoint: http://%[5]s
      mode: push
images:
  - %[6]s
  - %[7]s
proxmox:
  url: %[8]s
  caFile: %[9]s
  nodes: [pve1]
  storage: local
  isoMethod: download-url
  template:
    vmidBase: 9000
    diskStorage: local-lvm
    bridge: vmbr0
verify:
  policies:
    - match: ghcr.io/siderolabs/**
      key: %[10]s
    # The fake factory's registry serves installer manifests but no signatures.
    - match: %[11]s/**
      allowUnsigned: true
`, s.factory.URL(), s.c1Host, s.c2Host, s.upHost, s.plainHost, s.kyverno, s.unmirroredGC,
		s.pve.URL, caFile, s.keyFile, s.factory.Host())
	s.config = s.write(t, "imgpipe.yaml", []byte(cfg))
	return s
}

func (s *e2eSite) write(t *testing.T, name string, data []byte) string {
	t.Helper()
	p := filepath.Join(s.dir, name)
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// countingProxy puts a request-counting reverse proxy in front of a registry and
// returns its host.
func (s *e2eSite) countingProxy(t *testing.T, label string, inst *registrytest.Instance) string {
	t.Helper()
	f := &registrytest.Faults{}
	h, err := registrytest.FaultProxy(inst.URL(), f)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	s.hits[label] = f
	return strings.TrimPrefix(srv.URL, "http://")
}

// registryHits is the number of requests each registry has received so far.
func (s *e2eSite) registryHits() map[string]int64 {
	out := map[string]int64{}
	for k, f := range s.hits {
		out[k] = f.Requests.Load()
	}
	return out
}

// resolve runs `imgpipe resolve` to stdout (writing nothing) and returns the lock
// a build for talos will produce.
func (s *e2eSite) resolve(t *testing.T, talos string) *site.Lock {
	t.Helper()
	stdout, stderr, code := runImgpipe(t, nil, "resolve", "--config", s.config, "--talos", talos, "-o", "json")
	if code != 0 {
		t.Fatalf("imgpipe resolve --talos %s = exit %d; stderr:\n%s", talos, code, stderr)
	}
	l, err := site.ParseLock("resolve output", []byte(stdout))
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// seed writes every ghcr.io and registry.k8s.io image the lock names into U under the
// same repository path (the caches map ghcr.io/x and registry.k8s.io/x to U/x), small
// and synthetic, and signs the ghcr.io/siderolabs ones with the site's key at U. The
// lock pins no digests, so every image is resolved by tag.
func (s *e2eSite) seed(t *testing.T, lock *site.Lock) {
	t.Helper()
	ctx := t.Context()
	seeder := &registrytest.Seeder{Host: s.up.Host}
	var refs []string
	for _, c := range lock.CoreImages {
		refs = append(refs, c.Ref)
	}
	for _, p := range lock.Profiles {
		for _, e := range p.Extensions {
			refs = append(refs, e.Ref)
		}
	}
	refs = append(refs, lock.Catalog)
	for _, ref := range refs {
		if _, done := s.seeded[ref]; done {
			continue
		}
		r, err := registry.ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		if r.Upstream != "ghcr.io" && r.Upstream != "registry.k8s.io" {
			t.Fatalf("lock names %s, which this site has no upstream for", ref)
		}
		h := fnv.New64a()
		h.Write([]byte(ref))
		spec := registrytest.Spec{Repo: r.Repository, Tag: r.Tag, Seed: h.Sum64(),
			Layers: []int64{2<<10 + int64(h.Sum64()%2048)}, Shared: []int64{6 << 10}, SharedSeed: 42}
		if r.Repository == "siderolabs/kubelet" || r.Repository == "siderolabs/installer" {
			spec.Platforms = []string{"linux/amd64", "linux/arm64"}
		}
		im, err := seeder.Seed(ctx, spec)
		if err != nil {
			t.Fatalf("seeding %s: %v", ref, err)
		}
		if r.Upstream == "ghcr.io" && strings.HasPrefix(r.Repository, "siderolabs/") {
			d, err := name.NewDigest(s.up.Host + "/" + r.Repository + "@" + im.Digest)
			if err != nil {
				t.Fatal(err)
			}
			verifytest.SignWithKey(t, s.signer, d, verifytest.SigOpts{})
		}
		s.seeded[ref] = im.Digest
	}
	if s.kyvernoDigest == "" {
		im, err := seeder.Seed(ctx, registrytest.Spec{Repo: "kyverno/kyverno", Tag: "v1.15.2", Seed: 7,
			Platforms: []string{"linux/amd64", "linux/arm64"}, Layers: []int64{3 << 10}, Shared: []int64{6 << 10}, SharedSeed: 42})
		if err != nil {
			t.Fatal(err)
		}
		s.kyvernoDigest = im.Digest
	}
}

func (s *e2eSite) env() map[string]string {
	return map[string]string{
		proxmox.TokenEnv: s.pve.Token(),
		"HOME":           s.dir,
		"XDG_CACHE_HOME": filepath.Join(s.dir, "xdg-cache"),
	}
}

// buildRun is one `imgpipe build` and what it printed.
type buildRun struct {
	code           int
	stdout, stderr string
	rep            pipeline.Report
}

func (s *e2eSite) build(t *testing.T, lock, report string, extra ...string) buildRun {
	t.Helper()
	args := append([]string{"build", "--config", s.config, "--lock", lock, "--report", report,
		"--cache-dir", filepath.Join(s.dir, "cache"), "--verify-mirror", "--trusted-root", s.trustedRoot, "--factory-key", s.keyFile, "-o", "json"}, extra...)
	var r buildRun
	r.stdout, r.stderr, r.code = runImgpipe(t, s.env(), args...)
	if err := json.Unmarshal([]byte(r.stdout), &r.rep); err != nil {
		t.Fatalf("imgpipe %s = exit %d with stdout that is no build report: %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), r.code, err, r.stdout, r.stderr)
	}
	return r
}

func (r buildRun) stage(t *testing.T, name string) pipeline.StageRecord {
	t.Helper()
	for _, st := range r.rep.Stages {
		if st.Name == name {
			return st
		}
	}
	t.Fatalf("build report has no stage %s: %+v", name, r.rep.Stages)
	return pipeline.StageRecord{}
}

// statuses maps stage name to status.
func (r buildRun) statuses() map[string]string {
	out := map[string]string{}
	for _, st := range r.rep.Stages {
		out[st.Name] = st.Status
	}
	return out
}

func wantStatuses(t *testing.T, what string, r buildRun, want map[string]string) {
	t.Helper()
	got := r.statuses()
	for _, name := range pipeline.Order {
		if got[name] != want[name] {
			t.Errorf("%s: stage %s status = %q; want %q (exit %d)\nstages: %v\nstderr:\n%s", what, name, got[name], want[name], r.code, got, r.stderr)
		}
	}
}

func allStages(status string) map[string]string {
	out := map[string]string{}
	for _, n := range pipeline.Order {
		out[n] = status
	}
	return out
}

func decodeSummary(t *testing.T, st pipeline.StageRecord, v any) {
	t.Helper()
	if err := json.Unmarshal(st.Summary, v); err != nil {
		t.Fatalf("stage %s summary %s: %v", st.Name, st.Summary, err)
	}
}

func sha256File(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("opening cached artifact: %v", err)
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		t.Fatal(err)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil))
}

// files lists the regular files under dir with their modification times.
func files(t *testing.T, dir string) map[string]time.Time {
	t.Helper()
	out := map[string]time.Time{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.Type().IsRegular() {
			info, err := d.Info()
			if err != nil {
				return err
			}
			out[p] = info.ModTime()
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return out
}

// headDigest asks a registry (host, directly) for a manifest by tag.
func headDigest(t *testing.T, host, repo, tag string) (string, error) {
	t.Helper()
	ref, err := name.NewTag(host + "/" + repo + ":" + tag)
	if err != nil {
		t.Fatal(err)
	}
	d, err := remote.Head(ref, remote.WithContext(t.Context()))
	if err != nil {
		return "", err
	}
	return d.Digest.String(), nil
}

// pullAll reads an image (index, manifests and every blob) from host and checks each
// blob against its digest.
func pullAll(t *testing.T, host, repo, tag string) error {
	t.Helper()
	ref, err := name.NewTag(host + "/" + repo + ":" + tag)
	if err != nil {
		return err
	}
	desc, err := remote.Get(ref, remote.WithContext(t.Context()))
	if err != nil {
		return err
	}
	var imgs []string
	if desc.MediaType.IsIndex() {
		idx, err := desc.ImageIndex()
		if err != nil {
			return err
		}
		im, err := idx.IndexManifest()
		if err != nil {
			return err
		}
		for _, m := range im.Manifests {
			imgs = append(imgs, m.Digest.String())
		}
	} else {
		imgs = append(imgs, desc.Digest.String())
	}
	for _, d := range imgs {
		img, err := remote.Image(ref.Context().Digest(d), remote.WithContext(t.Context()))
		if err != nil {
			return err
		}
		if _, err := img.RawConfigFile(); err != nil {
			return err
		}
		layers, err := img.Layers()
		if err != nil {
			return err
		}
		for _, l := range layers {
			rc, err := l.Compressed() // verifies the digest at EOF
			if err != nil {
				return err
			}
			_, err = io.Copy(io.Discard, rc)
			if cerr := rc.Close(); err == nil {
				err = cerr
			}
			if err != nil {
				return err
			}
		}
	}
	return nil
}

func catalog(t *testing.T, host string) []string {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, "http://"+host+"/v2/_catalog", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var c struct {
		Repositories []string `json:"repositories"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&c); err != nil {
		t.Fatalf("decoding %s catalog: %v", host, err)
	}
	return c.Repositories
}

// TestBuildEndToEnd is issue 8's acceptance test: `imgpipe build` in-process against the
// fake factory, real docker-registry instances (plain and pull-through) and the fake
// Proxmox VE. A dry run changes nothing; the first run puts every artifact where the
// lock says; a second run changes nothing; a run interrupted by a failing upload
// resumes at the upload.
func TestBuildEndToEnd(t *testing.T) {
	t.Parallel()
	s := newE2ESite(t)
	lockPath := filepath.Join(s.dir, "imgpipe.lock.json")
	reportPath := filepath.Join(s.dir, "build.json")
	cacheDir := filepath.Join(s.dir, "cache")
	// The warm journal's default place, found through the CLI's environment.
	journal := filepath.Join(s.env()["XDG_CACHE_HOME"], "imgpipe", "warm-journal.json")

	want := s.resolve(t, "v1.12.x")
	s.seed(t, want)

	// 1. A dry run plans every stage and changes nothing.
	dry := s.build(t, lockPath, reportPath, "--dry-run")
	if dry.code != 0 {
		t.Fatalf("build --dry-run = exit %d; want 0\nstderr:\n%s", dry.code, dry.stderr)
	}
	wantStatuses(t, "build --dry-run", dry, allStages(pipeline.StatusPlanned))
	if !dry.rep.DryRun {
		t.Errorf("build --dry-run: report dry_run = false")
	}
	for _, p := range []string{lockPath, reportPath, journal} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("build --dry-run wrote %s (stat: %v); want nothing written", p, err)
		}
	}
	if f := files(t, cacheDir); len(f) != 0 {
		t.Errorf("build --dry-run left files in the cache: %v", f)
	}
	if v, vms := s.pve.Volumes(), s.pve.VMs(); len(v) != 0 || len(vms) != 0 {
		t.Errorf("build --dry-run: PVE has %d volumes, %d VMs; want none", len(v), len(vms))
	}
	for _, r := range s.pve.Requests() {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("build --dry-run sent %s to PVE; want only reads", r)
		}
	}
	for _, r := range s.factory.Requests() {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			t.Errorf("build --dry-run sent %s %s to the factory; want only reads", r.Method, r.Path)
		}
	}
	for _, reg := range []*registrytest.Instance{s.plain, s.c1, s.c2} {
		// A HEAD through a pull-through cache stores nothing; a GET would.
		if c := catalog(t, reg.Host); len(c) != 0 {
			t.Errorf("build --dry-run stored %v in the registry at %s; want nothing", c, reg.Host)
		}
	}
	var dryMirror registry.Report
	decodeSummary(t, dry.stage(t, pipeline.StageMirror), &dryMirror)
	if dryMirror.Totals.Planned != len(s.seeded)+1 || dryMirror.Totals.Unmirrored != 3 || dryMirror.Totals.Failed != 0 {
		t.Errorf("build --dry-run: mirror totals %+v; want %d planned (lock images and kyverno), 3 unmirrored (installers, gcr.io)", dryMirror.Totals, len(s.seeded)+1)
	}
	var dryUpload pipeline.UploadSummary
	decodeSummary(t, dry.stage(t, pipeline.StageUpload), &dryUpload)
	if !slices.Equal(dryUpload.Unfetched, []string{"controlplane", "worker"}) {
		t.Errorf("build --dry-run: upload summary %+v; want both profiles waiting for fetch", dryUpload)
	}
	for _, p := range want.Profiles {
		if s.factory.HasSchematic(p.Schematic.ID) {
			t.Errorf("build --dry-run registered schematic %s", p.Schematic.ID)
		}
	}

	// 2. The first run does everything.
	first := s.build(t, lockPath, reportPath)
	if first.code != 0 {
		t.Fatalf("build = exit %d; want 0\nstdout:\n%s\nstderr:\n%s", first.code, first.stdout, first.stderr)
	}
	wantStatuses(t, "first build", first, allStages(pipeline.StatusDone))
	var total int64
	for _, st := range first.rep.Stages {
		t.Logf("first build: stage %-9s %5d ms", st.Name, st.DurationMS)
		total += st.DurationMS
	}
	t.Logf("first build: all stages %d ms", total)

	lockBytes, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatalf("build wrote no lock: %v", err)
	}
	lock := readLockT(t, lockPath)
	if lock.Talos != want.Talos || len(lock.Profiles) != len(want.Profiles) {
		t.Fatalf("lock = Talos %s, %d profiles; want %s, %d", lock.Talos, len(lock.Profiles), want.Talos, len(want.Profiles))
	}
	onDisk, err := os.ReadFile(reportPath)
	if err != nil {
		t.Fatalf("build wrote no report: %v", err)
	}
	var fileRep pipeline.Report
	if err := json.Unmarshal(onDisk, &fileRep); err != nil || fileRep.LockDigest == "" || fileRep.LockDigest != first.rep.LockDigest {
		t.Errorf("report file: lock digest %q (%v); want the printed report's %q", fileRep.LockDigest, err, first.rep.LockDigest)
	}

	if _, err := os.Stat(journal); err != nil {
		t.Errorf("first build: no warm journal at %s, the default under the CLI's XDG_CACHE_HOME: %v", journal, err)
	}

	// Schematics: the factory knows each profile's, under the ID the lock records.
	var sch pipeline.SchematicSummary
	decodeSummary(t, first.stage(t, pipeline.StageSchematic), &sch)
	for _, p := range lock.Profiles {
		if !s.factory.HasSchematic(p.Schematic.ID) {
			t.Errorf("factory does not know profile %s's schematic %s", p.Name, p.Schematic.ID)
		}
	}
	if len(sch.Schematics) != len(lock.Profiles) {
		t.Errorf("schematic stage: %d results; want %d", len(sch.Schematics), len(lock.Profiles))
	}

	// Fetch: ISO and disk image of every profile in the cache, with the lock's checksums.
	for _, p := range lock.Profiles {
		kinds := map[string]site.Artifact{}
		for _, a := range p.Artifacts {
			kinds[a.Kind] = a
		}
		for kind, url := range map[string]string{"iso": p.ISO, "disk": p.DiskImage} {
			a, ok := kinds[kind]
			if !ok {
				t.Errorf("lock profile %s has no %s artifact: %+v", p.Name, kind, p.Artifacts)
				continue
			}
			// The lock names the artifact by digest; the file is in this runner's cache.
			if a.File != "" {
				t.Errorf("profile %s %s: the lock records the local file %s", p.Name, kind, a.File)
			}
			file := factory.Cache{Dir: cacheDir}.BlobPath(a.SHA256)
			if got := sha256File(t, file); got != a.SHA256 {
				t.Errorf("profile %s %s: %s hashes to %s; the lock says %s", p.Name, kind, file, got, a.SHA256)
			}
			path := strings.TrimPrefix(url, s.factory.URL()+"/image/"+p.Schematic.ID+"/"+lock.Talos+"/")
			if a.URL != url || a.SHA256 != s.factory.ImageSHA256(p.Schematic.ID, lock.Talos, path) {
				t.Errorf("profile %s %s: artifact %s %s; want the factory's %s", p.Name, kind, a.URL, a.SHA256, url)
			}
		}
	}

	// Verify: read through the mirrors, signed images verified with the site key.
	var vrep verify.Report
	decodeSummary(t, first.stage(t, pipeline.StageVerify), &vrep)
	for _, r := range vrep.Results {
		switch {
		case strings.HasPrefix(r.Image, "ghcr.io/siderolabs/"):
			if r.Verdict != verify.Verified || !strings.HasPrefix(r.Source, s.c1Host+"/") || r.Digest != s.seeded[r.Image] {
				t.Errorf("verify %s: %s from %q digest %s (%s); want verified at %s with %s", r.Image, r.Verdict, r.Source, r.Digest, r.Reason, s.c1Host, s.seeded[r.Image])
			}
		case strings.HasPrefix(r.Image, s.factory.Host()+"/"):
			if r.Verdict != verify.UnsignedAllowed {
				t.Errorf("verify %s: %s; want %s by the site policy", r.Image, r.Verdict, verify.UnsignedAllowed)
			}
		case strings.HasPrefix(r.Image, "registry.k8s.io/"):
			if r.Verdict != verify.Skipped {
				t.Errorf("verify %s: %s; want skipped (no policy)", r.Image, r.Verdict)
			}
		}
	}
	if vrep.Summary.Verified == 0 || vrep.Summary.Failed+vrep.Summary.Missing+vrep.Summary.Errors != 0 {
		t.Errorf("verify summary = %+v; want verified images and no failure", vrep.Summary)
	}

	// Mirror: every image served by its mirror at U's digest; the unmirrored ones
	// (gcr.io, the factory's installers) reported, not failed.
	var mrep registry.Report
	decodeSummary(t, first.stage(t, pipeline.StageMirror), &mrep)
	if mrep.Totals.Failed != 0 {
		t.Errorf("mirror totals = %+v; want no failure", mrep.Totals)
	}
	unmirrored := map[string]bool{}
	for _, ir := range mrep.Images {
		if ir.Status == registry.StatusUnmirrored {
			unmirrored[ir.Ref] = true
		}
	}
	wantUnmirrored := []string{s.unmirroredGC}
	for _, p := range lock.Profiles {
		wantUnmirrored = append(wantUnmirrored, p.Installer)
	}
	for _, ref := range wantUnmirrored {
		if !unmirrored[ref] {
			t.Errorf("mirror report: %s not reported unmirrored (%v)", ref, unmirrored)
		}
	}
	if len(unmirrored) != len(wantUnmirrored) {
		t.Errorf("mirror report: unmirrored %v; want %v", unmirrored, wantUnmirrored)
	}
	for _, ir := range mrep.Images {
		var wantStatus string
		switch {
		case ir.Ref == s.kyverno:
			wantStatus = registry.StatusCopied
		case strings.HasPrefix(ir.Ref, "ghcr.io/"), strings.HasPrefix(ir.Ref, "registry.k8s.io/"):
			wantStatus = registry.StatusWarmed
		default:
			continue
		}
		if ir.Status != wantStatus || !ir.Verified {
			t.Errorf("mirror report: %s %s (verified %v, %s); want %s and verified", ir.Ref, ir.Status, ir.Verified, ir.Error, wantStatus)
		}
		r, _ := registry.ParseRef(ir.Ref)
		endpoint := map[string]string{"ghcr.io": s.c1Host, "registry.k8s.io": s.c2Host, s.upHost: s.plainHost}[r.Upstream]
		if want := endpoint + "/" + r.Repository + ":" + r.Tag; ir.Mirror != want {
			t.Errorf("mirror report: %s placed at %s; want %s as imgpipe.yaml maps it", ir.Ref, ir.Mirror, want)
		}
		// The signature tags travel with the images, so nodes and `verify --mirror`
		// find them at the mirror.
		if sig := strings.Replace(ir.Digest, ":", "-", 1) + ".sig"; strings.HasPrefix(ir.Ref, "ghcr.io/siderolabs/") && !slices.Contains(ir.Signatures, sig) {
			t.Errorf("mirror report: %s carried signatures %v; want %s", ir.Ref, ir.Signatures, sig)
		}
	}
	for ref, digest := range s.seeded {
		r, _ := registry.ParseRef(ref)
		host := map[string]string{"ghcr.io": s.c1.Host, "registry.k8s.io": s.c2.Host}[r.Upstream]
		if got, err := headDigest(t, host, r.Repository, r.Tag); err != nil || got != digest {
			t.Errorf("mirror of %s (%s): %s, %v; want %s", ref, host, got, err, digest)
		}
	}
	if got, err := headDigest(t, s.plain.Host, "kyverno/kyverno", "v1.15.2"); err != nil || got != s.kyvernoDigest {
		t.Errorf("plain registry kyverno/kyverno:v1.15.2 = %s, %v; want %s (as upstream)", got, err, s.kyvernoDigest)
	}
	if c := catalog(t, s.plain.Host); !slices.Equal(c, []string{"kyverno/kyverno"}) {
		t.Errorf("plain registry holds %v; want only kyverno/kyverno", c)
	}

	// Upload: the ISOs under their content-addressed names, the disk images imported
	// into templates tagged imgpipe.
	s.checkPVE(t, lock)
	var up pipeline.UploadSummary
	decodeSummary(t, first.stage(t, pipeline.StageUpload), &up)
	for _, r := range up.ISOs {
		if r.Action != proxmox.ActionDownloaded || r.Method != proxmox.MethodDownloadURL || r.Bytes != e2eImageSize {
			t.Errorf("upload stage ISO %s: %s by %s, %d bytes; want PVE to download it (%d bytes) from the factory", r.Volume, r.Action, r.Method, r.Bytes, e2eImageSize)
		}
	}
	created := 0
	for _, r := range up.Templates {
		if r.Kind == "template" && r.Action == proxmox.ActionCreated {
			created++
		}
	}
	if len(up.ISOs) != len(lock.Profiles) || created != len(lock.Profiles) {
		t.Errorf("upload stage: %d ISOs, %d templates created; want %d each", len(up.ISOs), created, len(lock.Profiles))
	}

	// 3. A second run with the same arguments changes nothing: every stage after
	// resolve is skipped from the report, no request reaches the factory, a
	// registry or PVE, and the lock, the cache and PVE's state are as they were.
	factoryReqs, pveReqs, hits := len(s.factory.Requests()), len(s.pve.Requests()), s.registryHits()
	vols, vms, cache := s.pve.Volumes(), s.pve.VMs(), files(t, cacheDir)
	second := s.build(t, lockPath, reportPath)
	if second.code != 0 {
		t.Fatalf("second build = exit %d; want 0\nstderr:\n%s", second.code, second.stderr)
	}
	wantSecond := allStages(pipeline.StatusSkipped)
	wantSecond[pipeline.StageResolve] = pipeline.StatusDone
	wantStatuses(t, "second build", second, wantSecond)
	var res pipeline.ResolveSummary
	decodeSummary(t, second.stage(t, pipeline.StageResolve), &res)
	if !res.Unchanged {
		t.Errorf("second build: resolve summary %+v; want unchanged", res)
	}
	if second.rep.LockDigest != first.rep.LockDigest {
		t.Errorf("second build: lock digest %s; want %s", second.rep.LockDigest, first.rep.LockDigest)
	}
	if n := len(s.factory.Requests()); n != factoryReqs {
		t.Errorf("second build sent %d requests to the factory; want 0: %v", n-factoryReqs, s.factory.Requests()[factoryReqs:])
	}
	if n := len(s.pve.Requests()); n != pveReqs {
		t.Errorf("second build sent %d requests to PVE; want 0: %v", n-pveReqs, s.pve.Requests()[pveReqs:])
	}
	for k, n := range s.registryHits() {
		if n != hits[k] {
			t.Errorf("second build sent %d requests to the %s registry; want 0", n-hits[k], k)
		}
	}
	if after, _ := os.ReadFile(lockPath); !bytes.Equal(after, lockBytes) {
		t.Errorf("second build changed the lock:\n%s\nwas:\n%s", after, lockBytes)
	}
	if after := files(t, cacheDir); !mapsEqualTime(after, cache) {
		t.Errorf("second build changed the cache: %v; was %v", after, cache)
	}
	if v, m := s.pve.Volumes(), s.pve.VMs(); !jsonEqual(v, vols) || !jsonEqual(m, vms) {
		t.Errorf("second build changed PVE: volumes %+v VMs %+v; was %+v, %+v", v, m, vols, vms)
	}

	// The stages are idempotent by themselves too: without the report, a rerun reads
	// but transfers nothing (fetch uses the cache, mirror finds everything, upload
	// finds the volumes and templates).
	imageBytes, pveReqs := s.factory.BytesServed(factorytest.RouteImage), len(s.pve.Requests())
	fresh := s.build(t, lockPath, filepath.Join(s.dir, "build-fresh.json"))
	if fresh.code != 0 {
		t.Fatalf("build with a new report = exit %d; want 0\nstderr:\n%s", fresh.code, fresh.stderr)
	}
	wantStatuses(t, "build with a new report", fresh, allStages(pipeline.StatusDone))
	if n := s.factory.BytesServed(factorytest.RouteImage); n != imageBytes {
		t.Errorf("build with a new report downloaded %d image bytes; want 0 (cached)", n-imageBytes)
	}
	var fetched []factory.ArtifactResult
	decodeSummary(t, fresh.stage(t, pipeline.StageFetch), &fetched)
	for _, a := range fetched {
		if a.Action != factory.ActionCached {
			t.Errorf("build with a new report: fetch %s %s = %s; want %s", a.Profile, a.Kind, a.Action, factory.ActionCached)
		}
	}
	var again registry.Report
	decodeSummary(t, fresh.stage(t, pipeline.StageMirror), &again)
	if again.Totals.Copied != 0 || again.Totals.BytesMoved != 0 || again.Totals.Failed != 0 {
		t.Errorf("build with a new report: mirror totals %+v; want nothing copied or moved", again.Totals)
	}
	for _, r := range s.pve.Requests()[pveReqs:] {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("build with a new report sent %s to PVE; want only reads", r)
		}
	}
	if after, _ := os.ReadFile(lockPath); !bytes.Equal(after, lockBytes) {
		t.Errorf("build with a new report changed the lock")
	}

	// 4. An interrupted run resumes: a build for another Talos release, whose first
	// ISO download fails on PVE, exits 1 with the earlier stages done; the rerun
	// skips them and finishes the upload.
	prev := s.resolve(t, "v1.12.10")
	s.seed(t, prev)
	lock2, report2 := filepath.Join(s.dir, "v1.12.10.lock.json"), filepath.Join(s.dir, "build-v1.12.10.json")
	s.pve.Inject(pvetest.Fault{Kind: pvetest.FaultTaskFail, Method: http.MethodPost, Path: "/download-url", Message: "no space left on device"})
	broken := s.build(t, lock2, report2, "--talos", "v1.12.10")
	if broken.code != exitOperational {
		t.Fatalf("build with a failing upload = exit %d; want %d\nstderr:\n%s", broken.code, exitOperational, broken.stderr)
	}
	wantBroken := allStages(pipeline.StatusDone)
	wantBroken[pipeline.StageUpload] = pipeline.StatusFailed
	wantStatuses(t, "build with a failing upload", broken, wantBroken)
	if up := broken.stage(t, pipeline.StageUpload); !strings.Contains(up.Error, "no space left on device") {
		t.Errorf("failed upload stage error = %q; want PVE's task message", up.Error)
	}
	var saved pipeline.Report
	if data, err := os.ReadFile(report2); err != nil || json.Unmarshal(data, &saved) != nil {
		t.Fatalf("interrupted build left no readable report at %s: %v", report2, err)
	}
	if st := saved.Stages[len(saved.Stages)-1]; st.Name != pipeline.StageUpload || st.Status != pipeline.StatusFailed {
		t.Errorf("report file's last stage = %s %s; want upload failed", st.Name, st.Status)
	}
	for _, v := range s.pve.Volumes() {
		if strings.Contains(v.VolID, "-v1.12.10-") && v.Content == "iso" {
			t.Errorf("PVE holds %s after its download failed; want the debris removed", v.VolID)
		}
	}
	hits = s.registryHits()
	schematicPosts := countRequests(s.factory, factorytest.RouteSchematics)
	imageBytes = s.factory.BytesServed(factorytest.RouteImage)
	resumed := s.build(t, lock2, report2, "--talos", "v1.12.10")
	if resumed.code != 0 {
		t.Fatalf("resumed build = exit %d; want 0\nstderr:\n%s", resumed.code, resumed.stderr)
	}
	wantResumed := allStages(pipeline.StatusSkipped)
	wantResumed[pipeline.StageResolve] = pipeline.StatusDone
	wantResumed[pipeline.StageUpload] = pipeline.StatusDone
	wantStatuses(t, "resumed build", resumed, wantResumed)
	for k, n := range s.registryHits() {
		if n != hits[k] {
			t.Errorf("resumed build sent %d requests to the %s registry; want 0 (mirror is done)", n-hits[k], k)
		}
	}
	if n := countRequests(s.factory, factorytest.RouteSchematics); n != schematicPosts {
		t.Errorf("resumed build sent %d schematic requests; want 0 (schematic is done)", n-schematicPosts)
	}
	// The only image bytes the factory serves now are the two ISOs PVE downloads:
	// fetch is not repeated.
	if n := s.factory.BytesServed(factorytest.RouteImage) - imageBytes; n != 2*e2eImageSize {
		t.Errorf("resumed build: the factory served %d image bytes; want %d (two ISOs to PVE, nothing fetched again)", n, 2*e2eImageSize)
	}
	s.checkPVE(t, readLockT(t, lock2))
	if vms := s.pve.VMs(); len(vms) != 2*len(lock.Profiles) {
		t.Errorf("PVE has %d VMs after both releases; want %d templates", len(vms), 2*len(lock.Profiles))
	}
	// A resume that lost the lock file (a CI job that kept only the report) gets the
	// fetched artifacts back from the report instead of writing a lock without them.
	lock2Bytes, err := os.ReadFile(lock2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(lock2); err != nil {
		t.Fatal(err)
	}
	if again := s.build(t, lock2, report2, "--talos", "v1.12.10"); again.code != 0 {
		t.Errorf("build without its lock file = exit %d; want 0\n%s", again.code, again.stderr)
	}
	if after, _ := os.ReadFile(lock2); !bytes.Equal(after, lock2Bytes) {
		t.Errorf("build without its lock file wrote:\n%s\nwant the lock as before:\n%s", after, lock2Bytes)
	}

	// 5. The pull-through caches hold what they were warmed with: with U gone, C1 and
	// C2 still serve every image whole.
	if err := s.up.Stop(); err != nil {
		t.Fatal(err)
	}
	for ref := range s.seeded {
		r, _ := registry.ParseRef(ref)
		host := map[string]string{"ghcr.io": s.c1.Host, "registry.k8s.io": s.c2.Host}[r.Upstream]
		if err := pullAll(t, host, r.Repository, r.Tag); err != nil {
			t.Errorf("pulling %s from its cache %s with the upstream stopped: %v", ref, host, err)
		}
	}
	// ... signatures included: an air-gapped `imgpipe verify --mirror` of the lock passes.
	stdout, stderr, code := runImgpipe(t, s.env(), "verify", "--config", s.config, "--lock", lockPath, "--mirror",
		"--trusted-root", s.trustedRoot, "--factory-key", s.keyFile, "-o", "json")
	var offline verify.Report
	if err := json.Unmarshal([]byte(stdout), &offline); code != 0 || err != nil || offline.Summary.Verified != vrep.Summary.Verified {
		t.Errorf("imgpipe verify --mirror with the upstream stopped = exit %d, summary %+v (%v); want 0 and %d verified\n%s",
			code, offline.Summary, err, vrep.Summary.Verified, stderr)
	}
}

// checkPVE checks that PVE holds every profile's ISO under its content-addressed name
// with the lock's checksum, the decompressed disk image as an import volume, and a
// template tagged imgpipe that imports it.
func (s *e2eSite) checkPVE(t *testing.T, lock *site.Lock) {
	t.Helper()
	vols := map[string]pvetest.Volume{}
	for _, v := range s.pve.Volumes() {
		vols[v.VolID] = v
	}
	for _, p := range lock.Profiles {
		isoName, err1 := proxmox.VolumeName("", lock, &p, "iso")
		rawName, err2 := proxmox.VolumeName("", lock, &p, "raw")
		if err1 != nil || err2 != nil {
			t.Fatalf("proxmox.VolumeName(%s): %v, %v", p.Name, err1, err2)
		}
		var iso site.Artifact
		for _, a := range p.Artifacts {
			if a.Kind == "iso" {
				iso = a
			}
		}
		v, ok := vols["local:iso/"+isoName]
		if !ok {
			t.Errorf("PVE has no local:iso/%s for profile %s; volumes: %v", isoName, p.Name, keys(vols))
		} else if "sha256:"+v.SHA256 != iso.SHA256 || v.Size != iso.Size {
			t.Errorf("PVE %s: sha256 %s size %d; want the lock's %s, %d", v.VolID, v.SHA256, v.Size, iso.SHA256, iso.Size)
		}
		disk := sha256.Sum256(e2eDisk(p.Schematic.ID, lock.Talos))
		imp := "local:import/" + rawName
		if v, ok := vols[imp]; !ok || v.SHA256 != hex.EncodeToString(disk[:]) {
			t.Errorf("PVE import volume %s = %+v (present %v); want the decompressed disk image", imp, v, ok)
		}
		found := false
		for _, vm := range s.pve.VMs() {
			tags := strings.Split(vm.Tags, ";")
			if vm.Template && slices.Contains(tags, proxmox.TagImgpipe) && slices.Contains(tags, proxmox.Tag("talos", lock.Talos)) &&
				slices.Contains(tags, proxmox.Tag("profile", p.Name)) {
				found = true
				if !strings.Contains(vm.Config["scsi0"], "import-from="+imp) {
					t.Errorf("template %d (%s): scsi0 = %q; want it imported from %s", vm.VMID, vm.Name, vm.Config["scsi0"], imp)
				}
			}
		}
		if !found {
			t.Errorf("PVE has no imgpipe template for profile %s, Talos %s: %+v", p.Name, lock.Talos, s.pve.VMs())
		}
	}
}

func countRequests(f *factorytest.Factory, route string) int { return len(f.RequestsFor(route)) }

func keys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

func mapsEqualTime(a, b map[string]time.Time) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || !w.Equal(v) {
			return false
		}
	}
	return true
}

func jsonEqual(a, b any) bool {
	x, _ := json.Marshal(a)
	y, _ := json.Marshal(b)
	return bytes.Equal(x, y)
}
