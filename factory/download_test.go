package factory_test

import (
	"context"
	"crypto/sha256"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

const imageSize = 3<<20 + 4321 // a few chunks, not a multiple of anything

// fetchFixture is a fake factory that knows the qemu schematic, and a client and cache for it.
type fetchFixture struct {
	f     *factorytest.Factory
	c     *factory.Client
	cache factory.Cache
	url   string
	want  factory.Digests
}

func newFetchFixture(t *testing.T, opts factorytest.Options) *fetchFixture {
	t.Helper()
	opts.Catalog = factorytest.ReferenceCatalog()
	if opts.ImageSize == 0 {
		opts.ImageSize = imageSize
	}
	f := factorytest.New(t, opts)
	if _, err := f.AddSchematic(qemuYAML); err != nil {
		t.Fatal(err)
	}
	fx := &fetchFixture{f: f, c: newClient(t, f), cache: factory.Cache{Dir: t.TempDir()},
		url: f.URL() + "/image/" + qemuID + "/v1.9.5/metal-amd64.iso"}
	fx.want = fx.served(t)
	return fx
}

// served hashes what the fake currently serves for the fixture's URL.
func (fx *fetchFixture) served(t *testing.T) factory.Digests {
	t.Helper()
	r, size := fx.f.Image(qemuID, "v1.9.5", "metal-amd64.iso")
	h256, h512 := sha256.New(), sha512.New()
	if _, err := io.Copy(io.MultiWriter(h256, h512), r); err != nil {
		t.Fatal(err)
	}
	return factory.Digests{Size: size, SHA256: "sha256:" + hex.EncodeToString(h256.Sum(nil)), SHA512: "sha512:" + hex.EncodeToString(h512.Sum(nil))}
}

// checkStored asserts the result's file holds exactly the wanted bytes under its content address.
func (fx *fetchFixture) checkStored(t *testing.T, res factory.FetchResult, want factory.Digests) {
	t.Helper()
	if res.Digests != want {
		t.Errorf("Fetch() digests = %+v; want %+v", res.Digests, want)
	}
	if res.File != fx.cache.BlobPath(want.SHA256) {
		t.Errorf("Fetch() file = %s; want %s", res.File, fx.cache.BlobPath(want.SHA256))
	}
	data, err := os.ReadFile(res.File)
	if err != nil {
		t.Fatalf("reading fetched file: %v", err)
	}
	if sum := sha256.Sum256(data); "sha256:"+hex.EncodeToString(sum[:]) != want.SHA256 || int64(len(data)) != want.Size {
		t.Errorf("file %s has %d bytes, sha256 %x; want %d bytes, %s", res.File, len(data), sum, want.Size, want.SHA256)
	}
}

// blobs lists the files under blobs/ (the only place complete artifacts live).
func (fx *fetchFixture) blobs(t *testing.T) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(fx.cache.Dir, "blobs", "sha256", "*"))
	return m
}

func TestFetchFreshThenCached(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	var progress []factory.Progress
	res, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{Progress: func(p factory.Progress) { progress = append(progress, p) }})
	if err != nil {
		t.Fatalf("Fetch() error = %v", err)
	}
	fx.checkStored(t, res, fx.want)
	if res.Transferred != imageSize || res.Cached {
		t.Errorf("Fetch() transferred %d, cached %v; want %d, false", res.Transferred, res.Cached, imageSize)
	}
	if len(progress) == 0 || progress[len(progress)-1].Done != imageSize || progress[len(progress)-1].Total != imageSize {
		t.Errorf("progress = %v; want a last report of %d/%d", progress, imageSize, imageSize)
	}

	// Second run: the cache's record is enough; nothing comes over the wire.
	before := len(fx.f.RequestsFor(factorytest.RouteImage))
	res2, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
	if err != nil {
		t.Fatalf("second Fetch() error = %v", err)
	}
	if !res2.Cached || res2.Transferred != 0 {
		t.Errorf("second Fetch() cached %v, transferred %d; want true, 0", res2.Cached, res2.Transferred)
	}
	if after := len(fx.f.RequestsFor(factorytest.RouteImage)); after != before {
		t.Errorf("second Fetch() made %d image requests; want 0", after-before)
	}
	fx.checkStored(t, res2, fx.want)

	// With the digests from a lock and an empty refs dir, the blob is still found.
	if err := os.RemoveAll(filepath.Join(fx.cache.Dir, "refs")); err != nil {
		t.Fatal(err)
	}
	res3, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{Expect: &fx.want})
	if err != nil || !res3.Cached {
		t.Errorf("Fetch(expect from lock) = cached %v, %v; want cached", res3.Cached, err)
	}
}

