package factory_test

import (
	"errors"
	"os"
	"path/filepath"
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
		if p, err := fx.cache.BlobPath(d); !errors.Is(err, factory.ErrBadDigest) {
			t.Errorf("BlobPath(%q) = %q, %v; want ErrBadDigest", d, p, err)
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
