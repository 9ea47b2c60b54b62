package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"log/slog"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/crane"
	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/site"
)

const qemuV1112Digest = "sha256:9720300de00544eca155bc19369dfd7789d39a0e23d72837a7188f199e13dc6c"

func TestMatrixRefresh(t *testing.T) {
	t.Parallel()
	cat := factorytest.ReferenceCatalog()
	cat.Broken = []string{"v1.10.1"}
	f := factorytest.New(t, factorytest.Options{Catalog: cat})
	f.Inject(factorytest.RouteExtensions, factorytest.Fault{Status: 503, RetryAfter: "0"})
	path := filepath.Join(t.TempDir(), "matrix.yaml")

	stdout, stderr, code := runImgpipe(t, nil, "matrix", "refresh", "--matrix", path, "--since", "v1.9.0", "--factory", f.URL(), "-o", "json")
	if code != 0 {
		t.Fatalf("matrix refresh = exit %d; want 0; stderr:\n%s", code, stderr)
	}
	var out refreshOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatalf("matrix refresh -o json: %v\n%s", err, stdout)
	}
	if !out.Written || len(out.Changes) == 0 || out.Factory != f.URL() {
		t.Errorf("matrix refresh report = written %v, %d changes, factory %q; want written, changes from %s", out.Written, len(out.Changes), out.Factory, f.URL())
	}
	first, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	m, err := compat.Parse(path, first)
	if err != nil {
		t.Fatalf("refreshed matrix does not parse: %v", err)
	}
	r, _ := m.Release("v1.11.2")
	if e := r.Extensions["qemu-guest-agent"]; e.Digest != qemuV1112Digest {
		t.Errorf("v1.11.2 qemu-guest-agent = %+v; want digest %s", e, qemuV1112Digest)
	}
	if r, _ := m.Release("v1.10.1"); !r.Broken {
		t.Errorf("v1.10.1 not broken after refresh")
	}

	// A second refresh against the same factory changes nothing: same bytes.
	stdout, stderr, code = runImgpipe(t, nil, "matrix", "refresh", "--matrix", path, "--since", "v1.9.0", "--factory", f.URL())
	if code != 0 {
		t.Fatalf("second matrix refresh = exit %d; stderr:\n%s", code, stderr)
	}
	second, _ := os.ReadFile(path)
	if !bytes.Equal(first, second) {
		t.Errorf("second refresh rewrote the matrix differently")
	}
	if strings.Contains(stdout, factory.ChangePinnedDigest) || strings.Contains(stdout, factory.ChangeChangedDigest) {
		t.Errorf("second refresh reported digest changes:\n%s", stdout)
	}
}

func TestMatrixRefreshToStdoutAndDryRun(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog(), IgnoreBroken: true})
	stdout, stderr, code := runImgpipe(t, nil, "matrix", "refresh", "--since", "v1.13.0", "--factory", f.URL())
	if code != 0 {
		t.Fatalf("matrix refresh = exit %d; stderr:\n%s", code, stderr)
	}
	if _, err := compat.Parse("stdout", []byte(stdout)); err != nil {
		t.Errorf("matrix refresh stdout is not a matrix: %v", err)
	}
	if !strings.Contains(stderr, "does not publish broken versions") {
		t.Errorf("stderr = %q; want a note that broken versions are unavailable", stderr)
	}

	path := filepath.Join(t.TempDir(), "matrix.yaml")
	if _, stderr, code := runImgpipe(t, nil, "matrix", "refresh", "--matrix", path, "--since", "v1.13.0", "--factory", f.URL(), "--dry-run"); code != 0 {
		t.Fatalf("matrix refresh --dry-run = exit %d; stderr:\n%s", code, stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("--dry-run wrote %s (stat error %v)", path, err)
	}
}

func TestMatrixRefreshFactoryDown(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	f.Inject(factorytest.RouteVersions, factorytest.Fault{Status: 500, Times: 10})
	path := filepath.Join(t.TempDir(), "matrix.yaml")
	orig := []byte("not touched\n")
	if err := os.WriteFile(path, orig, 0o644); err != nil {
		t.Fatal(err)
	}
	// An invalid existing matrix is a usage error before any request.
	if _, _, code := runImgpipe(t, nil, "matrix", "refresh", "--matrix", path, "--factory", f.URL()); code != 2 {
		t.Errorf("matrix refresh over an invalid matrix = exit %d; want 2", code)
	}
	_ = os.Remove(path)
	_, stderr, code := runImgpipe(t, nil, "matrix", "refresh", "--matrix", path, "--factory", f.URL(), "--retries", "1")
	if code != 1 || !strings.Contains(stderr, "HTTP 500") {
		t.Errorf("matrix refresh against a failing factory = exit %d, %q; want 1 naming HTTP 500", code, stderr)
	}
	if _, err := os.Stat(path); !os.IsNotExist(err) {
		t.Errorf("a failed refresh wrote %s", path)
	}
}

