package proxmox

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

const testSchematic = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"

// syncBuffer collects log output from concurrent goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

type env struct {
	srv  *pvetest.Server
	c    *Client
	logs *syncBuffer
	dir  string
}

func newEnv(t *testing.T, opts ...pvetest.Option) *env {
	t.Helper()
	return newEnvWith(t, nil, opts...)
}

// newEnvWith is newEnv with extra client options (after the tests' defaults:
// 1ms task polls and retry backoff).
func newEnvWith(t *testing.T, copts []Option, opts ...pvetest.Option) *env {
	t.Helper()
	srv := pvetest.New(opts...)
	t.Cleanup(srv.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "pve-root-ca.pem")
	if err := os.WriteFile(ca, srv.CertPEM(), 0o600); err != nil {
		t.Fatal(err)
	}
	hc, err := NewHTTPClient(TLSOptions{CAFile: ca})
	if err != nil {
		t.Fatalf("NewHTTPClient: %v", err)
	}
	t.Cleanup(hc.CloseIdleConnections)
	tok, err := ParseToken("PVEAPIToken=" + srv.Token())
	if err != nil {
		t.Fatalf("ParseToken: %v", err)
	}
	logs := &syncBuffer{}
	base := []Option{WithPollInterval(time.Millisecond), WithRetry(DefaultAttempts, time.Millisecond),
		WithLogger(slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug})))}
	c, err := New(srv.URL, tok, hc, append(base, copts...)...)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	return &env{srv: srv, c: c, logs: logs, dir: dir}
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func writeFile(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}

// pattern returns n deterministic, not-all-zero bytes.
func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*31) ^ seed
	}
	return b
}

func zstdBytes(t *testing.T, raw []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	zw, err := zstd.NewWriter(&buf)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := zw.Write(raw); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// fixture is a lock with one profile whose ISO and disk image are in a cache dir
// and served by a fake factory.
type fixture struct {
	lock    *site.Lock
	iso     []byte
	raw     []byte // the decompressed disk image
	factory *httptest.Server
}

func newFixture(t *testing.T, dir, version string, profiles ...string) *fixture {
	t.Helper()
	if len(profiles) == 0 {
		profiles = []string{"worker"}
	}
	f := &fixture{iso: pattern(3<<20+17, 1), raw: pattern(2<<20+5, 2)}
	zst := zstdBytes(t, f.raw)
	mux := http.NewServeMux()
	mux.HandleFunc("/image/", func(w http.ResponseWriter, r *http.Request) {
		switch filepath.Ext(r.URL.Path) {
		case ".iso":
			w.Write(f.iso)
		case ".zst":
			w.Write(zst)
		default:
			http.NotFound(w, r)
		}
	})
	f.factory = httptest.NewServer(mux)
	t.Cleanup(f.factory.Close)
	// Named by digest, as the fetch cache (factory.Cache) names them.
	isoPath := filepath.Join(dir, sha(f.iso))
	zstPath := filepath.Join(dir, sha(zst))
	writeFile(t, isoPath, f.iso)
	writeFile(t, zstPath, zst)
	base := f.factory.URL + "/image/" + testSchematic + "/" + version + "/"
	f.lock = &site.Lock{Schema: site.LockSchema, Talos: version, Factory: f.factory.URL}
	for _, name := range profiles {
		f.lock.Profiles = append(f.lock.Profiles, site.Profile{
			Name: name, Platform: "nocloud", Arch: "amd64",
			Schematic:  site.Schematic{ID: testSchematic},
			Extensions: []site.Extension{{Name: "siderolabs/qemu-guest-agent", Version: "9.2.0"}},
			ISO:        base + "nocloud-amd64.iso",
			DiskImage:  base + "nocloud-amd64.raw.zst",
			Artifacts: []site.Artifact{
				{Kind: "iso", URL: base + "nocloud-amd64.iso", File: isoPath, Size: int64(len(f.iso)), SHA256: sha(f.iso)},
				{Kind: "disk", URL: base + "nocloud-amd64.raw.zst", File: zstPath, Size: int64(len(zst)), SHA256: sha(zst)},
			},
		})
	}
	return f
}

func cfgFor(method string, nodes ...string) site.ProxmoxConfig {
	if len(nodes) == 0 {
		nodes = []string{"pve1"}
	}
	return site.ProxmoxConfig{Site: testSite, Nodes: nodes, Storage: "local", ISOMethod: method}
}

// testSite is the proxmox.site of cfgFor.
const testSite = "lab"

// isoName is the name of the fixture's worker ISO at version for testSite.
func isoName(t *testing.T, version string) string {
	t.Helper()
	return volName(t, testSite, "worker", testSchematic, version, "iso")
}

// volName is VolumeName for a nocloud-amd64 profile.
func volName(t *testing.T, siteName, profile, schematic, version, ext string) string {
	t.Helper()
	p := &site.Profile{Name: profile, Platform: "nocloud", Arch: "amd64", Schematic: site.Schematic{ID: schematic}}
	n, err := VolumeName(siteName, &site.Lock{Talos: version}, p, ext)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func volumeIDs(vs []pvetest.Volume) []string {
	var out []string
	for _, v := range vs {
		out = append(out, v.Node+"|"+v.VolID)
	}
	return out
}
