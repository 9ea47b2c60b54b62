package main

import (
	"encoding/json"
	"fmt"
	"hash/fnv"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// regCheckSite is a lock whose images all come from one upstream registry U (the
// resolved lock with its hosts rewritten to U), mirrored into M: a plain registry
// filled by push, or a pull-through cache of U filled by warm.
type regCheckSite struct {
	*checkSite
	up, mirror *registrytest.Instance
	upHost     string
	env        map[string]string
	seeded     map[string]*registrytest.Image // repo:tag -> what was seeded in U
	journal    string
	extra      []string
	cache      bool
}

// regOpts shape a registry check site.
type regOpts struct {
	cache bool
	// extras adds that many images: lines; total, when set, adds as many as make
	// the mirrored image set that size (the timing run uses it).
	extras, total int
	profiles      string
	// factoryURL and more (YAML appended to imgpipe.yaml) let other checks share the site.
	factoryURL, more string
}

// newRegCheckSite builds the site and mirrors the lock into M.
func newRegCheckSite(t testing.TB, o regOpts) *regCheckSite {
	registrytest.Require(t)
	dir := t.TempDir()
	s := &regCheckSite{cache: o.cache, seeded: map[string]*registrytest.Image{}}
	s.up = registrytest.StartT(t, registrytest.Config{Root: filepath.Join(dir, "upstream")})
	s.upHost = s.up.Host
	mcfg := registrytest.Config{Root: filepath.Join(dir, "mirror")}
	mode := "push"
	if o.cache {
		mcfg.RemoteURL, mode = s.up.URL(), "warm"
	}
	s.mirror = registrytest.StartT(t, mcfg)
	_, pemKey := verifytest.NewKey(t)
	key := filepath.Join(dir, "cosign.pub")
	if err := os.WriteFile(key, pemKey, 0o644); err != nil {
		t.Fatal(err)
	}
	if o.factoryURL == "" {
		o.factoryURL = "http://127.0.0.1:9"
	}
	cfg := fmt.Sprintf("version: 1\ntalos: v1.12.x\nfactory:\n  url: %s\n", o.factoryURL) + o.profiles +
		fmt.Sprintf("registries:\n  insecure: true\n  mirrors:\n    %q:\n      endpoint: http://%s\n      mode: %s\n", s.upHost, s.mirror.Host, mode) +
		fmt.Sprintf("verify:\n  policies:\n    - match: %s/siderolabs/**\n      key: %s\n", s.upHost, key) + o.more
	s.checkSite = newCheckSiteTB(t, cfg)
	s.rehost(t)
	if o.total > 0 {
		set, err := registry.ImageSet(s.lock, nil)
		if err != nil {
			t.Fatal(err)
		}
		mirrored := 0
		for _, im := range set {
			if strings.HasPrefix(im.Ref, s.upHost+"/") {
				mirrored++
			}
		}
		o.extras = max(o.total-mirrored, 0)
	}
	for i := range o.extras {
		s.extra = append(s.extra, fmt.Sprintf("%s/site/extra-%02d:v1", s.upHost, i))
	}
	if len(s.extra) > 0 {
		cfg += "images:\n  - " + strings.Join(s.extra, "\n  - ") + "\n"
		if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s.env = map[string]string{"HOME": s.dir, "XDG_CACHE_HOME": filepath.Join(s.dir, "xdg")}
	s.journal = filepath.Join(s.dir, "xdg", "imgpipe", "warm-journal.json")
	s.seed(t)
	s.mirrorNow(t)
	return s
}

// rehost points every image of the lock at U (factory installers stay where they are:
// no mirror takes them, and check reports them skipped).
func (s *regCheckSite) rehost(t testing.TB) {
	move := func(ref string) string {
		r, err := registry.ParseRef(ref)
		if err != nil {
			t.Fatal(err)
		}
		r.Upstream = s.upHost
		return r.String()
	}
	for i := range s.lock.CoreImages {
		s.lock.CoreImages[i].Ref = move(s.lock.CoreImages[i].Ref)
	}
	for i := range s.lock.Profiles {
		for j := range s.lock.Profiles[i].Extensions {
			e := &s.lock.Profiles[i].Extensions[j]
			e.Ref, e.Digest, e.DigestStatus = move(e.Ref), "", "unknown"
		}
	}
	s.lock.Catalog = move(s.lock.Catalog)
	if err := site.WriteLock(s.lockPath, s.lock); err != nil {
		t.Fatal(err)
	}
}

// seed writes every image of the set into U; Sidero images get a .sig tag.
func (s *regCheckSite) seed(t testing.TB) {
	set, err := registry.ImageSet(s.lock, s.extra)
	if err != nil {
		t.Fatal(err)
	}
	seeder := &registrytest.Seeder{Host: s.up.Host}
	for _, im := range set {
		r, err := registry.ParseRef(im.Ref)
		if err != nil || r.Upstream != s.upHost {
			continue
		}
		h := fnv.New64a()
		h.Write([]byte(im.Ref))
		spec := registrytest.Spec{Repo: r.Repository, Tag: r.Tag, Seed: h.Sum64(), Layers: []int64{2<<10 + int64(h.Sum64()%2048)},
			Shared: []int64{4 << 10}, SharedSeed: 42, Sign: strings.HasPrefix(r.Repository, "siderolabs/")}
		if r.Repository == "siderolabs/kubelet" {
			spec.Platforms = []string{"linux/amd64", "linux/arm64"}
		}
		seeded, err := seeder.Seed(t.Context(), spec)
		if err != nil {
			t.Fatalf("seeding %s: %v", im.Ref, err)
		}
		s.seeded[r.Repository+":"+r.Tag] = seeded
	}
}

// mirrorNow runs imgpipe mirror --pin (the digests land in the lock).
func (s *regCheckSite) mirrorNow(t testing.TB) {
	_, stderr, code := runImgpipeTB(t, s.env, "mirror", "--config", s.config, "--lock", s.lockPath, "--pin")
	if code != 0 {
		t.Fatalf("imgpipe mirror = exit %d\n%s", code, stderr)
	}
	s.lock = readLockTB(t, s.lockPath)
}

func (s *regCheckSite) check(t *testing.T, extra ...string) (check.Report, int, string) {
	t.Helper()
	return checkRun(t, s.env, append([]string{"--config", s.config, "--lock", s.lockPath, "--checks", "registry"}, extra...)...)
}

// image returns a seeded image of the lock by repository (core kubelet, say).
func (s *regCheckSite) image(t *testing.T, repo string) (*registrytest.Image, string) {
	t.Helper()
	for k, im := range s.seeded {
		if strings.HasPrefix(k, repo+":") {
			return im, s.upHost + "/" + k
		}
	}
	t.Fatalf("no seeded image in %s", repo)
	return nil, ""
}

// deleteManifest deletes a manifest by digest at a plain registry (delete is enabled).
func deleteManifest(t *testing.T, host, repo, digest string) {
	t.Helper()
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodDelete, "http://"+host+"/v2/"+repo+"/manifests/"+digest, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("DELETE %s@%s = %s", repo, digest, resp.Status)
	}
}

// TestCheckRegistryPushEndToEnd: a plain registry filled by push is checked with plain
// reads. A deleted image, a deleted signature and a tag moved to another image are
// each reported as exactly that item; imgpipe mirror puts each right.
func TestCheckRegistryPushEndToEnd(t *testing.T) {
	t.Parallel()
	s := newRegCheckSite(t, regOpts{extras: 2, profiles: checkProfiles})
	rep, code, stderr := s.check(t)
	wantClean(t, "after mirror", rep, code, stderr, check.CheckRegistry)
	signed := 0
	for _, it := range rep.Items {
		if it.Kind == "signature" && it.Status == check.OK {
			signed++
		}
		if it.Kind == "image" && it.Status == check.Skipped && !strings.Contains(it.Name, "installer") {
			t.Errorf("%s skipped; only the factory installers have no mirror", it.Name)
		}
	}
	if signed == 0 {
		t.Errorf("no signature item ok: the policy for %s/siderolabs/** was not applied", s.upHost)
	}

	kubelet, kubeletRef := s.image(t, "siderolabs/kubelet")
	mirrorRef := strings.Replace(kubeletRef, s.upHost, s.mirror.Host, 1)
	// 1. The image is deleted from the mirror.
	deleteManifest(t, s.mirror.Host, "siderolabs/kubelet", kubelet.Digest)
	rep, code, stderr = s.check(t)
	wantDrift(t, "kubelet deleted", rep, code, stderr, "registry/image "+kubeletRef+" @"+mirrorRef+": missing")
	s.mirrorNow(t)
	rep, code, stderr = s.check(t)
	wantClean(t, "kubelet mirrored again", rep, code, stderr, check.CheckRegistry)

	// 2. Its signature is deleted.
	sigDigest, err := headDigest(t, s.mirror.Host, "siderolabs/kubelet", strings.Replace(kubelet.Digest, ":", "-", 1)+".sig")
	if err != nil {
		t.Fatal(err)
	}
	deleteManifest(t, s.mirror.Host, "siderolabs/kubelet", sigDigest)
	rep, code, stderr = s.check(t)
	wantDrift(t, "kubelet signature deleted", rep, code, stderr, "registry/signature "+kubeletRef+" @"+mirrorRef+": missing")
	s.mirrorNow(t)
	rep, code, stderr = s.check(t)
	wantClean(t, "signature mirrored again", rep, code, stderr, check.CheckRegistry)

	// 3. The tag of a pinned image is moved to another image at the mirror.
	_, qgaRef := s.image(t, "siderolabs/qemu-guest-agent")
	other := &registrytest.Seeder{Host: s.mirror.Host}
	r, _ := registry.ParseRef(qgaRef)
	if _, err := other.Seed(t.Context(), registrytest.Spec{Repo: r.Repository, Tag: r.Tag, Seed: 999, Layers: []int64{1 << 10}}); err != nil {
		t.Fatal(err)
	}
	rep, code, stderr = s.check(t)
	wantDrift(t, "qemu-guest-agent retagged", rep, code, stderr, "registry/image "+qgaRef+" @"+strings.Replace(qgaRef, s.upHost, s.mirror.Host, 1)+": different")
	s.mirrorNow(t)
	rep, code, stderr = s.check(t, "--deep")
	wantClean(t, "retag undone (deep)", rep, code, stderr, check.CheckRegistry)
}

// ageJournal moves every journal entry of one repository back by d, as if the cache
// had been warmed that long ago.
func ageJournal(t *testing.T, path, prefix string, d time.Duration) int {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Entries map[string]int64 `json:"entries"`
	}
	if err := json.Unmarshal(data, &j); err != nil {
		t.Fatal(err)
	}
	n := 0
	for k, v := range j.Entries {
		if strings.HasPrefix(k, prefix) {
			j.Entries[k] = v - int64(d.Seconds())
			n++
		}
	}
	out, _ := json.Marshal(j)
	if err := os.WriteFile(path, out, 0o644); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestCheckRegistryCacheEndToEnd: a pull-through cache is checked through the warm
// journal and a HEAD by digest, without being filled. An image whose warm is older
// than the cache keeps content is missing, named; warming again clears it. With
// --deep a blob the cache lost is found (and the read refills it).
func TestCheckRegistryCacheEndToEnd(t *testing.T) {
	t.Parallel()
	s := newRegCheckSite(t, regOpts{cache: true, extras: 1, profiles: checkProfiles})
	rep, code, stderr := s.check(t)
	wantClean(t, "after warm", rep, code, stderr, check.CheckRegistry)
	noted := false
	for _, c := range rep.Checks {
		for _, n := range c.Notes {
			noted = noted || strings.Contains(n, "refill")
		}
	}
	if !noted {
		t.Errorf("the registry check does not say that deeper cache checks refill the cache: %+v", rep.Checks)
	}

	// 1. The cache's copy of kubelet expired: its journal entries are 8 days old.
	_, kubeletRef := s.image(t, "siderolabs/kubelet")
	mirrorRef := strings.Replace(kubeletRef, s.upHost, s.mirror.Host, 1)
	if n := ageJournal(t, s.journal, s.mirror.Host+"/siderolabs/kubelet@", 8*24*time.Hour); n == 0 {
		t.Fatalf("the warm journal has no entry for kubelet")
	}
	before := files(t, s.mirror.Root)
	rep, code, stderr = s.check(t)
	wantDrift(t, "kubelet's warm expired", rep, code, stderr, "registry/image "+kubeletRef+" @"+mirrorRef+": missing")
	if after := files(t, s.mirror.Root); len(after) != len(before) {
		t.Errorf("the default check changed the cache's storage: %d files before, %d after", len(before), len(after))
	}
	s.mirrorNow(t)
	rep, code, stderr = s.check(t)
	wantClean(t, "kubelet warmed again", rep, code, stderr, check.CheckRegistry)

	// 2. --deep: a blob is gone from the cache's storage.
	extra, extraRef := s.image(t, "site/extra-00")
	rep, code, stderr = s.check(t, "--deep")
	wantClean(t, "deep, all cached", rep, code, stderr, check.CheckRegistry)
	var layer string
	for _, b := range extra.Blobs {
		if b.Size != 4<<10 { // its own layer, not the one shared with every image
			layer = b.Digest
		}
	}
	hex := strings.TrimPrefix(layer, "sha256:")
	if err := os.RemoveAll(filepath.Join(s.mirror.Root, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex)); err != nil {
		t.Fatal(err)
	}
	rep, code, stderr = s.check(t, "--deep")
	wantDrift(t, "deep, blob lost", rep, code, stderr, "registry/image "+extraRef+" @"+strings.Replace(extraRef, s.upHost, s.mirror.Host, 1)+": missing")
	if it := rep.Drifted()[0]; !strings.Contains(it.Got, layer) {
		t.Errorf("deep check names %q; want the lost blob %s", it.Got, layer)
	}
	// The deep check's read started the cache fetching the blob again.
	for attempt := 0; ; attempt++ {
		rep, code, stderr = s.check(t, "--deep")
		if code == 0 || attempt == 20 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	wantClean(t, "deep, after the refill", rep, code, stderr, check.CheckRegistry)
}
