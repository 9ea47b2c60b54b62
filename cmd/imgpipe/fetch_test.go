package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/site"
)

// pushedSite is fakeSite with the schematic already pushed, so images resolve.
func pushedSite(t *testing.T, opts factorytest.Options) (*factorytest.Factory, string) {
	t.Helper()
	f, lock := fakeSite(t, opts)
	if _, stderr, code := runImgpipe(t, nil, "schematic", "push", "--lock", lock); code != 0 {
		t.Fatalf("schematic push = exit %d; stderr:\n%s", code, stderr)
	}
	return f, lock
}

func blobFiles(t *testing.T, cache string) []string {
	t.Helper()
	m, _ := filepath.Glob(filepath.Join(cache, "blobs", "sha256", "*"))
	return m
}

func TestFetchEndToEnd(t *testing.T) {
	t.Parallel()
	f, lock := pushedSite(t, factorytest.Options{ImageSize: 2<<20 + 99})
	cache := t.TempDir()
	// The first download of the ISO is cut mid-body and resumed with Range.
	f.Inject(factorytest.RouteImage, factorytest.Fault{Cut: true, After: 1<<20 + 5})

	stdout, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache, "-o", "json")
	if code != 0 {
		t.Fatalf("fetch = exit %d; want 0; stderr:\n%s", code, stderr)
	}
	var results []factory.ArtifactResult
	if err := json.Unmarshal([]byte(stdout), &results); err != nil {
		t.Fatalf("fetch -o json: %v\n%s", err, stdout)
	}
	if len(results) != 2 {
		t.Fatalf("fetch results = %d; want 2 (iso and disk)", len(results))
	}
	l := readLockT(t, lock)
	p := l.Profiles[0]
	if len(p.Artifacts) != 2 || p.Artifacts[0].Kind != "disk" || p.Artifacts[1].Kind != "iso" {
		t.Fatalf("lock artifacts = %+v; want disk and iso", p.Artifacts)
	}
	for _, a := range p.Artifacts {
		path := strings.TrimPrefix(a.URL, f.URL()+"/image/"+qemuSchematicID+"/v1.9.5/")
		if want := f.ImageSHA256(qemuSchematicID, "v1.9.5", path); a.SHA256 != want {
			t.Errorf("lock %s sha256 = %s; want %s", a.Kind, a.SHA256, want)
		}
		// The lock holds digests, never this machine's cache path.
		if a.Size != 2<<20+99 || !strings.HasPrefix(a.SHA512, "sha512:") || a.File != "" {
			t.Errorf("lock %s artifact = %+v; want size, sha512 and no local file", a.Kind, a)
		}
	}
	ranged := 0
	for _, r := range f.RequestsFor(factorytest.RouteImage) {
		if r.Range != "" {
			ranged++
		}
	}
	if ranged != 1 {
		t.Errorf("ranged image requests = %d; want 1 (the resume)", ranged)
	}
	if !strings.Contains(stderr, "fetched worker nocloud-amd64.iso") {
		t.Errorf("fetch stderr = %q; want plain progress lines (not a TTY)", stderr)
	}

	// A second run transfers nothing.
	served := f.BytesServed(factorytest.RouteImage)
	stdout, stderr, code = runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache)
	if code != 0 {
		t.Fatalf("second fetch = exit %d; stderr:\n%s", code, stderr)
	}
	if got := f.BytesServed(factorytest.RouteImage); got != served {
		t.Errorf("second fetch transferred %d bytes; want 0", got-served)
	}
	if strings.Count(stdout, "cached") != 2 {
		t.Errorf("second fetch stdout = %q; want both artifacts cached", stdout)
	}

	// A corrupt cached file is detected and fetched again; the lock keeps its digests.
	iso := l.Profiles[0].Artifacts[1]
	if err := os.WriteFile(filepath.Join(cache, "blobs", "sha256", strings.TrimPrefix(iso.SHA256, "sha256:")), []byte("not an iso"), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code = runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache, "--artifact", "iso")
	if code != 0 {
		t.Fatalf("fetch over a corrupt cache = exit %d; stderr:\n%s", code, stderr)
	}
	if !strings.Contains(stdout, "re-fetched") {
		t.Errorf("fetch stdout = %q; want the ISO re-fetched", stdout)
	}
	isoFile := filepath.Join(cache, "blobs", "sha256", strings.TrimPrefix(iso.SHA256, "sha256:"))
	data, err := os.ReadFile(isoFile)
	if err != nil || int64(len(data)) != iso.Size {
		t.Errorf("re-fetched %s: %d bytes, %v; want %d", isoFile, len(data), err, iso.Size)
	}
	if after := readLockT(t, lock); after.Profiles[0].Artifacts[1] != iso {
		t.Errorf("lock ISO after repair = %+v; want unchanged %+v", after.Profiles[0].Artifacts[1], iso)
	}
}

