package registry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// requestLog is a reverse proxy in front of a registry that records every request as
// "METHOD kind ref status", kind being manifest, blob (blob(range) with a Range header),
// upload, referrers or ping.
type requestLog struct {
	host string
	mu   sync.Mutex
	reqs []string
}

func logRequests(t *testing.T, target string) *requestLog {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	l := &requestLog{}
	rp := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rec := &statusWriter{ResponseWriter: w, status: http.StatusOK}
		rp.ServeHTTP(rec, r)
		l.mu.Lock()
		l.reqs = append(l.reqs, fmt.Sprintf("%s %s %d", r.Method, kindOf(r), rec.status))
		l.mu.Unlock()
	}))
	t.Cleanup(srv.Close)
	rp.ModifyResponse = func(resp *http.Response) error {
		if loc := resp.Header.Get("Location"); loc != "" {
			resp.Header.Set("Location", strings.Replace(loc, u.Host, srv.Listener.Addr().String(), 1))
		}
		return nil
	}
	l.host = srv.Listener.Addr().String()
	return l
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) { w.status = code; w.ResponseWriter.WriteHeader(code) }

// kindOf names what a request addresses; a manifest reference is kept when it is a
// digest ("manifest@sha256:..."), so writes by digest can be told from writes by tag.
func kindOf(r *http.Request) string {
	p := r.URL.Path
	switch {
	case p == "/v2/" || p == "/v2":
		return "ping"
	case strings.Contains(p, "/manifests/"):
		_, ref, _ := strings.Cut(p, "/manifests/")
		if strings.HasPrefix(ref, "sha256:") {
			return "manifest@" + ref
		}
		return "manifest:tag"
	case strings.Contains(p, "/blobs/uploads/"):
		if r.URL.Query().Get("mount") != "" {
			return "upload(mount)"
		}
		return "upload"
	case strings.Contains(p, "/blobs/"):
		if r.Header.Get("Range") != "" {
			return "blob(range)"
		}
		return "blob"
	case strings.Contains(p, "/referrers/"):
		return "referrers"
	}
	return "other"
}

// imagesLock is a lock of the seeded images, each its own role, as pulled from host.
func imagesLock(host string, images []*registrytest.Image) *site.Lock {
	lock := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.5"}
	for _, im := range images {
		lock.CoreImages = append(lock.CoreImages, site.Image{Role: im.Repo, Ref: im.Ref(host), Digest: im.Digest})
	}
	return lock
}

// imageManifests counts the image manifests (not indexes) of the seeded images,
// signature manifests included: Seed lists an index first, before its platforms.
func imageManifests(images []*registrytest.Image) int {
	n := 0
	for _, im := range images {
		n += len(im.Manifests)
		if len(im.Manifests) > 1+len(im.Signatures) {
			n-- // the index
		}
	}
	return n
}

// count is how many requests start with prefix.
func (l *requestLog) count(prefix string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, r := range l.reqs {
		if strings.HasPrefix(r, prefix) {
			n++
		}
	}
	return n
}

func (l *requestLog) reset() {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.reqs = nil
}

// TestPushRequestsPerBlob pins the push's request pattern on a real docker-registry: one
// mount POST per blob and repository (which both asks whether the blob is there and opens
// its upload), no blob HEADs, every manifest written once (the top one only under its
// tag), one referrers probe per upstream; and a rerun writes nothing at all.
func TestPushRequestsPerBlob(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	mirror := registrytest.StartT(t, registrytest.Config{})
	upLog, mirrorLog := logRequests(t, up.URL()), logRequests(t, mirror.URL())
	ps := place(t, imagesLock(upLog.host, images), mirrorCfg(upLog.host, mirrorLog.host, registry.ModePush))
	rep, err := registry.New().Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	perRepo, manifests := 0, 0
	for _, im := range images {
		perRepo += len(im.Blobs)
		manifests += len(im.Manifests)
	}
	unique, _ := uniqueBlobs(images)
	checks := []struct {
		what      string
		got, want int
	}{
		{"blob HEADs at the mirror", mirrorLog.count("HEAD blob"), 0},
		{"mount POSTs (one per blob and repository)", mirrorLog.count("POST upload(mount)"), perRepo},
		{"plain upload POSTs", mirrorLog.count("POST upload "), 0},
		{"blob PUTs (each unique blob once)", mirrorLog.count("PUT upload"), int(unique)},
		{"blobs mounted from another repository", int(rep.Totals.BlobsMounted), perRepo - int(unique)},
		{"manifest PUTs (each manifest once)", mirrorLog.count("PUT manifest"), manifests},
		{"upstream referrers probes", upLog.count("GET referrers"), 1},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %d; want %d", c.what, c.got, c.want)
		}
	}
	for _, im := range images {
		if n := mirrorLog.count("PUT manifest@" + im.Digest); n != 0 {
			t.Errorf("%s: top manifest written %d times by digest; want only under its tag", im.Repo, n)
		}
	}
	checkServes(t, mirror.Host, images)

	mirrorLog.reset()
	if _, err := registry.New().Run(context.Background(), ps); err != nil {
		t.Fatalf("rerun = %v", err)
	}
	for _, m := range []string{"POST", "PUT", "PATCH", "DELETE"} {
		if n := mirrorLog.count(m + " "); n != 0 {
			t.Errorf("rerun: %d %s requests at the mirror; want none", n, m)
		}
	}
}

