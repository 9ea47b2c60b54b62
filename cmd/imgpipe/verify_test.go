package main

import (
	"bytes"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/registry"

	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/pipeline/verify/verifytest"
	"github.com/imgpipe/imgpipe/site"
)

// verifySite is a loopback registry that is also an Image Factory serving its signing
// key, with a site config whose policy covers the "sidero" test images keyless.
type verifySite struct {
	host        string // 127.0.0.1:port, registry and factory
	dir         string
	config      string
	trustedRoot string
	factoryPEM  []byte
	ss          *verifytest.Sigstore
}

func newVerifySite(t *testing.T, factoryKeyPEM []byte) *verifySite {
	t.Helper()
	mux := http.NewServeMux()
	mux.Handle("/v2/", registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	mux.HandleFunc("/oci/cosign/signing-key.pub", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/x-pem-file")
		w.Write(factoryKeyPEM)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	s := &verifySite{host: strings.TrimPrefix(srv.URL, "http://"), dir: t.TempDir(), factoryPEM: factoryKeyPEM}
	s.ss = verifytest.NewSigstore(t)
	s.trustedRoot = s.ss.WriteTrustedRoot(t, s.dir)
	s.config = filepath.Join(s.dir, "imgpipe.yaml")
	cfg := `version: 1
factory:
  url: http://` + s.host + `
profiles:
  - name: worker
verify:
  policies:
    - match: "*/siderolabs/**"
      identities:
        - issuer: https://accounts.google.com
          subjectRegExp: '` + verify.SideroSubjectRegExp + `'
`
	if err := os.WriteFile(s.config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	return s
}

// lock writes a lock naming an extension, the catalog, a factory installer and a
// registry.k8s.io core image, all (but the last) in the site registry.
func (s *verifySite) lock(t *testing.T, name, factory, ext, extDigest, installer, catalog string) string {
	t.Helper()
	status := "pinned"
	if extDigest == "" {
		status = "unknown"
	}
	l := &site.Lock{
		Schema:  site.LockSchema,
		Talos:   "v1.9.5",
		Factory: "http://" + factory,
		Profiles: []site.Profile{{
			Name: "worker", Installer: installer, Schematic: vanillaSchematic,
			Extensions: []site.Extension{{Name: "siderolabs/qemu-guest-agent", Ref: ext, Digest: extDigest, DigestStatus: status}},
		}},
		Catalog:    catalog,
		CoreImages: []site.Image{{Role: "apiserver", Ref: "registry.k8s.io/kube-apiserver:v1.32.3"}},
	}
	path := filepath.Join(s.dir, name)
	if err := site.WriteLock(path, l); err != nil {
		t.Fatal(err)
	}
	return path
}

func TestVerifyCommand(t *testing.T) {
	t.Parallel()
	factorySV, factoryPEM := verifytest.NewKey(t)
	_, otherPEM := verifytest.NewKey(t)
	s := newVerifySite(t, factoryPEM)
	otherKey := filepath.Join(s.dir, "other.pub")
	if err := os.WriteFile(otherKey, otherPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	factoryKey := filepath.Join(s.dir, "factory.pub")
	if err := os.WriteFile(factoryKey, factoryPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	google := verify.GoogleIssuer

	ext := s.host + "/siderolabs/qemu-guest-agent:9.2.0"
	extD := verifytest.PushRandom(t, ext)
	s.ss.SignKeyless(t, extD, "dev@siderolabs.com", google, verifytest.SigOpts{})
	catalog := s.host + "/siderolabs/extensions:v1.9.5"
	s.ss.SignKeyless(t, verifytest.PushRandom(t, catalog), "releasemgr-svc@talos-production.iam.gserviceaccount.com", google, verifytest.SigOpts{})
	installer := s.host + "/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.9.5"
	verifytest.SignWithKey(t, factorySV, verifytest.PushRandom(t, installer), verifytest.SigOpts{})
	bad := s.host + "/siderolabs/iscsi-tools:v0.1.6"
	badD := verifytest.PushRandom(t, bad)
	s.ss.SignKeyless(t, badD, "mallory@example.com", google, verifytest.SigOpts{})
	unsigned := s.host + "/siderolabs/util-linux-tools:2.40.4"
	unsignedD := verifytest.PushRandom(t, unsigned)

	goodLock := s.lock(t, "good.lock.json", s.host, ext, extD.DigestStr(), installer, catalog)
	badLock := s.lock(t, "bad.lock.json", s.host, bad, badD.DigestStr(), installer, catalog)
	unsignedLock := s.lock(t, "unsigned.lock.json", s.host, unsigned, unsignedD.DigestStr(), installer, catalog)
	dead := verifytest.ClosedAddr(t)
	deadLock := s.lock(t, "dead.lock.json", dead, dead+"/siderolabs/qemu-guest-agent:9.2.0", "", dead+"/installer/"+vanillaSchematic.ID+":v1.9.5", dead+"/siderolabs/extensions:v1.9.5")

	base := func(extra ...string) []string {
		return append([]string{"verify", "--config", s.config, "--trusted-root", s.trustedRoot}, extra...)
	}
	tests := []struct {
		name     string
		args     []string
		wantCode int
		// want maps image refs to verdicts in the JSON output (when -o json).
		want       map[string]verify.Verdict
		wantStdout []string
		wantStderr []string
	}{
		{
			name:     "all signed",
			args:     base("--lock", goodLock, "-o", "json"),
			wantCode: exitOK,
			want: map[string]verify.Verdict{
				ext: verify.Verified, catalog: verify.Verified, installer: verify.Verified,
				"registry.k8s.io/kube-apiserver:v1.32.3": verify.Skipped,
			},
			wantStdout: []string{`"signer": "dev@siderolabs.com (https://accounts.google.com)"`, `"signer": "key http://` + s.host + `/oci/cosign/signing-key.pub`, `"pinned": false`},
			wantStderr: []string{"verify 4/4 "},
		},
		{
			name:       "table output",
			args:       base("--lock", goodLock),
			wantCode:   exitOK,
			wantStdout: []string{"IMAGE", "SIGNER", "VERDICT", ext, "verified", "(unpinned)", "skipped", "4 images: 3 verified, 0 failed, 0 missing, 0 unsigned-allowed, 1 skipped, 0 errors"},
		},
		{
			name:       "wrong identity fails with exit 3",
			args:       base("--lock", badLock, "-o", "json"),
			wantCode:   exitPolicy,
			want:       map[string]verify.Verdict{bad: verify.Failed, installer: verify.Verified},
			wantStderr: []string{"signature verification failed: 1 of 4 images: " + bad},
		},
		{
			name:       "missing signature fails with exit 3",
			args:       base("--lock", unsignedLock, "-o", "yaml"),
			wantCode:   exitPolicy,
			wantStdout: []string{"verdict: missing", "no signature"},
		},
		{
			name:     "pinned factory key that did not sign the installer",
			args:     base("--lock", goodLock, "--factory-key", otherKey, "-o", "json"),
			wantCode: exitPolicy,
			want:     map[string]verify.Verdict{installer: verify.Failed, ext: verify.Verified},
		},
		{
			name:       "pinned factory key",
			args:       base("--lock", goodLock, "--factory-key", factoryKey, "-o", "json"),
			wantCode:   exitOK,
			want:       map[string]verify.Verdict{installer: verify.Verified},
			wantStdout: []string{`"signer": "key ` + factoryKey},
		},
		{
			name:     "unreachable registry exits 1",
			args:     base("--lock", deadLock, "--factory-key", factoryKey, "-o", "json"),
			wantCode: exitOperational,
			want: map[string]verify.Verdict{
				dead + "/siderolabs/qemu-guest-agent:9.2.0": verify.Errored, dead + "/installer/" + vanillaSchematic.ID + ":v1.9.5": verify.Errored,
			},
			wantStderr: []string{"could not be completed"},
		},
		{
			name:     "dry run contacts nothing",
			args:     []string{"verify", "--config", s.config, "--lock", deadLock, "--dry-run", "-o", "json"},
			wantCode: exitOK,
			want: map[string]verify.Verdict{
				dead + "/siderolabs/qemu-guest-agent:9.2.0":            verify.Planned,
				dead + "/installer/" + vanillaSchematic.ID + ":v1.9.5": verify.Planned,
				"registry.k8s.io/kube-apiserver:v1.32.3":               verify.Skipped,
			},
			wantStdout: []string{`"dry_run": true`, "factory key would be fetched from http://" + dead + "/oci/cosign/signing-key.pub"},
		},
		{
			name:       "missing trusted root is a usage error",
			args:       []string{"verify", "--config", s.config, "--lock", goodLock, "--trusted-root", filepath.Join(s.dir, "absent.json")},
			wantCode:   exitUsage,
			wantStderr: []string{"loading trusted root"},
		},
		{
			name:     "bad output format",
			args:     base("--lock", goodLock, "-o", "xml"),
			wantCode: exitUsage,
		},
		{
			name:       "missing lock",
			args:       base("--lock", filepath.Join(s.dir, "absent.lock.json")),
			wantCode:   exitUsage,
			wantStderr: []string{"reading lock"},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runImgpipe(t, nil, tc.args...)
			if code != tc.wantCode {
				t.Fatalf("imgpipe %s = exit %d; want %d\nstdout:\n%s\nstderr:\n%s", strings.Join(tc.args, " "), code, tc.wantCode, stdout, stderr)
			}
			if tc.want != nil {
				var rep verify.Report
				if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
					t.Fatalf("imgpipe %s: decoding JSON report: %v\n%s", strings.Join(tc.args, " "), err, stdout)
				}
				got := map[string]verify.Verdict{}
				for _, r := range rep.Results {
					got[r.Image] = r.Verdict
				}
				for img, want := range tc.want {
					if got[img] != want {
						t.Errorf("imgpipe %s: %s verdict = %q; want %q", tc.name, img, got[img], want)
					}
				}
			}
			for _, w := range tc.wantStdout {
				if !strings.Contains(stdout, w) {
					t.Errorf("imgpipe %s: stdout lacks %q:\n%s", tc.name, w, stdout)
				}
			}
			for _, w := range tc.wantStderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("imgpipe %s: stderr lacks %q:\n%s", tc.name, w, stderr)
				}
			}
		})
	}
}

// TestVerifyCommandThroughMirror runs `imgpipe verify --mirror` on upstream references
// (ghcr.io, factory.talos.dev) that the site config maps to a loopback mirror; the
// built-in Sidero and factory policies apply, and signatures are read at the mirror.
func TestVerifyCommandThroughMirror(t *testing.T) {
	t.Parallel()
	host := verifytest.Registry(t)
	dir := t.TempDir()
	ss := verifytest.NewSigstore(t)
	trustedRoot := ss.WriteTrustedRoot(t, dir)
	factorySV, factoryPEM := verifytest.NewKey(t)
	factoryKey := filepath.Join(dir, "factory.pub")
	if err := os.WriteFile(factoryKey, factoryPEM, 0o644); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "imgpipe.yaml")
	cfg := `version: 1
profiles:
  - name: worker
registries:
  mirrors:
    ghcr.io:
      endpoint: http://` + host + `/ghcr.io
    factory.talos.dev:
      endpoint: http://` + host + `/factory.talos.dev
`
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	google := verify.GoogleIssuer
	const (
		ext       = "ghcr.io/siderolabs/qemu-guest-agent:9.2.0"
		stripped  = "ghcr.io/siderolabs/iscsi-tools:v0.1.6" // mirrored without its .sig tag
		catalog   = "ghcr.io/siderolabs/extensions:v1.9.5"
		installer = "factory.talos.dev/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.9.5"
	)
	at := func(ref string) string { return host + "/" + ref }
	extD := verifytest.PushRandom(t, at(ext))
	ss.SignKeyless(t, extD, "dev@siderolabs.com", google, verifytest.SigOpts{})
	strippedD := verifytest.PushRandom(t, at(stripped))
	ss.SignKeyless(t, verifytest.PushRandom(t, at(catalog)), "dev@siderolabs.com", google, verifytest.SigOpts{})
	verifytest.SignWithKey(t, factorySV, verifytest.PushRandom(t, at(installer)), verifytest.SigOpts{})

	writeLock := func(name string, exts ...site.Extension) string {
		l := &site.Lock{
			Schema: site.LockSchema, Talos: "v1.9.5", Factory: site.DefaultFactory,
			Profiles:   []site.Profile{{Name: "worker", Installer: installer, Schematic: vanillaSchematic, Extensions: exts}},
			Catalog:    catalog,
			CoreImages: []site.Image{{Role: "apiserver", Ref: "registry.k8s.io/kube-apiserver:v1.32.3"}},
		}
		p := filepath.Join(dir, name)
		if err := site.WriteLock(p, l); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := writeLock("good.json", site.Extension{Ref: ext, Digest: extD.DigestStr()})
	bad := writeLock("stripped.json", site.Extension{Ref: ext, Digest: extD.DigestStr()}, site.Extension{Ref: stripped, Digest: strippedD.DigestStr()})

	args := func(lock string) []string {
		return []string{"verify", "--config", config, "--lock", lock, "--mirror", "--trusted-root", trustedRoot, "--factory-key", factoryKey, "-o", "json"}
	}
	tests := []struct {
		lock     string
		wantCode int
		want     map[string]verify.Verdict
	}{
		{good, exitOK, map[string]verify.Verdict{ext: verify.Verified, catalog: verify.Verified, installer: verify.Verified,
			"registry.k8s.io/kube-apiserver:v1.32.3": verify.Skipped}},
		{bad, exitPolicy, map[string]verify.Verdict{ext: verify.Verified, stripped: verify.Missing}},
	}
	for _, tc := range tests {
		stdout, stderr, code := runImgpipe(t, nil, args(tc.lock)...)
		if code != tc.wantCode {
			t.Fatalf("imgpipe %s = exit %d; want %d\n%s\n%s", strings.Join(args(tc.lock), " "), code, tc.wantCode, stdout, stderr)
		}
		var rep verify.Report
		if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
			t.Fatalf("decoding report: %v\n%s", err, stdout)
		}
		for _, r := range rep.Results {
			if want, ok := tc.want[r.Image]; ok && r.Verdict != want {
				t.Errorf("imgpipe verify --mirror: %s verdict = %q (%s); want %q", r.Image, r.Verdict, r.Reason, want)
			}
			if r.Verdict == verify.Verified && !strings.HasPrefix(r.Source, host+"/") {
				t.Errorf("imgpipe verify --mirror: %s source = %q; want it read at the mirror %s", r.Image, r.Source, host)
			}
		}
	}

	// --mirror without a registries section is a usage error.
	plain := filepath.Join(dir, "plain.yaml")
	if err := os.WriteFile(plain, []byte("version: 1\nprofiles:\n  - name: worker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	_, stderr, code := runImgpipe(t, nil, "verify", "--config", plain, "--lock", good, "--mirror", "--trusted-root", trustedRoot, "--factory-key", factoryKey)
	if code != exitUsage || !strings.Contains(stderr, "no registries") {
		t.Errorf("imgpipe verify --mirror without registries = exit %d (%s); want %d", code, stderr, exitUsage)
	}
}

// TestVerifyCommandFactoryCredentials reads a self-hosted factory's installer from a
// registry that wants basic auth, with the credentials from the environment.
func TestVerifyCommandFactoryCredentials(t *testing.T) {
	t.Parallel()
	sv, pemKey := verifytest.NewKey(t)
	reg := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	mux := http.NewServeMux()
	mux.HandleFunc("/oci/cosign/signing-key.pub", func(w http.ResponseWriter, _ *http.Request) { w.Write(pemKey) })
	mux.HandleFunc("/v2/", func(w http.ResponseWriter, r *http.Request) {
		if u, p, ok := r.BasicAuth(); !ok || u != "ci" || p != "s3cret-pw" {
			w.Header().Set("WWW-Authenticate", `Basic realm="factory"`)
			http.Error(w, "unauthorized", http.StatusUnauthorized)
			return
		}
		reg.ServeHTTP(w, r)
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	host := strings.TrimPrefix(srv.URL, "http://")

	// Push and sign directly against the registry handler (no auth in the way).
	pushSrv := httptest.NewServer(reg)
	t.Cleanup(pushSrv.Close)
	pushHost := strings.TrimPrefix(pushSrv.URL, "http://")
	installerPath := "/installer/376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba:v1.9.5"
	d := verifytest.PushRandom(t, pushHost+installerPath)
	verifytest.SignWithKey(t, sv, d, verifytest.SigOpts{})

	dir := t.TempDir()
	lockPath := filepath.Join(dir, "lock.json")
	l := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.5", Factory: srv.URL,
		Profiles: []site.Profile{{Name: "worker", Installer: host + installerPath, Schematic: vanillaSchematic}}}
	if err := site.WriteLock(lockPath, l); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "imgpipe.yaml")
	if err := os.WriteFile(config, []byte("version: 1\nfactory:\n  url: "+srv.URL+"\nprofiles:\n  - name: worker\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"verify", "--config", config, "--lock", lockPath, "-o", "json"}
	tests := []struct {
		name     string
		env      map[string]string
		wantCode int
	}{
		{"credentials from the environment", map[string]string{envFactoryUser: "ci", envFactoryPass: "s3cret-pw"}, exitOK},
		{"no credentials", nil, exitOperational},
		{"wrong password", map[string]string{envFactoryUser: "ci", envFactoryPass: "wrong-pw"}, exitOperational},
		{"half the credentials", map[string]string{envFactoryUser: "ci"}, exitUsage},
	}
	for _, tc := range tests {
		stdout, stderr, code := runImgpipe(t, tc.env, args...)
		if code != tc.wantCode {
			t.Errorf("imgpipe verify (%s) = exit %d; want %d\n%s\n%s", tc.name, code, tc.wantCode, stdout, stderr)
		}
		if p := tc.env[envFactoryPass]; p != "" && (strings.Contains(stdout, p) || strings.Contains(stderr, p)) {
			t.Errorf("imgpipe verify (%s) printed the password", tc.name)
		}
	}
}

// TestVerifyDryRunGolden pins the table and JSON shape of `imgpipe verify --dry-run` for
// a fixed lock: which images are checked under which policy, and which are skipped.
func TestVerifyDryRunGolden(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lock := &site.Lock{
		Schema: site.LockSchema, Talos: "v1.9.6", Factory: site.DefaultFactory,
		Profiles: []site.Profile{
			{Name: "worker", Installer: "factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6",
				Schematic: site.Schematic{ID: "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515",
					YAML: "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/qemu-guest-agent\n"},
				Extensions: []site.Extension{
					{Name: "siderolabs/qemu-guest-agent", Ref: "ghcr.io/siderolabs/qemu-guest-agent:9.2.0",
						Digest: "sha256:2d9a6e7b1e9c8e1f0f4bb5cfb3f6d7e3a1c2b4d5e6f708192a3b4c5d6e7f8091", DigestStatus: "pinned"},
					{Name: "siderolabs/iscsi-tools", Ref: "ghcr.io/siderolabs/iscsi-tools:v0.1.6", DigestStatus: "unknown"},
				}},
		},
		Catalog: "ghcr.io/siderolabs/extensions:v1.9.6",
		CoreImages: []site.Image{
			{Role: "installer", Ref: "ghcr.io/siderolabs/installer:v1.9.6"},
			{Role: "kubelet", Ref: "ghcr.io/siderolabs/kubelet:v1.32.4"},
			{Role: "apiserver", Ref: "registry.k8s.io/kube-apiserver:v1.32.4"},
			{Role: "etcd", Ref: "gcr.io/etcd-development/etcd:v3.5.21"},
		},
	}
	lockPath := filepath.Join(dir, "imgpipe.lock.json")
	if err := site.WriteLock(lockPath, lock); err != nil {
		t.Fatal(err)
	}
	config := filepath.Join(dir, "imgpipe.yaml")
	cfg := `version: 1
profiles:
  - name: worker
verify:
  policies:
    - match: registry.k8s.io/**
      identities:
        - issuer: https://accounts.google.com
          subject: krel-trust@k8s-releng-prod.iam.gserviceaccount.com
`
	if err := os.WriteFile(config, []byte(cfg), 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ golden, format string }{
		{"verify-dry-run.txt", "table"},
		{"verify-dry-run.json", "json"},
	} {
		stdout, stderr, code := runImgpipe(t, nil, "verify", "--config", config, "--lock", lockPath, "--dry-run", "-o", tc.format)
		if code != exitOK {
			t.Fatalf("imgpipe verify --dry-run -o %s = exit %d; want 0\n%s", tc.format, code, stderr)
		}
		golden(t, tc.golden, stdout)
	}
}

// TestVerifyResolveResultOnStdin pipes a resolve result into verify: a resolve result
// is a lock, so `imgpipe resolve -o json | imgpipe verify --lock -` works.
func TestVerifyResolveResultOnStdin(t *testing.T) {
	t.Parallel()
	resolved, stderr, code := runImgpipe(t, nil, "resolve", "--talos", "v1.9.x", "-o", "json")
	if code != exitOK {
		t.Fatalf("imgpipe resolve = exit %d: %s", code, stderr)
	}
	var out, errb bytes.Buffer
	code = run(t.Context(), []string{"verify", "--lock", "-", "--dry-run", "-o", "json"}, strings.NewReader(resolved), &out, &errb, func(string) string { return "" })
	if code != exitOK {
		t.Fatalf("imgpipe verify --lock - = exit %d: %s", code, errb.String())
	}
	var rep verify.Report
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decoding report: %v", err)
	}
	if rep.Summary.Planned == 0 || !rep.DryRun {
		t.Errorf("imgpipe verify --lock - --dry-run: summary %+v; want planned checks", rep.Summary)
	}

	code = run(t.Context(), []string{"verify", "--lock", "-", "--dry-run"}, strings.NewReader("{not json"), &out, &errb, func(string) string { return "" })
	if code != exitUsage {
		t.Errorf("imgpipe verify --lock - with a broken lock = exit %d; want %d", code, exitUsage)
	}
}

// vanillaSchematic is the schematic without customizations, whose ID the test
// installers carry: locks are validated when read (site.Lock.Validate).
var vanillaSchematic = site.Schematic{ID: "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba", YAML: "{}"}