func TestFetchFailuresLeaveNoFile(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		push     bool
		faults   []factorytest.Fault
		args     []string
		wantCode int
		wantErr  string
	}{
		{name: "connection cut on every attempt", push: true, faults: []factorytest.Fault{{Cut: true, After: 1000, Times: 100}},
			args: []string{"--retries", "1"}, wantCode: 1, wantErr: "unexpected EOF"},
		{name: "stalls past the timeout", push: true, faults: []factorytest.Fault{{Stall: true, After: 1000, Times: 100}},
			args: []string{"--retries", "1", "--timeout", "100ms"}, wantCode: 1, wantErr: "no data for 100ms"},
		{name: "500 on every attempt", push: true, faults: []factorytest.Fault{{Status: 500, Times: 100}},
			args: []string{"--retries", "1"}, wantCode: 1, wantErr: "HTTP 500"},
		{name: "schematic never pushed", wantCode: 1, wantErr: "HTTP 404"},
		{name: "bad artifact kind", wantCode: 2, args: []string{"--artifact", "pxe"}, wantErr: `"pxe"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			var (
				f    *factorytest.Factory
				lock string
			)
			if tt.push {
				f, lock = pushedSite(t, factorytest.Options{})
			} else {
				f, lock = fakeSite(t, factorytest.Options{})
			}
			f.Inject(factorytest.RouteImage, tt.faults...)
			before, err := os.ReadFile(lock)
			if err != nil {
				t.Fatal(err)
			}
			cache := t.TempDir()
			_, stderr, code := runImgpipe(t, nil, append([]string{"fetch", "--lock", lock, "--cache-dir", cache, "--artifact", "iso"}, tt.args...)...)
			if code != tt.wantCode {
				t.Fatalf("fetch (%s) = exit %d; want %d; stderr:\n%s", tt.name, code, tt.wantCode, stderr)
			}
			if !strings.Contains(stderr, tt.wantErr) {
				t.Errorf("fetch (%s) stderr = %q; want it to contain %q", tt.name, stderr, tt.wantErr)
			}
			if b := blobFiles(t, cache); len(b) != 0 {
				t.Errorf("fetch (%s) left files under blobs/: %v", tt.name, b)
			}
			if after, _ := os.ReadFile(lock); !bytes.Equal(after, before) {
				t.Errorf("fetch (%s) changed the lock", tt.name)
			}
		})
	}
}

func TestFetchDefaultCacheDir(t *testing.T) {
	t.Parallel()
	f, lock := pushedSite(t, factorytest.Options{})
	xdg := t.TempDir()
	_, stderr, code := runImgpipe(t, map[string]string{"XDG_CACHE_HOME": xdg}, "fetch", "--lock", lock, "--artifact", "disk", "--factory", f.URL())
	if code != 0 {
		t.Fatalf("fetch = exit %d; stderr:\n%s", code, stderr)
	}
	if b := blobFiles(t, filepath.Join(xdg, "imgpipe")); len(b) != 1 {
		t.Errorf("files in $XDG_CACHE_HOME/imgpipe = %v; want the disk image", b)
	}
}

func TestProgressPlainLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf)
	now := time.Unix(0, 0)
	p.now = func() time.Time { return now }
	for done := int64(0); done <= 100; done++ {
		if done == 100 {
			now = now.Add(2 * time.Second)
		}
		p.report("worker metal-amd64.iso", factory.Progress{Phase: "download", Done: done << 20, Total: 100 << 20})
	}
	p.finish("worker metal-amd64.iso", factory.ArtifactResult{FetchResult: factory.FetchResult{Digests: factory.Digests{Size: 100 << 20}, Transferred: 100 << 20}})
	lines := strings.Split(strings.TrimSpace(buf.String()), "\n")
	if len(lines) != 12 { // 0%,10%,...,100% and the summary
		t.Errorf("progress lines = %d; want 12:\n%s", len(lines), buf.String())
	}
	if last := lines[len(lines)-1]; last != "fetched worker metal-amd64.iso (100.0 MiB, 50.0 MiB/s)" {
		t.Errorf("summary = %q; want %q", last, "fetched worker metal-amd64.iso (100.0 MiB, 50.0 MiB/s)")
	}
	if strings.Contains(buf.String(), "\r") {
		t.Errorf("plain progress contains carriage returns: %q", buf.String())
	}
}

func TestFetchFactoryOverrideRebasesURLs(t *testing.T) {
	t.Parallel()
	f, lock := pushedSite(t, factorytest.Options{})
	// The lock was resolved against another factory (say, the public one).
	l := readLockT(t, lock)
	const other = "https://factory.example.invalid"
	l.Factory = other
	p := &l.Profiles[0]
	p.ISO = strings.Replace(p.ISO, f.URL(), other, 1)
	p.DiskImage = strings.Replace(p.DiskImage, f.URL(), other, 1)
	if err := site.WriteLock(lock, l); err != nil {
		t.Fatal(err)
	}
	cache := t.TempDir()
	if _, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache, "--artifact", "iso", "--factory", f.URL()); code != 0 {
		t.Fatalf("fetch --factory = exit %d; stderr:\n%s", code, stderr)
	}
	// The download goes to the override; the lock keeps its own URL (the override is
	// this runner's route, and a committed lock must not depend on it).
	got := readLockT(t, lock).Profiles[0].Artifacts
	if len(got) != 1 || got[0].URL != p.ISO || got[0].SHA256 == "" || got[0].File != "" {
		t.Errorf("artifacts after fetch --factory = %+v; want the ISO recorded at %s with its digest and no local file", got, p.ISO)
	}
	if n := len(f.RequestsFor(factorytest.RouteImage)); n == 0 {
		t.Errorf("fetch --factory made no image request to the override factory")
	}
}

func TestBar(t *testing.T) {
	t.Parallel()
	tests := []struct {
		done, total int64
		want        string
	}{
		{0, 100 << 20, "[>         ]   0% 0 B/100.0 MiB"},
		{50 << 20, 100 << 20, "[=====>    ]  50% 50.0 MiB/100.0 MiB"},
		{100 << 20, 100 << 20, "[==========] 100% 100.0 MiB/100.0 MiB"},
		{1234, -1, "1.2 KiB"},
	}
	for _, tt := range tests {
		if got := bar(tt.done, tt.total, 10); got != tt.want {
			t.Errorf("bar(%d, %d, 10) = %q; want %q", tt.done, tt.total, got, tt.want)
		}
	}
}

func TestFetchDryRun(t *testing.T) {
	t.Parallel()
	f, lock := pushedSite(t, factorytest.Options{})
	cache := t.TempDir()
	before, err := os.ReadFile(lock)
	if err != nil {
		t.Fatal(err)
	}
	plan := func() map[string]factory.ArtifactResult {
		t.Helper()
		stdout, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache, "--dry-run", "-o", "json")
		if code != 0 {
			t.Fatalf("fetch --dry-run = exit %d; stderr:\n%s", code, stderr)
		}
		var rs []factory.ArtifactResult
		if err := json.Unmarshal([]byte(stdout), &rs); err != nil {
			t.Fatalf("fetch --dry-run -o json: %v\n%s", err, stdout)
		}
		out := map[string]factory.ArtifactResult{}
		for _, r := range rs {
			if !r.Planned {
				t.Errorf("fetch --dry-run result %+v is not marked planned", r)
			}
			out[r.Kind] = r
		}
		return out
	}
	got := plan()
	if got["iso"].Action != factory.ActionDownload || got["disk"].Action != factory.ActionDownload {
		t.Errorf("fetch --dry-run on an empty cache = %+v; want both downloads", got)
	}
	if n := len(f.RequestsFor(factorytest.RouteImage)); n != 0 {
		t.Errorf("fetch --dry-run made %d image requests; want 0", n)
	}
	if after, _ := os.ReadFile(lock); !bytes.Equal(after, before) {
		t.Errorf("fetch --dry-run changed the lock")
	}
	if entries, _ := os.ReadDir(cache); len(entries) != 0 {
		t.Errorf("fetch --dry-run wrote into the cache: %v", entries)
	}
	if _, stderr, code := runImgpipe(t, nil, "fetch", "--lock", lock, "--cache-dir", cache, "--artifact", "iso"); code != 0 {
		t.Fatalf("fetch = exit %d; stderr:\n%s", code, stderr)
	}
	got = plan()
	if got["iso"].Action != factory.ActionCached || got["disk"].Action != factory.ActionDownload {
		t.Errorf("fetch --dry-run after fetching the ISO = %+v; want iso cached, disk download", got)
	}
}

func TestProgressTTY(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	p := newProgress(&buf)
	p.tty = true // a terminal cannot be faked through a bytes.Buffer
	now := time.Unix(0, 0)
	p.now = func() time.Time { return now }
	for done := int64(1); done <= 10; done++ {
		now = now.Add(time.Second)
		p.report("worker metal-amd64.iso", factory.Progress{Phase: "download", Done: done << 20, Total: 10 << 20})
	}
	p.finish("worker metal-amd64.iso", factory.ArtifactResult{FetchResult: factory.FetchResult{Digests: factory.Digests{Size: 10 << 20}, Transferred: 10 << 20}})
	out := buf.String()
	if strings.Count(out, "\n") != 1 || strings.Count(out, "\r\x1b[K") != 11 {
		t.Errorf("TTY progress = %q; want 10 redraws, a clear and one summary line", out)
	}
	if !strings.Contains(out, "[==============================] 100% 10.0 MiB/10.0 MiB 1.1 MiB/s") {
		t.Errorf("TTY progress = %q; want a full bar with its rate", out)
	}
}
