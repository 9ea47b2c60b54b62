package registry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

func TestRetryable(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  error
		want bool
	}{
		{&transport.Error{StatusCode: http.StatusTooManyRequests}, true},
		{&transport.Error{StatusCode: http.StatusServiceUnavailable}, true},
		{&transport.Error{StatusCode: http.StatusInternalServerError}, true},
		{&transport.Error{StatusCode: http.StatusNotFound}, false},
		{&transport.Error{StatusCode: http.StatusUnauthorized}, false},
		{fmt.Errorf("reading: %w", io.ErrUnexpectedEOF), true},
		{&url.Error{Op: "Get", URL: "http://x", Err: syscall.ECONNRESET}, true},
		{&net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{fmt.Errorf("blob: %w", errShortBlob), true},
		{context.Canceled, false},
		{errors.New("manifest is schema 1"), false},
	}
	for _, tc := range tests {
		if got := retryable(tc.err); got != tc.want {
			t.Errorf("retryable(%v) = %v; want %v", tc.err, got, tc.want)
		}
	}
}

func TestRetryHonoursStepsAndContext(t *testing.T) {
	t.Parallel()
	b := Backoff{Initial: time.Millisecond, Max: 2 * time.Millisecond, Steps: 4}
	var c counters
	calls := 0
	err := retry(context.Background(), b, &c, func() error {
		calls++
		return &transport.Error{StatusCode: http.StatusServiceUnavailable}
	})
	if calls != 4 || c.retries.Load() != 3 || statusOf(err) != http.StatusServiceUnavailable {
		t.Errorf("retry on 503: %d calls, %d retries, err %v; want 4, 3, the 503", calls, c.retries.Load(), err)
	}
	calls = 0
	err = retry(context.Background(), b, &c, func() error {
		calls++
		return &transport.Error{StatusCode: http.StatusNotFound}
	})
	if calls != 1 {
		t.Errorf("retry on 404: %d calls; want 1", calls)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	calls = 0
	err = retry(ctx, Backoff{Initial: time.Hour, Max: time.Hour, Steps: 3}, &c, func() error {
		calls++
		return io.ErrUnexpectedEOF
	})
	if calls != 1 || err == nil {
		t.Errorf("retry with cancelled ctx: %d calls, %v; want 1 call and an error", calls, err)
	}
}

func TestJournalRoundTripAndExpiry(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "sub", "warm.json")
	j, err := loadJournal(path, time.Hour, time.Now())
	if err != nil {
		t.Fatalf("loadJournal(missing) = %v; want an empty journal", err)
	}
	j.add("h/r@sha256:1")
	if err := j.save(); err != nil {
		t.Fatalf("save = %v", err)
	}
	j2, err := loadJournal(path, time.Hour, time.Now())
	if err != nil || !j2.fresh("h/r@sha256:1") || j2.fresh("h/r@sha256:2") {
		t.Errorf("reloaded journal fresh(1)=%v fresh(2)=%v err=%v; want true, false, nil", j2.fresh("h/r@sha256:1"), j2.fresh("h/r@sha256:2"), err)
	}
	later, err := loadJournal(path, time.Hour, time.Now().Add(2*time.Hour))
	if err != nil || later.fresh("h/r@sha256:1") {
		t.Errorf("journal after the cache TTL: fresh = %v (%v); want expired", later.fresh("h/r@sha256:1"), err)
	}
}

