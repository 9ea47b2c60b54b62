package factory_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

// TestItem4BlobPathConfined is issue 12 item 4 at the cache: a digest is never turned
// into a path unless it is sha256 and 64 hex digits, so Fetch (which removes a corrupt
// blob) cannot hash or remove a file outside blobs/, whatever the lock or refs/ say.
func TestItem4BlobPathConfined(t *testing.T) {
	t.Parallel()
	fx := newFetchFixture(t, factorytest.Options{})
	victim := filepath.Join(filepath.Dir(fx.cache.Dir), filepath.Base(fx.cache.Dir)+"-victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel, _ := filepath.Rel(filepath.Join(fx.cache.Dir, "blobs", "sha256"), victim)
	for _, d := range []string{"sha256:" + rel, "sha256:../../x", "SHA256:AB", "sha256:" + string(make([]byte, 64))} {
		if p := fx.cache.BlobPath(d); p != "" {
			t.Errorf("BlobPath(%q) = %q; want no path", d, p)
		}
		_, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{Expect: &factory.Digests{SHA256: d}})
		if !errors.Is(err, factory.ErrBadDigest) {
			t.Errorf("Fetch(Expect %q) = %v; want ErrBadDigest", d, err)
		}
	}
	if data, err := os.ReadFile(victim); err != nil || string(data) != "precious" {
		t.Errorf("file outside the cache: %q, %v; want it untouched", data, err)
	}
	if n := len(fx.f.RequestsFor(factorytest.RouteImage)); n != 0 {
		t.Errorf("Fetch with a bad digest made %d requests; want 0", n)
	}
}

// TestItem6ResumeAcrossRunsWithoutValidators is issue 12 item 6: the public factory
// sends neither ETag nor Last-Modified, so a partial download used to be resumed only
// within one run. A factory image URL names an immutable file (schematic ID, release,
// file name), so the next run resumes it when the partial file's recorded size and hash
// still match; a partial that changed on disk starts over.
func TestItem6ResumeAcrossRunsWithoutValidators(t *testing.T) {
	t.Parallel()
	for _, tamper := range []bool{false, true} {
		fx := newFetchFixture(t, factorytest.Options{NoValidators: true})
		fx.f.Inject(factorytest.RouteImage, factorytest.Fault{Cut: true, After: 100_000, Times: fastRetries.Attempts})
		if _, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{}); err == nil {
			t.Fatal("Fetch() under persistent cuts succeeded; want an error")
		}
		parts, _ := filepath.Glob(filepath.Join(fx.cache.Dir, "partial", "*.json"))
		if len(parts) != 1 {
			t.Fatalf("partial records = %v; want one beside the partial file", parts)
		}
		if tamper {
			part := strings.TrimSuffix(parts[0], ".json")
			if err := os.WriteFile(part, []byte("not what was downloaded"), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if plan, action, err := fx.c.Plan(t.Context(), fx.cache, fx.url, factory.FetchOptions{}); err != nil ||
			(action == factory.ActionResume) == tamper {
			t.Errorf("Plan(tampered=%v) = %s (%+v), %v; want resume only for an untouched partial", tamper, action, plan, err)
		}
		res, err := fx.c.Fetch(t.Context(), fx.cache, fx.url, factory.FetchOptions{})
		if err != nil {
			t.Fatalf("next run's Fetch() = %v", err)
		}
		fx.checkStored(t, res, fx.want)
		switch {
		case tamper && (res.ResumedAt != 0 || res.Transferred != imageSize):
			t.Errorf("Fetch() over a changed partial resumed at %d, transferred %d; want a fresh %d", res.ResumedAt, res.Transferred, imageSize)
		case !tamper && (res.ResumedAt == 0 || res.Transferred != imageSize-res.ResumedAt):
			t.Errorf("next run resumed at %d, transferred %d; want a resume transferring only the rest", res.ResumedAt, res.Transferred)
		}
	}
}
