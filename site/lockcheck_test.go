package site_test

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/testutil"
	"github.com/imgpipe/imgpipe/site"
)

// TestItem6LockValidatedWhenRead is issue 12 items 4, 6 (and 2, 7 at the lock): a lock
// is refused when read, with the field named, if a digest is not a digest, a schematic
// ID is not the hash of its YAML, the Talos version was edited away from the one its
// installer and image URLs carry, a reference disagrees with its digest field, or a URL
// carries credentials (never repeated in the message).
func TestItem6LockValidatedWhenRead(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file, want string
	}{
		{"artifact-path-digest.json", "artifacts[0].sha256"},
		{"schematic-id-edited.json", "schematic YAML hashes to"},
		{"talos-edited.json", "does not name schematic"},
		{"ref-digest-disagree.json", "but the digest field says"},
		{"factory-credentials.json", "credentials"},
	}
	for _, tt := range tests {
		path := filepath.Join("testdata", "invalid-lock", tt.file)
		l, err := site.ReadLock(path)
		if !errors.Is(err, fail.ErrUsage) || !errors.Is(err, site.ErrLockInvalid) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ReadLock(%s) = %v, %v; want a usage error (ErrLockInvalid) containing %q", tt.file, l, err, tt.want)
			continue
		}
		if strings.Contains(err.Error(), "s3cret") {
			t.Errorf("ReadLock(%s) error repeats the password: %v", tt.file, err)
		}
	}
	for _, golden := range []string{"lock-default-v1.9.golden.json", "lock-default-v1.12.golden.json"} {
		if _, err := site.ReadLock(filepath.Join("testdata", golden)); err != nil {
			t.Errorf("ReadLock(%s) = %v; want a resolved lock accepted", golden, err)
		}
	}
}

// TestItem6LockTalosKnownToMatrix: a lock for a release the matrix does not know is
// refused (the version is consistent inside the lock, so only the matrix can tell).
func TestItem6LockTalosKnownToMatrix(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	l := resolveDefault(t, "v1.9.x")
	if err := l.CheckMatrix(m); err != nil {
		t.Errorf("CheckMatrix(resolved lock) = %v; want nil", err)
	}
	l.Talos = "v1.9.99"
	if err := l.CheckMatrix(m); !errors.Is(err, fail.ErrUsage) || !errors.Is(err, site.ErrLockInvalid) {
		t.Errorf("CheckMatrix(talos v1.9.99) = %v; want a usage error", err)
	}
}

// TestImagePins covers the shared merge rule images, mirror and verify apply.
func TestImagePins(t *testing.T) {
	t.Parallel()
	const a, b = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	var p site.ImagePins
	p.Add("x", "GHCR.IO:443/siderolabs/kubelet:v1", "")
	p.Add("y", "ghcr.io/siderolabs/kubelet:v1@"+a, "")
	p.Add("z", "index.docker.io/nginx", "")
	if err := p.Err(); err != nil {
		t.Fatalf("ImagePins.Err() = %v; want nil", err)
	}
	got := p.Images()
	want := []site.PinnedImage{
		{Ref: site.ImageRef{Registry: "ghcr.io", Repository: "siderolabs/kubelet", Tag: "v1", Digest: a}, Fields: []string{"x", "y"}},
		{Ref: site.ImageRef{Registry: "docker.io", Repository: "library/nginx", Tag: "latest"}, Fields: []string{"z"}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ImagePins.Images() = %+v; want %+v", got, want)
	}
	if p.Add("w", "ghcr.io/siderolabs/kubelet:v1", b); p.Err() == nil {
		t.Errorf("ImagePins.Add(second digest for a tag) kept no error")
	}
}

// FuzzParseLock checks the lock reader never panics, classifies every refusal as a
// usage error, and that an accepted lock survives a write and re-read unchanged.
func FuzzParseLock(f *testing.F) {
	testutil.SeedFiles(f, "testdata/*.golden.json", "testdata/invalid-lock/*.json")
	f.Fuzz(func(t *testing.T, data []byte) {
		l, err := site.ParseLock("fuzz.json", data)
		if err != nil {
			if !errors.Is(err, fail.ErrUsage) {
				t.Fatalf("ParseLock = %v; want errors.Is(err, fail.ErrUsage)", err)
			}
			return
		}
		for _, p := range l.Profiles {
			for _, a := range p.Artifacts {
				if site.CheckDigest(a.SHA256) != nil || strings.Contains(a.SHA256, "/") {
					t.Fatalf("ParseLock accepted artifact digest %q", a.SHA256)
				}
			}
		}
		out, err := site.MarshalLock(l)
		if err != nil {
			t.Fatalf("MarshalLock(ParseLock(x)) = %v", err)
		}
		// Compared as written: nil and empty lists encode alike, and that is the contract.
		l2, err := site.ParseLock("fuzz.json", out)
		if err != nil {
			t.Fatalf("ParseLock(MarshalLock(ParseLock(x))) = %v; want the lock accepted again", err)
		}
		if out2, err := site.MarshalLock(l2); err != nil || string(out2) != string(out) {
			t.Fatalf("MarshalLock(ParseLock(MarshalLock(l))) = %s, %v; want %s", out2, err, out)
		}
	})
}

func TestInvalidLockFixturesStayInvalidJSON(t *testing.T) {
	t.Parallel()
	files, _ := filepath.Glob(filepath.Join("testdata", "invalid-lock", "*.json"))
	if len(files) == 0 {
		t.Fatal("no invalid lock fixtures")
	}
	for _, f := range files {
		if data, err := os.ReadFile(f); err != nil || len(data) == 0 {
			t.Errorf("%s: %v", f, err)
		}
	}
}