// TestJournalImageEntries: an image entry lives as long as its dated entry, and one whose
// canaries are not all digests (they go into URL paths), or that has none, or more of
// them than blobs, is dropped when the journal is read.
func TestJournalImageEntries(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "warm.json")
	amd, arm := "sha256:"+strings.Repeat("ab", 32), "sha256:"+strings.Repeat("cd", 32)
	now := time.Now().Unix()
	j := newJournal(path, time.Hour, time.Now())
	entries := map[string]struct {
		when int64
		e    imageEntry
		keep bool
	}{
		"h/r@sha256:good":  {now, imageEntry{Canaries: []string{amd, arm}, Blobs: 6}, true},
		"h/r@sha256:old":   {now - 7200, imageEntry{Canaries: []string{amd}, Blobs: 3}, false},
		"h/r@sha256:path":  {now, imageEntry{Canaries: []string{amd, "../../v2/other/blobs/x"}, Blobs: 6}, false},
		"h/r@sha256:none":  {now, imageEntry{Blobs: 3}, false},
		"h/r@sha256:empty": {now, imageEntry{Canaries: []string{amd, arm}, Blobs: 1}, false},
	}
	for key, x := range entries {
		j.addImage(key, x.when, x.e)
	}
	if err := j.save(); err != nil {
		t.Fatal(err)
	}
	got, err := loadJournal(path, time.Hour, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	for key, x := range entries {
		if e, ok := got.image(key); ok != x.keep || ok && !slices.Equal(e.Canaries, x.e.Canaries) {
			t.Errorf("image(%q) = %+v, %v; want present = %v", key, e, ok, x.keep)
		}
	}
}

// TestPushInMemory runs push mode between two ggcr in-memory registries, with a faulty
// proxy in front of the upstream; it needs no docker-registry binary.
func TestPushInMemory(t *testing.T) {
	t.Parallel()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	up := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(up.Close)
	dst := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(dst.Close)
	upHost, dstHost := up.Listener.Addr().String(), dst.Listener.Addr().String()

	s := &registrytest.Seeder{Host: upHost}
	im, err := s.Seed(context.Background(), registrytest.Spec{Repo: "siderolabs/installer", Tag: "v1.9.5",
		Platforms: []string{"linux/amd64", "linux/arm64"}, Layers: []int64{64 << 10}, Seed: 9, Sign: true})
	if err != nil {
		t.Fatal(err)
	}
	f := &registrytest.Faults{}
	f.Throttle.Store(2)
	f.CutBlobs.Store(1)
	h, err := registrytest.FaultProxy(up.URL, f)
	if err != nil {
		t.Fatal(err)
	}
	faulty := httptest.NewServer(h)
	t.Cleanup(faulty.Close)
	faultyHost := faulty.Listener.Addr().String()

	ps := placeOne(t, "installer", faultyHost, im, dstHost, "")
	rep, err := New(WithBackoff(Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Steps: 6})).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	ir := rep.Images[0]
	if ir.Mode != ModePush || ir.Status != StatusCopied || !ir.Verified || len(ir.Signatures) != 1 {
		t.Errorf("image report = %+v; want auto->push, copied, verified, one signature", ir)
	}
	if f.Injected.Load() != 3 || rep.Totals.Retries < 3 {
		t.Errorf("faults %d, retries %d; want 3 and >= 3", f.Injected.Load(), rep.Totals.Retries)
	}
	// The mirror resolves the tag to the upstream's index digest.
	req, _ := http.NewRequest(http.MethodHead, "http://"+dstHost+"/v2/"+im.Repo+"/manifests/"+im.Tag, nil)
	req.Header.Set("Accept", registrytest.OCIIndex)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if got := resp.Header.Get("Docker-Content-Digest"); got != im.Digest {
		t.Errorf("mirror digest = %q; want %q", got, im.Digest)
	}
}