func TestMatrixRefreshCrossCheckThroughMirror(t *testing.T) {
	t.Parallel()
	cat := factorytest.ReferenceCatalog()
	f := factorytest.New(t, factorytest.Options{Catalog: cat})
	reg := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	host := strings.TrimPrefix(reg.URL, "http://")

	// The mirror's catalog for v1.14.0 agrees with the factory except for one digest.
	var lines []string
	for i, e := range cat.Extensions["v1.14.0"] {
		d := e.Digest
		if i == 0 {
			d = "sha256:" + strings.Repeat("0", 64)
		}
		lines = append(lines, e.Ref+"@"+d)
	}
	img, err := crane.Image(map[string][]byte{"image-digests": []byte(strings.Join(lines, "\n") + "\n")})
	if err != nil {
		t.Fatal(err)
	}
	if err := crane.Push(img, host+"/siderolabs/extensions:v1.14.0"); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	cfg := filepath.Join(dir, "imgpipe.yaml")
	yaml := "version: 1\nfactory:\n  url: " + f.URL() + "\nprofiles:\n  - name: worker\nregistries:\n  insecure: true\n  mirrors:\n    ghcr.io:\n      endpoint: " + host + "\n"
	if err := os.WriteFile(cfg, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	stdout, stderr, code := runImgpipe(t, nil, "--config", cfg, "matrix", "refresh", "--matrix", filepath.Join(dir, "m.yaml"), "--since", "v1.14.0", "--cross-check", "-o", "json")
	if code != 0 {
		t.Fatalf("matrix refresh --cross-check = exit %d; stderr:\n%s", code, stderr)
	}
	var out refreshOutput
	if err := json.Unmarshal([]byte(stdout), &out); err != nil {
		t.Fatal(err)
	}
	var mismatches []factory.Change
	for _, c := range out.Changes {
		if c.Kind == factory.ChangeCatalogMismatch {
			mismatches = append(mismatches, c)
		}
	}
	want := strings.TrimPrefix(cat.Extensions["v1.14.0"][0].Name, "siderolabs/")
	if len(mismatches) != 1 || mismatches[0].Extension != want || mismatches[0].Release != "v1.14.0" {
		t.Errorf("cross-check mismatches = %+v; want one for %s in v1.14.0 (notes %v)", mismatches, want, out.Notes)
	}
}

func TestResolveMatrixOnline(t *testing.T) {
	t.Parallel()
	cat := factorytest.ReferenceCatalog()
	// The live factory has a patch release the embedded matrix lacks, and a new digest.
	v197 := append([]factory.ExtensionInfo(nil), cat.Extensions["v1.9.6"]...)
	for i := range v197 {
		v197[i].Digest = "sha256:" + strings.Repeat("7", 64)
	}
	cat.Extensions["v1.9.7"] = v197
	cat.Versions = append(cat.Versions, "v1.9.7")
	for i, e := range cat.Extensions["v1.9.5"] {
		if e.Name == "siderolabs/qemu-guest-agent" {
			cat.Extensions["v1.9.5"][i].Digest = "sha256:" + strings.Repeat("5", 64)
		}
	}
	f := factorytest.New(t, factorytest.Options{Catalog: cat})
	dir := t.TempDir()
	cfgPath := filepath.Join(dir, "imgpipe.yaml")
	yaml := "version: 1\nfactory:\n  url: " + f.URL() + "\nprofiles:\n  - name: worker\n    extensions:\n      - name: qemu-guest-agent\n"
	if err := os.WriteFile(cfgPath, []byte(yaml), 0o644); err != nil {
		t.Fatal(err)
	}
	a := &app{stdout: io.Discard, stderr: io.Discard, getenv: func(string) string { return "" }, log: slog.New(slog.DiscardHandler), configPath: cfgPath}
	m, name, rep, err := a.resolveMatrixOnline(t.Context(), factoryFlags{timeout: 5 * time.Second, retries: 1})
	if err != nil {
		t.Fatalf("resolveMatrixOnline() error = %v", err)
	}
	if !strings.Contains(name, "online "+f.URL()) {
		t.Errorf("matrix name = %q; want it to say online %s", name, f.URL())
	}
	notes := onlineNotes(rep, "v1.9.5")
	want := []string{
		"online: v1.9.5: pinned-digest qemu-guest-agent sha256:" + strings.Repeat("5", 64),
		"online: v1.9.7: new-release",
	}
	for _, w := range want {
		if !slices.ContainsFunc(notes, func(n string) bool { return strings.HasPrefix(n, w) }) {
			t.Errorf("onlineNotes(v1.9.5) = %d notes, missing %q", len(notes), w)
		}
	}
	for _, n := range notes {
		if !strings.Contains(n, "v1.9.5:") && !strings.Contains(n, "new-release") {
			t.Errorf("onlineNotes(v1.9.5) includes %q, about another release", n)
		}
	}
	cfg, err := a.loadConfig()
	if err != nil {
		t.Fatal(err)
	}
	// The resolver sees the live data: v1.9.5's digest, and v1.9.7 by exact version.
	for _, tt := range []struct{ talos, digest string }{
		{"v1.9.5", "sha256:" + strings.Repeat("5", 64)},
		{"v1.9.7", "sha256:" + strings.Repeat("7", 64)},
	} {
		lock, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: tt.talos, MatrixName: name})
		if err != nil {
			t.Fatalf("site.Resolve(online, %s) error = %v", tt.talos, err)
		}
		if got := lock.Profiles[0].Extensions[0].Digest; got != tt.digest {
			t.Errorf("site.Resolve(online, %s) qemu-guest-agent digest = %s; want %s", tt.talos, got, tt.digest)
		}
	}
	// The factory lists v1.9.7 and does not mark it broken: a range query picks it.
	lock, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: "v1.9.x", MatrixName: name})
	if err != nil || lock.Talos != "v1.9.7" {
		t.Errorf("site.Resolve(online, v1.9.x) = %v, %v; want v1.9.7", lock.Talos, err)
	}
}
