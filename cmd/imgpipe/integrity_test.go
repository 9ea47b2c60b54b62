package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/site"
)

// TestItem4LockDigestCannotEscapeTheCache is issue 12 item 4: an artifact digest
// "sha256:../../../victim" made fetch hash a file outside the cache, find a mismatch and
// delete it. The lock is now refused when read (exit 2) and the file is untouched.
func TestItem4LockDigestCannotEscapeTheCache(t *testing.T) {
	t.Parallel()
	f, lock := pushedSite(t, factorytest.Options{})
	root := t.TempDir()
	cache := filepath.Join(root, "cache")
	victim := filepath.Join(root, "victim")
	if err := os.WriteFile(victim, []byte("precious"), 0o644); err != nil {
		t.Fatal(err)
	}
	l := readLockT(t, lock)
	p := &l.Profiles[0]
	p.Artifacts = []site.Artifact{{Kind: "iso", URL: p.ISO, Size: 8, SHA256: "sha256:../../../victim"}}
	if err := site.WriteLock(lock, l); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache, "--artifact", "iso")
	if code != exitUsage || !strings.Contains(stderr, "artifacts[0].sha256") {
		t.Errorf("fetch with a path in the lock's sha256 = exit %d, stderr %q; want %d naming the field", code, stderr, exitUsage)
	}
	if data, err := os.ReadFile(victim); err != nil || string(data) != "precious" {
		t.Errorf("file outside the cache after fetch: %q, %v; want it untouched", data, err)
	}
	if n := len(f.RequestsFor(factorytest.RouteImage)); n != 0 {
		t.Errorf("fetch made %d image requests for an invalid lock; want 0", n)
	}
}

// TestItem5PinnedChecksumIsNeverReplaced is issue 12 item 5: once the lock pins an
// artifact's checksum, a server that returns other bytes for the same file (here another
// factory, through --factory) fails the fetch with exit 3 (an integrity failure, like a
// bad signature: retrying does not help) and stores nothing: the lock keeps its pin and
// no blob of the other bytes lands in the cache.
func TestItem5PinnedChecksumIsNeverReplaced(t *testing.T) {
	t.Parallel()
	_, lock := pushedSite(t, factorytest.Options{})
	cache := t.TempDir()
	if _, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache, "--artifact", "iso"); code != 0 {
		t.Fatalf("first fetch = exit %d; stderr:\n%s", code, stderr)
	}
	pinned, err := os.ReadFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	other := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog(),
		Content: func(_, _, _ string) []byte { return []byte("other bytes for the same file") }})
	if _, err := other.AddSchematic(readLockT(t, lock).Profiles[0].Schematic.YAML); err != nil {
		t.Fatal(err)
	}
	blobs := blobFiles(t, cache)
	fresh := t.TempDir() // no cached copy: the other bytes must be downloaded and refused
	_, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", fresh, "--artifact", "iso", "--factory", other.URL())
	if code != exitPolicy || !strings.Contains(stderr, "does not match the expected digest") {
		t.Errorf("fetch of other bytes = exit %d, stderr %q; want %d and a digest mismatch", code, stderr, exitPolicy)
	}
	if after, _ := os.ReadFile(lock); !bytes.Equal(after, pinned) {
		t.Errorf("fetch of other bytes rewrote the lock:\n%s\nwant the pin kept:\n%s", after, pinned)
	}
	if b := blobFiles(t, fresh); len(b) != 0 {
		t.Errorf("fetch of other bytes stored %v; want nothing", b)
	}
	if b := blobFiles(t, cache); len(b) != len(blobs) {
		t.Errorf("cache blobs = %v; want %v", b, blobs)
	}
}