func TestFetchReplacesCorruptCache(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		corrupt func(path string) error
	}{
		{name: "flipped byte", corrupt: func(p string) error {
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				return err
			}
			defer f.Close()
			_, err = f.WriteAt([]byte{0xff, 0x00, 0xff}, 12345)
			return err
		}},
		{name: "truncated", corrupt: func(p string) error { return os.Truncate(p, 1000) }},
		{name: "deleted", corrupt: os.Remove},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFetchFixture(t, factorytest.Options{})
			res, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if err := tt.corrupt(res.File); err != nil {
				t.Fatal(err)
			}
			res2, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{Expect: &fx.want})
			if err != nil {
				t.Fatalf("Fetch() over a %s cache error = %v", tt.name, err)
			}
			if res2.Cached || res2.Transferred != imageSize {
				t.Errorf("Fetch() over a %s cache: cached %v, transferred %d; want a full download", tt.name, res2.Cached, res2.Transferred)
			}
			fx.checkStored(t, res2, fx.want)
		})
	}
}

func TestFetchFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		opts       factorytest.Options
		faults     []factorytest.Fault
		wantRanges int // requests carrying a Range header
	}{
		{name: "500 then ok", faults: []factorytest.Fault{{Status: 500}}},
		{name: "429 Retry-After then ok", faults: []factorytest.Fault{{Status: 429, RetryAfter: "0"}}},
		{name: "slow headers", faults: []factorytest.Fault{{Delay: 10e9}}},
		{name: "cut mid-body resumes with Range", faults: []factorytest.Fault{{Cut: true, After: 1<<20 + 17}}, wantRanges: 1},
		{name: "two cuts resume twice", faults: []factorytest.Fault{{Cut: true, After: 100}, {Cut: true, After: 2 << 20}}, wantRanges: 2},
		{name: "stall mid-body resumes with Range", faults: []factorytest.Fault{{Stall: true, After: 5000}}, wantRanges: 1},
		{name: "cut without Range support restarts", opts: factorytest.Options{NoRange: true}, faults: []factorytest.Fault{{Cut: true, After: 2 << 20}}},
		// The redirect answer consumes one fault slot; the cut hits the CDN's body.
		{name: "cut behind a CDN redirect resumes", opts: factorytest.Options{RedirectImages: true}, faults: []factorytest.Fault{{}, {Cut: true, After: 1 << 20}}, wantRanges: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fx := newFetchFixture(t, tt.opts)
			fx.c = newClient(t, fx.f, factory.WithTimeout(300e6))
			fx.f.Inject(factorytest.RouteImage, tt.faults...)
			res, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
			if err != nil {
				t.Fatalf("Fetch() error = %v", err)
			}
			fx.checkStored(t, res, fx.want)
			var ranges int
			for _, r := range fx.f.RequestsFor(factorytest.RouteImage) {
				if r.Range != "" {
					ranges++
					if r.Status != 206 && !(tt.opts.RedirectImages && r.Status == 302) {
						t.Errorf("ranged request %q answered %d; want 206", r.Range, r.Status)
					}
				}
			}
			if ranges != tt.wantRanges {
				t.Errorf("ranged requests = %d; want %d", ranges, tt.wantRanges)
			}
		})
	}
}