// TestWarmRerunRechecksByCanary: a warm rerun with the journal asks the cache for one
// blob's first byte per platform of each image and per signature tag, not one per blob, fetches
// no manifest by digest, asks the upstream once for each absent signature tag (never the
// cache), and moves nothing; after one repository is deleted from the cache's storage, the rerun finds out
// through that image's canary and warms that image, and only it, blob by blob again.
func TestWarmRerunRechecksByCanary(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	root := filepath.Join(t.TempDir(), "cache")
	cache := registrytest.StartT(t, registrytest.Config{Root: root, RemoteURL: up.URL()})
	cacheLog := logRequests(t, cache.URL())
	// imgpipe asks the upstream directly only which signature tags exist; the cache
	// fetches from the upstream itself, not through this log.
	upLog := logRequests(t, up.URL())
	ps := place(t, imagesLock(upLog.host, images), mirrorCfg(upLog.host, cacheLog.host, registry.ModeWarm))
	journal := filepath.Join(t.TempDir(), "warm.json")
	m := registry.New(registry.WithJournal(journal, 0), registry.WithBackoff(fastBackoff))
	if _, err := m.Run(context.Background(), ps); err != nil {
		t.Fatalf("first warm = %v", err)
	}
	canaries, blobs := imageManifests(images), 0
	for _, im := range images {
		blobs += len(im.Blobs)
	}

	cacheLog.reset()
	upLog.reset()
	rep, err := m.Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("rerun = %v", err)
	}
	if n := cacheLog.count("GET blob"); n != canaries {
		t.Errorf("rerun: %d blob requests to the cache; want %d (one canary per platform and per signature tag, of %d blobs)", n, canaries, blobs)
	}
	// Which signature tags exist is asked of the upstream, once each; only those that
	// exist are pulled through the cache, and no manifest is fetched by digest.
	present, absent := 0, len(images)*3 // .sig, .att and the referrers tag per image
	for _, im := range images {
		present += len(im.Signatures)
	}
	absent -= present
	if n := upLog.count("HEAD manifest:tag 404"); n != absent {
		t.Errorf("rerun: %d signature tags asked upstream and absent; want %d (each once)", n, absent)
	}
	if n := cacheLog.count("GET manifest:tag"); n != len(images) {
		t.Errorf("rerun: %d tags pulled through the cache; want %d (each image's; a signature tag the upstream still has at a digest warmed whole is not pulled again)", n, len(images))
	}
	if n := cacheLog.count("GET manifest@"); n != 0 {
		t.Errorf("rerun: %d manifests fetched by digest; want 0", n)
	}
	if rep.Totals.BlobsMoved != 0 || rep.Totals.Warmed != len(images) || rep.Totals.Verified != len(images) {
		t.Errorf("rerun: %d blobs moved, %d warmed, %d verified; want 0, %d, %d", rep.Totals.BlobsMoved, rep.Totals.Warmed, rep.Totals.Verified, len(images), len(images))
	}

	// The cache loses one repository (its links; the blobs' data stays, shared by digest).
	lost := images[1]
	if err := os.RemoveAll(filepath.Join(root, "docker/registry/v2/repositories", lost.Repo)); err != nil {
		t.Fatal(err)
	}
	rep, err = m.Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("rerun after a lost repository = %v", err)
	}
	for _, ir := range rep.Images {
		want := ir.Ref == lost.Ref(upLog.host)
		if got := ir.BlobsMoved > 0; got != want {
			t.Errorf("after losing %s: %s moved %d blobs; want some = %v", lost.Repo, ir.Ref, ir.BlobsMoved, want)
		}
	}
	up.Stop()
	checkServes(t, cache.Host, images)
}

// TestWarmFindsSignaturesThroughCacheWhenUpstreamUnreachable: where imgpipe cannot reach
// the upstream itself (only the cache can), a warm run takes one look, then asks for the
// signature tags through the cache, and still carries every one of them.
func TestWarmFindsSignaturesThroughCacheWhenUpstreamUnreachable(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: up.URL()})
	cacheLog := logRequests(t, cache.URL())
	closed, err := registrytest.FreeAddr() // nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	ps := place(t, imagesLock(closed, images), mirrorCfg(closed, cacheLog.host, registry.ModeWarm))
	rep, err := registry.New(registry.WithBackoff(fastBackoff)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("warm with the upstream out of reach = %v", err)
	}
	carried := 0
	for _, ir := range rep.Images {
		carried += len(ir.Signatures)
	}
	want := 0
	for _, im := range images {
		want += len(im.Signatures)
	}
	if carried != want || cacheLog.count("GET manifest:tag 404") == 0 {
		t.Errorf("carried %d signature tags, %d looked up through the cache and absent; want %d and > 0", carried, cacheLog.count("GET manifest:tag 404"), want)
	}
	up.Stop()
	checkServes(t, cache.Host, images)
}