// TestPushBoundsConcurrencyPerRegistry counts blob uploads in flight at the mirror.
func TestPushBoundsConcurrencyPerRegistry(t *testing.T) {
	t.Parallel()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	up := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(up.Close)
	var inflight, peak atomic.Int32
	inner := ggcrregistry.New(quiet)
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/blobs/uploads/") {
			n := inflight.Add(1)
			defer inflight.Add(-1)
			for {
				p := peak.Load()
				if n <= p || peak.CompareAndSwap(p, n) {
					break
				}
			}
			time.Sleep(5 * time.Millisecond) // keep uploads overlapping
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(dst.Close)
	upHost, dstHost := up.Listener.Addr().String(), dst.Listener.Addr().String()
	s := &registrytest.Seeder{Host: upHost}
	lock := &site.Lock{}
	for i := range 6 {
		im, err := s.Seed(context.Background(), registrytest.Spec{Repo: fmt.Sprintf("app/%d", i), Tag: "v1",
			Platforms: []string{"linux/amd64", "linux/arm64"}, Layers: []int64{8 << 10, 8 << 10}, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		lock.CoreImages = append(lock.CoreImages, site.Image{Role: "app", Ref: upHost + "/" + im.Repo + ":v1", Digest: im.Digest})
	}
	set, _ := ImageSet(lock, nil)
	m, _ := NewEndpointMap(site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{upHost: {Endpoint: "http://" + dstHost, Mode: "push"}}})
	ps, _ := Place(set, m)
	const jobs = 2
	rep, err := New(WithJobs(jobs)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if rep.Totals.Copied != 6 {
		t.Errorf("copied = %d; want 6", rep.Totals.Copied)
	}
	if p := peak.Load(); p < 1 || p > jobs {
		t.Errorf("peak concurrent blob uploads = %d; want 1..%d (--jobs)", p, jobs)
	}
}

// TestPushFallsBackWhenMountRefused: a mirror that refuses cross-repository mounts
// (a token not scoped for the other repository) still gets the shared blob, uploaded.
func TestPushFallsBackWhenMountRefused(t *testing.T) {
	t.Parallel()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	up := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(up.Close)
	inner := ggcrregistry.New(quiet)
	var refused atomic.Int32
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
			refused.Add(1)
			http.Error(w, `{"errors":[{"code":"DENIED","message":"no pull scope on from"}]}`, http.StatusForbidden)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(dst.Close)
	ps := sharedLayerPush(t, up.Listener.Addr().String(), dst.Listener.Addr().String())
	rep, err := New(WithJobs(1)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if refused.Load() == 0 || rep.Totals.BlobsMounted != 0 || rep.Totals.Verified != 2 {
		t.Errorf("mounts refused %d, mounted %d, verified %d; want > 0, 0, 2", refused.Load(), rep.Totals.BlobsMounted, rep.Totals.Verified)
	}
}

// TestPushWritesTagLast records the mirror's writes: for each repository the tag comes
// after every blob and every manifest by digest, so a tag never names missing content.
func TestPushWritesTagLast(t *testing.T) {
	t.Parallel()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	up := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(up.Close)
	inner := ggcrregistry.New(quiet)
	var mu sync.Mutex
	var writes []string // "repo kind ref"
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPut {
			path := strings.TrimPrefix(r.URL.Path, "/v2/")
			kind := "blob"
			repo, ref, ok := strings.Cut(path, "/manifests/")
			if ok {
				kind = "manifest"
				if !strings.HasPrefix(ref, "sha256:") {
					kind = "tag"
				}
			} else {
				repo, _, _ = strings.Cut(path, "/blobs/uploads/")
				ref = r.URL.Query().Get("digest")
			}
			mu.Lock()
			writes = append(writes, repo+" "+kind+" "+ref)
			mu.Unlock()
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(dst.Close)
	upHost, dstHost := up.Listener.Addr().String(), dst.Listener.Addr().String()
	s := &registrytest.Seeder{Host: upHost}
	im, err := s.Seed(context.Background(), registrytest.Spec{Repo: "siderolabs/installer", Tag: "v1.9.5",
		Platforms: []string{"linux/amd64", "linux/arm64"}, Layers: []int64{8 << 10, 8 << 10}, Seed: 3, Sign: true, Attest: true})
	if err != nil {
		t.Fatal(err)
	}
	ps := placeOne(t, "installer", upHost, im, dstHost, "push")
	if _, err := New().Run(context.Background(), ps); err != nil {
		t.Fatalf("Run = %v", err)
	}
	tagAt := -1
	for i, w := range writes {
		if w == im.Repo+" tag "+im.Tag {
			tagAt = i
		}
	}
	if tagAt < 0 {
		t.Fatalf("writes = %v; want the tag %s written", writes, im.Tag)
	}
	// Everything of the image itself (not its signature tags, which follow) precedes the
	// tag; the index is written once, under the tag (which stores it by digest too).
	need := map[string]bool{}
	for _, d := range im.Manifests[1:3] { // the two platform manifests
		need[im.Repo+" manifest "+d] = true
	}
	for _, b := range im.Blobs[:len(im.Blobs)-4] { // minus the two signature artefacts' blobs
		need[im.Repo+" blob "+b.Digest] = true
	}
	for _, w := range writes[:tagAt] {
		delete(need, w)
	}
	if len(need) > 0 {
		t.Errorf("written after the tag or never: %v (writes %v)", need, writes)
	}
	for _, w := range writes {
		if w == im.Repo+" manifest "+im.Digest {
			t.Errorf("index written by digest as well as under its tag: writes %v", writes)
		}
	}
}

// TestAutoDryRunDoesNotProbe: the auto probe opens an upload session, a mutation; a dry
// run must plan with reads only, for an endpoint that has the image and one that has not.
func TestAutoDryRunDoesNotProbe(t *testing.T) {
	t.Parallel()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	up := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(up.Close)
	var writes atomic.Int32
	mem := ggcrregistry.New(quiet)
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			writes.Add(1)
		}
		mem.ServeHTTP(w, r)
	}))
	t.Cleanup(dst.Close)
	upHost, dstHost := up.Listener.Addr().String(), dst.Listener.Addr().String()
	s := &registrytest.Seeder{Host: upHost}
	im, err := s.Seed(context.Background(), registrytest.Spec{Repo: "siderolabs/kubelet", Tag: "v1.32.4",
		Platforms: []string{"linux/amd64"}, Layers: []int64{4 << 10}, Seed: 3})
	if err != nil {
		t.Fatal(err)
	}
	ps := placeOne(t, "kubelet", upHost, im, dstHost, "")
	rep, err := New(WithDryRun(true)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("dry Run = %v", err)
	}
	if n := writes.Load(); n != 0 {
		t.Errorf("auto dry run sent %d non-read requests to the mirror; want 0", n)
	}
	if got := rep.Images[0].Status; got != StatusPlanned {
		t.Errorf("auto dry run image status = %s; want %s", got, StatusPlanned)
	}
	if rep.Endpoints[0].Mode != ModeAuto || rep.Endpoints[0].Note == "" {
		t.Errorf("auto dry run endpoint = %+v; want mode auto with a note that it was not probed", rep.Endpoints[0])
	}
}

