package site_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

func resolveDefault(t *testing.T, talos string) *site.Lock {
	t.Helper()
	lock, err := site.Resolve(embeddedMatrix(t), site.DefaultConfig(), site.ResolveOptions{Talos: talos, MatrixName: "embedded"})
	if err != nil {
		t.Fatalf("Resolve(default site, %s) = %v", talos, err)
	}
	return lock
}

// TestMarshalLockGolden pins the lock of the default site at v1.9.x: the JSON contract
// and its deterministic encoding. Run with -update after an intended change.
func TestMarshalLockGolden(t *testing.T) {
	t.Parallel()
	for _, q := range []string{"v1.9.x", "v1.12.x"} {
		got, err := site.MarshalLock(resolveDefault(t, q))
		if err != nil {
			t.Fatalf("MarshalLock = %v", err)
		}
		again, _ := site.MarshalLock(resolveDefault(t, q))
		if !bytes.Equal(got, again) {
			t.Errorf("MarshalLock(Resolve(%s)) differs between two runs", q)
		}
		if !bytes.HasSuffix(got, []byte("}\n")) || bytes.Contains(got, []byte("\\u003e")) {
			t.Errorf("MarshalLock(Resolve(%s)) lacks the trailing newline or escapes HTML", q)
		}
		golden := filepath.Join("testdata", "lock-default-"+strings.TrimSuffix(q, ".x")+".golden.json")
		if *update {
			if err := os.WriteFile(golden, got, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(golden)
		if err != nil {
			t.Fatalf("%v (run go test ./site -run TestMarshalLockGolden -update)", err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("MarshalLock(Resolve(default site, %s)) differs from %s; run with -update if intended", q, golden)
		}
	}
}

func TestParseLockRoundTrip(t *testing.T) {
	t.Parallel()
	lock := resolveDefault(t, "v1.9.x")
	lock.Profiles[0].Artifacts = []site.Artifact{{Kind: "iso", URL: lock.Profiles[0].ISO, File: "/home/runner/.cache/imgpipe/a.iso", Size: 1, SHA256: "x", SHA512: "y"}}
	data, err := site.MarshalLock(lock)
	if err != nil {
		t.Fatal(err)
	}
	back, err := site.ParseLock("imgpipe.lock", data)
	if err != nil {
		t.Fatalf("ParseLock(MarshalLock(lock)) = %v; want nil", err)
	}
	// The local file is this machine's and is never written; everything else round-trips.
	if lock.Profiles[0].Artifacts[0].File == "" || bytes.Contains(data, []byte("a.iso")) {
		t.Errorf("MarshalLock wrote the local file or cleared it in the caller's lock:\n%s", data)
	}
	lock.Profiles[0].Artifacts[0].File = ""
	if !reflect.DeepEqual(back, lock) {
		t.Errorf("ParseLock(MarshalLock(lock)) = %+v; want %+v", back, lock)
	}
}

func TestParseLockErrors(t *testing.T) {
	t.Parallel()
	good, err := site.MarshalLock(resolveDefault(t, "v1.9.x"))
	if err != nil {
		t.Fatal(err)
	}
	s := string(good)
	tests := []struct {
		name, data string
		want       string
	}{
		{"unknown field", strings.Replace(s, `"talos": "v1.9.6"`, `"talos": "v1.9.6", "talso": "v1.9.6"`, 1), "talso"},
		{"unknown nested field", strings.Replace(s, `"platform": "nocloud"`, `"platfrom": "nocloud"`, 1), "platfrom"},
		{"wrong schema", strings.Replace(s, "imgpipe.dev/lock/v1", "imgpipe.dev/lock/v0", 1), "imgpipe.dev/lock/v0"},
		{"no schema", strings.Replace(s, `"schema": "imgpipe.dev/lock/v1",`, "", 1), `schema ""`},
		{"empty talos", strings.Replace(s, `"talos": "v1.9.6"`, `"talos": ""`, 1), "talos is empty"},
		{"wrong type", strings.Replace(s, `"secureboot": false`, `"secureboot": "no"`, 1), "line "},
		{"syntax", s[:len(s)/2], "imgpipe.lock"},
		{"empty", "", "imgpipe.lock"},
		{"trailing data", s + ">>>>>>> theirs\n", "after the lock"},
		{"two locks", s + s, "after the lock"},
	}
	for _, tt := range tests {
		if tt.data == s {
			t.Fatalf("%s: the replacement did not apply", tt.name)
		}
		l, err := site.ParseLock("imgpipe.lock", []byte(tt.data))
		if !errors.Is(err, fail.ErrUsage) {
			t.Errorf("ParseLock(%s) = %v, %v; want fail.ErrUsage", tt.name, l, err)
			continue
		}
		if !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ParseLock(%s) = %q; want it to contain %q", tt.name, err, tt.want)
		}
	}
}

func TestWriteLockReadLock(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "imgpipe.lock")
	lock := resolveDefault(t, "v1.9.x")
	if err := site.WriteLock(path, lock); err != nil {
		t.Fatalf("WriteLock = %v", err)
	}
	back, err := site.ReadLock(path)
	if err != nil || !reflect.DeepEqual(back, lock) {
		t.Errorf("ReadLock(WriteLock(lock)) = %v, %v; want the same lock", back, err)
	}
	if fi, err := os.Stat(path); err != nil || fi.Mode().Perm() != 0o644 {
		t.Errorf("lock mode = %v, %v; want 0644", fi.Mode(), err)
	}
	if _, err := site.ReadLock(filepath.Join(t.TempDir(), "missing.lock")); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("ReadLock(missing) = %v; want fail.ErrUsage", err)
	}
}