func TestFetchPersistentCutLeavesNoFileThenResumes(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	// Every attempt of the first run dies after a little more data.
	fx.f.Inject(factorytest.RouteImage, factorytest.Fault{Cut: true, After: 100_000, Times: fastRetries.Attempts})
	_, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
	if err == nil || !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("Fetch() under persistent cuts error = %v; want an unexpected EOF", err)
	}
	if b := fx.blobs(t); len(b) != 0 {
		t.Errorf("blobs after a failed fetch = %v; want none", b)
	}
	if !strings.Contains(err.Error(), "attempts") {
		t.Errorf("Fetch() error = %q; want it to say how many attempts were made", err)
	}

	// The next run resumes the partial file rather than starting over.
	res, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
	if err != nil {
		t.Fatalf("resumed Fetch() error = %v", err)
	}
	fx.checkStored(t, res, fx.want)
	if res.ResumedAt == 0 || res.Transferred != imageSize-res.ResumedAt {
		t.Errorf("resumed Fetch() resumed at %d, transferred %d; want a resume transferring only the rest", res.ResumedAt, res.Transferred)
	}
}

func TestFetchResumeAfterRebuildRestarts(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	fx.f.Inject(factorytest.RouteImage, factorytest.Fault{Cut: true, After: 100_000, Times: fastRetries.Attempts})
	if _, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{}); err == nil {
		t.Fatal("Fetch() under persistent cuts succeeded; want an error")
	}
	fx.f.Rebuild() // the partial bytes now belong to an old representation
	want := fx.served(t)
	if want.SHA256 == fx.want.SHA256 {
		t.Fatal("Rebuild() did not change the image")
	}
	res, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
	if err != nil {
		t.Fatalf("Fetch() after rebuild error = %v", err)
	}
	fx.checkStored(t, res, want)
	if res.Transferred != imageSize {
		t.Errorf("Fetch() after rebuild transferred %d; want the whole %d (If-Range mismatch)", res.Transferred, imageSize)
	}
}

func TestFetchDigestMismatchStoresNothing(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	lock := fx.want
	fx.f.Rebuild()
	_, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{Expect: &lock})
	if !errors.Is(err, factory.ErrDigestMismatch) {
		t.Fatalf("Fetch(changed upstream) error = %v; want ErrDigestMismatch", err)
	}
	if !strings.Contains(err.Error(), lock.SHA256) {
		t.Errorf("Fetch() error = %q; want it to name the expected digest", err)
	}
	if b := fx.blobs(t); len(b) != 0 {
		t.Errorf("blobs after a mismatch = %v; want none", b)
	}
}

func TestFetchNotFoundIsFinal(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	u := fx.f.URL() + "/image/" + emptyID + "/v1.9.5/metal-amd64.iso" // schematic never posted
	_, err := fx.c.Fetch(t.Context(), fx.cache, u, factory.FetchOptions{})
	var he *factory.HTTPError
	if !errors.As(err, &he) || he.Code != 404 {
		t.Fatalf("Fetch(unknown schematic) error = %v; want HTTP 404", err)
	}
	if n := len(fx.f.RequestsFor(factorytest.RouteImage)); n != 1 {
		t.Errorf("requests = %d; want 1 (404 is not retried)", n)
	}
}

func TestFetchCancelled(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	fx.f.Inject(factorytest.RouteImage, factorytest.Fault{Stall: true, After: 1 << 20})
	ctx, cancel := contextWithCancelOnProgress(t, 1<<20)
	_, err := fx.c.Fetch(ctx, fx.cache, fx.url, factory.FetchOptions{Progress: cancel})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("Fetch(cancelled) error = %v; want context.Canceled (the CLI maps it to exit 130)", err)
	}
	if b := fx.blobs(t); len(b) != 0 {
		t.Errorf("blobs after a cancelled fetch = %v; want none", b)
	}
}

func TestFetchConcurrentRunsShareOneDownload(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	// Slow the first body down so the two runs overlap.
	fx.f.Inject(factorytest.RouteImage, factorytest.Fault{Delay: 200e6})
	results := make(chan error, 2)
	for range 2 {
		go func() {
			res, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
			if err == nil && res.Digests != fx.want {
				err = errors.New("wrong digests " + res.SHA256)
			}
			results <- err
		}()
	}
	for range 2 {
		if err := <-results; err != nil {
			t.Errorf("concurrent Fetch() error = %v", err)
		}
	}
	if got := fx.f.BytesServed(factorytest.RouteImage); got != imageSize {
		t.Errorf("bytes served to two concurrent runs = %d; want one download of %d", got, imageSize)
	}
}