// placeOne places the seeded image im, read from upstream host up, on the mirror at dst.
func placeOne(t *testing.T, role, up string, im *registrytest.Image, dst, mode string) []Placement {
	t.Helper()
	lock := &site.Lock{CoreImages: []site.Image{{Role: role, Ref: up + "/" + im.Repo + ":" + im.Tag, Digest: im.Digest}}}
	set, err := ImageSet(lock, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewEndpointMap(site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{up: {Endpoint: "http://" + dst, Mode: mode}}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Place(set, m)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}

// sharedLayerPush seeds two images that share a base layer on upHost and places them
// for a push to dstHost, one after the other (the second can mount the shared blob).
func sharedLayerPush(t *testing.T, upHost, dstHost string) []Placement {
	t.Helper()
	s := &registrytest.Seeder{Host: upHost}
	lock := &site.Lock{}
	for i := range 2 {
		im, err := s.Seed(context.Background(), registrytest.Spec{Repo: fmt.Sprintf("app/%d", i), Tag: "v1",
			Shared: []int64{32 << 10}, SharedSeed: 5, Layers: []int64{8 << 10}, Seed: uint64(i)})
		if err != nil {
			t.Fatal(err)
		}
		lock.CoreImages = append(lock.CoreImages, site.Image{Role: "app", Ref: upHost + "/" + im.Repo + ":v1", Digest: im.Digest})
	}
	set, err := ImageSet(lock, nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewEndpointMap(site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{upHost: {Endpoint: "http://" + dstHost, Mode: "push"}}})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Place(set, m)
	if err != nil {
		t.Fatal(err)
	}
	return ps
}