func TestWriteFileAtomic(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "imgpipe.lock")
	if err := site.WriteFileAtomic(path, []byte("old\n"), 0o644); err != nil {
		t.Fatalf("WriteFileAtomic(new file) = %v", err)
	}
	if err := site.WriteFileAtomic(path, []byte("new\n"), 0o600); err != nil {
		t.Fatalf("WriteFileAtomic(replace) = %v", err)
	}
	if got, _ := os.ReadFile(path); string(got) != "new\n" {
		t.Errorf("content = %q; want %q", got, "new\n")
	}
	if fi, _ := os.Stat(path); fi.Mode().Perm() != 0o600 {
		t.Errorf("mode = %v; want 0600", fi.Mode().Perm())
	}
	assertNoTemp(t, dir)
}

// TestWriteFileAtomicFailureKeepsOld: a failed write leaves the old file as it was.
func TestWriteFileAtomicFailureKeepsOld(t *testing.T) {
	t.Parallel()
	t.Run("directory not writable", func(t *testing.T) {
		t.Parallel()
		if os.Geteuid() == 0 {
			t.Skip("running as root: a read-only directory does not stop root; the rename case below covers the failure path")
		}
		dir := t.TempDir()
		path := filepath.Join(dir, "imgpipe.lock")
		if err := os.WriteFile(path, []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(dir, 0o500); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Chmod(dir, 0o700) })
		if err := site.WriteFileAtomic(path, []byte("new\n"), 0o644); err == nil {
			t.Fatal("WriteFileAtomic(read-only dir) = nil; want an error")
		}
		if got, _ := os.ReadFile(path); string(got) != "old\n" {
			t.Errorf("after a failed write content = %q; want %q", got, "old\n")
		}
		assertNoTemp(t, dir)
	})
	t.Run("rename fails", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		path := filepath.Join(dir, "imgpipe.lock")
		// A non-empty directory where the file should go: the temp file is written,
		// the rename fails, and what was there stays.
		if err := os.MkdirAll(filepath.Join(path, "keep"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(path, "keep", "old"), []byte("old\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if err := site.WriteFileAtomic(path, []byte("new\n"), 0o644); err == nil || !strings.Contains(err.Error(), path) {
			t.Fatalf("WriteFileAtomic(onto a directory) = %v; want an error naming %s", err, path)
		}
		if got, _ := os.ReadFile(filepath.Join(path, "keep", "old")); string(got) != "old\n" {
			t.Errorf("after a failed write content = %q; want %q", got, "old\n")
		}
		assertNoTemp(t, dir)
	})
	t.Run("directory missing", func(t *testing.T) {
		t.Parallel()
		path := filepath.Join(t.TempDir(), "nope", "imgpipe.lock")
		if err := site.WriteFileAtomic(path, []byte("new\n"), 0o644); err == nil {
			t.Fatal("WriteFileAtomic(missing dir) = nil; want an error")
		}
	})
}

func assertNoTemp(t *testing.T, dir string) {
	t.Helper()
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if strings.Contains(e.Name(), ".tmp-") {
			t.Errorf("temporary file %s left behind", e.Name())
		}
	}
}

func TestDiff(t *testing.T) {
	t.Parallel()
	a, b := resolveDefault(t, "v1.9.x"), resolveDefault(t, "v1.12.x")
	d := site.Diff(a, b)
	if d.From != "v1.9.6" || d.To != "v1.12.11" || len(d.Profiles) != 3 {
		t.Fatalf("Diff = %+v", d)
	}
	worker := d.Profiles[1]
	if worker.Name != "worker" || worker.Status != "changed" || worker.SchematicFrom == worker.SchematicTo {
		t.Errorf("Diff worker = %+v; want changed with a new schematic", worker)
	}
	var kinds []string
	for _, c := range worker.Changes {
		kinds = append(kinds, c.Name+":"+c.Change)
	}
	if want := []string{"siderolabs/qemu-guest-agent:version", "siderolabs/nfs-utils:added"}; !reflect.DeepEqual(kinds, want) {
		t.Errorf("Diff worker changes = %v; want %v", kinds, want)
	}
	// Same lock: nothing changes.
	for _, p := range site.Diff(a, a).Profiles {
		if p.Status != "unchanged" || len(p.Changes) != 0 {
			t.Errorf("Diff(a, a) profile %s = %+v; want unchanged", p.Name, p)
		}
	}
	// Removed extension, removed and added profiles, a digest-only change.
	c := resolveDefault(t, "v1.9.x")
	gpu, _ := c.Profile("gpu")
	gpu.Extensions = gpu.Extensions[:1]
	c.Profiles[0].Extensions[0].Digest = "sha256:" + strings.Repeat("0", 64)
	c.Profiles = append(c.Profiles[:1], c.Profiles[2:]...) // drop worker
	c.Profiles = append(c.Profiles, site.Profile{Name: "storage"})
	d = site.Diff(a, c)
	got := map[string]string{}
	for _, p := range d.Profiles {
		got[p.Name] = p.Status
		for _, ch := range p.Changes {
			got[p.Name+"/"+ch.Name] = ch.Change
		}
	}
	want := map[string]string{
		"controlplane": "changed", "controlplane/siderolabs/qemu-guest-agent": "digest",
		"worker": "removed", "storage": "added", "gpu": "changed",
		"gpu/siderolabs/nvidia-open-gpu-kernel-modules-production": "removed",
		"gpu/siderolabs/qemu-guest-agent":                          "removed",
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("Diff = %v; want %v", got, want)
	}
}