// TestWarmAsksForCachedBlobsOnce: without a journal, a blob the cache already holds
// (warmed by someone else) costs one ranged GET, answered 206 from the cache's storage,
// not a GET of the whole blob and then a poll.
func TestWarmAsksForCachedBlobsOnce(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: up.URL()})
	cacheLog := logRequests(t, cache.URL())
	ps := place(t, imagesLock(up.Host, images), mirrorCfg(up.Host, cacheLog.host, registry.ModeWarm))
	if _, err := registry.New(registry.WithBackoff(fastBackoff)).Run(context.Background(), ps); err != nil {
		t.Fatalf("first warm = %v", err)
	}
	cacheLog.reset()
	rep, err := registry.New(registry.WithBackoff(fastBackoff)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("second warm, no journal = %v", err)
	}
	blobs := 0
	for _, im := range images {
		blobs += len(im.Blobs)
	}
	whole, ranged := cacheLog.count("GET blob "), cacheLog.count("GET blob(range) 206")
	if whole != 0 || ranged != blobs || rep.Totals.Warmed != len(images) {
		t.Errorf("second warm: %d whole-blob GETs, %d ranged GETs answered 206, %d warmed; want 0, %d (one per blob), %d", whole, ranged, rep.Totals.Warmed, blobs, len(images))
	}
}

// TestWarmRerunCatchesOnePlatformRefilled: the cache loses an image and a node of one
// platform pulls it again, which refills that platform's blobs only. The rerun's canary
// for that platform is back, the other platform's is not: the image is warmed again, and
// the cache ends holding both platforms with the upstream stopped. (With one canary per
// image, the refilled platform's canary vouched for the whole image.)
func TestWarmRerunCatchesOnePlatformRefilled(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	root := filepath.Join(t.TempDir(), "cache")
	cache := registrytest.StartT(t, registrytest.Config{Root: root, RemoteURL: up.URL()})
	ps := place(t, imagesLock(up.Host, images), mirrorCfg(up.Host, cache.Host, registry.ModeWarm))
	journal := filepath.Join(t.TempDir(), "warm.json")
	m := registry.New(registry.WithJournal(journal, 0), registry.WithBackoff(fastBackoff))
	if _, err := m.Run(context.Background(), ps); err != nil {
		t.Fatalf("first warm = %v", err)
	}
	im := images[3] // two platforms, signed
	if err := os.RemoveAll(filepath.Join(root, "docker/registry/v2/repositories", im.Repo)); err != nil {
		t.Fatal(err)
	}
	// A node pulls the platform that holds the image's first canary, through the cache.
	canary := firstCanary(t, journal, cache.Host+"/"+im.Repo+"@"+im.Digest)
	get(t, cache.Host, im.Repo, "manifests", im.Tag)
	var pulled []string
	for _, d := range im.Manifests[1:3] {
		body := get(t, up.Host, im.Repo, "manifests", d)
		if !bytes.Contains(body, []byte(canary)) {
			continue
		}
		get(t, cache.Host, im.Repo, "manifests", d)
		mf, err := v1.ParseManifest(bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range append(mf.Layers, mf.Config) {
			get(t, cache.Host, im.Repo, "blobs", l.Digest.String())
			pulled = append(pulled, l.Digest.String())
		}
	}
	if len(pulled) == 0 {
		t.Fatalf("no platform manifest of %s lists the canary %s", im.Repo, canary)
	}
	waitStored(t, cache.Host, im.Repo, pulled)

	rep, err := m.Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("rerun = %v", err)
	}
	for _, ir := range rep.Images {
		if want := ir.Ref == im.Ref(up.Host); (ir.BlobsMoved > 0) != want {
			t.Errorf("after a one-platform refill of %s: %s moved %d blobs; want some = %v", im.Repo, ir.Ref, ir.BlobsMoved, want)
		}
	}
	up.Stop()
	checkServes(t, cache.Host, images)
}

// firstCanary reads the first canary of an image entry from a warm journal file.
func firstCanary(t *testing.T, path, key string) string {
	t.Helper()
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		Images map[string]struct {
			Canaries []string `json:"canaries"`
		} `json:"images"`
	}
	if err := json.Unmarshal(raw, &j); err != nil {
		t.Fatal(err)
	}
	e := j.Images[key]
	if len(e.Canaries) < 2 {
		t.Fatalf("journal entry %s has canaries %v; want one per platform", key, e.Canaries)
	}
	return e.Canaries[0]
}

// waitStored waits until the cache serves every blob from its own storage (206 to a
// ranged GET). Each blob was read whole: its store is already running.
func waitStored(t *testing.T, host, repo string, blobs []string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for _, d := range blobs {
		for {
			req, _ := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/blobs/"+d, nil)
			req.Header.Set("Range", "bytes=0-0")
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode == http.StatusPartialContent {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("cache did not store %s in %s", d, repo)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}
