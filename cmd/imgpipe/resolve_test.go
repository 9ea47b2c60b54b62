package main

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/site"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/golden")

// runImgpipe runs the real root command in-process, as the binary would.
func runImgpipe(t *testing.T, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	getenv := func(k string) string { return env[k] }
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, getenv)
	return out.String(), errb.String(), code
}

func golden(t *testing.T, name, got string) {
	t.Helper()
	goldenAt(t, filepath.Join("testdata", "golden"), name, got)
}

// goldenAt compares got with dir/name, or rewrites that file under -update.
func goldenAt(t *testing.T, dir, name, got string) {
	t.Helper()
	path := filepath.Join(dir, name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading golden %s: %v (run go test ./cmd/imgpipe -run %s -update)", path, err, t.Name())
	}
	if got != string(want) {
		t.Errorf("output differs from %s (run with -update to accept):\n--- got ---\n%s\n--- want ---\n%s", path, got, want)
	}
}

func TestResolveGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		golden string
		args   []string
	}{
		{"resolve-v1.9.x.txt", []string{"resolve", "--talos", "v1.9.x"}},
		{"resolve-v1.9.x.json", []string{"resolve", "--talos", "v1.9.x", "-o", "json"}},
		{"resolve-v1.12.x.json", []string{"resolve", "--talos", "v1.12.x", "-o", "json"}},
		{"resolve-v1.7.5-gpu.yaml", []string{"resolve", "--talos", "v1.7.5", "--profile", "gpu,controlplane", "-o", "yaml", "--config", "testdata/gpu-lts.yaml"}},
		{"resolve-example-config.txt", []string{"resolve", "--config", "../../testdata/imgpipe.yaml"}},
		{"resolve-schematic-fields-v1.12.x.json", []string{"resolve", "--talos", "v1.12.x", "-o", "json", "--config", "testdata/schematic-fields.yaml"}},
		{"diff-v1.9.6-v1.12.x.txt", []string{"diff", "v1.9.6", "v1.12.x"}},
		{"diff-v1.9.6-v1.10.0.json", []string{"diff", "v1.9.6", "v1.10.0", "-o", "json"}},
	}
	for _, tt := range tests {
		t.Run(tt.golden, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runImgpipe(t, nil, tt.args...)
			if code != 0 {
				t.Fatalf("imgpipe %s: exit %d; want 0\nstderr: %s", strings.Join(tt.args, " "), code, stderr)
			}
			golden(t, tt.golden, stdout)
		})
	}
}

// TestResolveAcceptance pins the "done when" for the default site, independent of goldens.
func TestResolveAcceptance(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		query, talos string
		nfsOmitted   bool
	}{
		{"v1.9.x", "v1.9.6", true},
		{"v1.12.x", "v1.12.11", false},
	} {
		stdout, stderr, code := runImgpipe(t, nil, "resolve", "--talos", tt.query, "-o", "json")
		if code != 0 {
			t.Fatalf("resolve %s: exit %d: %s", tt.query, code, stderr)
		}
		var l site.Lock
		if err := json.Unmarshal([]byte(stdout), &l); err != nil {
			t.Fatalf("resolve %s -o json is not JSON: %v", tt.query, err)
		}
		if l.Talos != tt.talos {
			t.Errorf("resolve %s: talos = %s; want %s", tt.query, l.Talos, tt.talos)
		}
		if len(l.Profiles) != 3 {
			t.Fatalf("resolve %s: %d profiles; want controlplane, worker, gpu", tt.query, len(l.Profiles))
		}
		for _, p := range l.Profiles {
			hasNFS := false
			for _, e := range p.Extensions {
				hasNFS = hasNFS || e.Name == "siderolabs/nfs-utils"
			}
			omitted := len(p.Omitted) == 1 && p.Omitted[0].Name == "siderolabs/nfs-utils" && strings.Contains(p.Omitted[0].Reason, "v1.12.0")
			switch {
			case p.Name == "controlplane":
				if hasNFS || len(p.Omitted) != 0 {
					t.Errorf("resolve %s: controlplane has nfs-utils=%v omitted=%v; want neither", tt.query, hasNFS, p.Omitted)
				}
			case tt.nfsOmitted && (hasNFS || !omitted):
				t.Errorf("resolve %s: profile %s: nfs-utils included=%v omitted=%v; want omitted with its reason", tt.query, p.Name, hasNFS, p.Omitted)
			case !tt.nfsOmitted && (!hasNFS || len(p.Omitted) != 0):
				t.Errorf("resolve %s: profile %s: nfs-utils included=%v omitted=%v; want included", tt.query, p.Name, hasNFS, p.Omitted)
			}
			if p.Schematic.ID == "" || !strings.Contains(p.Installer, p.Schematic.ID) {
				t.Errorf("resolve %s: profile %s: installer %q does not carry schematic %q", tt.query, p.Name, p.Installer, p.Schematic.ID)
			}
		}
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	badMatrix := write("matrix.yaml", "schemaVersion: 1\nextensions: {}\nreleases:\n  - version: v1.9.6\n    kubernets: 1.32.4\n")
	badConfig := write("bad.yaml", "version: 1\nprofiles:\n  - name: worker\n    platform: aws\n")
	needNFS := write("nfs.yaml", "version: 1\nprofiles:\n  - name: storage\n    extensions:\n      - name: nfs-utils\n")
	mixedTier := write("mixed.yaml", "version: 1\nprofiles:\n  - name: gpu\n    extensions:\n      - name: nvidia-open-gpu-kernel-modules-lts\n      - name: nvidia-container-toolkit-production\n")
	driver := write("driver.yaml", "version: 1\nprofiles:\n  - name: gpu\n    nvidiaDriver: 550.x\n    extensions:\n      - name: nvidia-open-gpu-kernel-modules-production\n      - name: nvidia-container-toolkit-production\n")
	unknownExt := write("unknown.yaml", "version: 1\nprofiles:\n  - name: w\n    extensions:\n      - name: qemu-guest-agnt\n")
	typo := write("typo.yaml", "version: 1\nprofiles:\n  - name: w\n    extensions:\n      - name: drdb\n")
	newer := write("newer.yaml", "version: 1\nprofiles:\n  - name: w\n    extensions:\n      - name: harbor-credential-provider\n")
	unheard := write("unheard.yaml", "version: 1\nprofiles:\n  - name: w\n    extensions:\n      - name: frobnicator\n")
	i915 := write("i915.yaml", "version: 1\nprofiles:\n  - name: w\n    extensions:\n      - name: i915\n")

	tests := []struct {
		name     string
		args     []string
		wantCode int
		wantErr  []string
	}{
		{"unknown version suggests nearest", []string{"resolve", "--talos", "v1.9.7"}, 3, []string{"v1.9.7", "v1.9.6"}},
		{"no match", []string{"resolve", "--talos", "v1.30.x"}, 3, []string{"v1.30.x", "v1.13.9"}},
		{"malformed query", []string{"resolve", "--talos", ">>=1.9"}, 2, []string{">>=1.9"}},
		{"malformed matrix names file and line", []string{"resolve", "--matrix", badMatrix, "--talos", "v1.9.6"}, 2, []string{badMatrix + ":5", "kubernets"}},
		{"missing matrix file", []string{"resolve", "--matrix", filepath.Join(dir, "nope.yaml")}, 2, []string{"nope.yaml"}},
		{"malformed config names file and line", []string{"resolve", "--config", badConfig}, 2, []string{badConfig + ":4", "platform", `"aws"`}},
		{"unknown profile", []string{"resolve", "--profile", "gpux"}, 2, []string{"gpux", "controlplane, worker, gpu"}},
		{"required extension missing", []string{"resolve", "--config", needNFS, "--talos", "v1.9.x"}, 3, []string{"nfs-utils", "v1.12.0", "storage"}},
		{"unknown extension suggests the nearest", []string{"resolve", "--config", unknownExt, "--talos", "v1.9.x"}, 2, []string{"qemu-guest-agnt", "extensions[0]", "did you mean qemu-guest-agent?"}},
		{"typo suggests from the release's catalog", []string{"resolve", "--config", typo, "--talos", "v1.12.x"}, 2, []string{"drdb", "did you mean drbd?", "matrix refresh"}},
		{"name of a later release says since when", []string{"resolve", "--config", newer, "--talos", "v1.13.x"}, 3, []string{"harbor-credential-provider exists from v1.14.0-alpha.1", "v1.13.9"}},
		{"name of a later release, older minor", []string{"resolve", "--config", i915, "--talos", "v1.8.x"}, 3, []string{"i915 exists from v1.9.0"}},
		{"name unknown to the matrix points at refresh", []string{"resolve", "--config", unheard, "--talos", "v1.12.x"}, 2, []string{"frobnicator", "`imgpipe matrix refresh`"}},
		{"NVIDIA tier mismatch", []string{"resolve", "--config", mixedTier, "--talos", "v1.10.x"}, 3, []string{"tiers differ", "lts", "production"}},
		{"NVIDIA driver constraint", []string{"resolve", "--config", driver, "--talos", "v1.10.x"}, 3, []string{"550.x", "570.148.08"}},
		{"Kubernetes too new", []string{"resolve", "--talos", "v1.9.x", "--kubernetes", "1.33.0"}, 3, []string{"1.33.0", "1.27", "1.32"}},
		{"Kubernetes too old", []string{"resolve", "--talos", "v1.12.x", "--kubernetes", "1.29.5"}, 3, []string{"1.29.5", "1.30"}},
		{"bad output format", []string{"resolve", "-o", "xml"}, 2, []string{"xml"}},
		{"bad flag", []string{"resolve", "--tallos", "v1.9.x"}, 2, []string{"tallos"}},
		{"prerelease needs --pre", []string{"resolve", "--talos", "v1.14.x"}, 3, []string{"v1.14.0-rc.1", "--pre"}},
		{"unverified stays out of ranges", []string{"resolve", "--talos", ">=1.14.0"}, 3, []string{"v1.14.0 (unverified", "matrix refresh"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lockPath := filepath.Join(t.TempDir(), "imgpipe.lock.json")
			args := append(append([]string{}, tt.args...), "--lock", lockPath)
			stdout, stderr, code := runImgpipe(t, nil, args...)
			if code != tt.wantCode {
				t.Errorf("imgpipe %s: exit %d; want %d\nstderr: %s", strings.Join(tt.args, " "), code, tt.wantCode, stderr)
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(stderr, w) {
					t.Errorf("imgpipe %s: stderr %q does not mention %q", strings.Join(tt.args, " "), stderr, w)
				}
			}
			if stdout != "" {
				t.Errorf("imgpipe %s: failed run printed to stdout: %q", strings.Join(tt.args, " "), stdout)
			}
			if _, err := os.Stat(lockPath); !os.IsNotExist(err) {
				t.Errorf("imgpipe %s: failed run left a lock file (stat err %v); want nothing written", strings.Join(tt.args, " "), err)
			}
		})
	}
}

func TestResolveLockRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	lockPath := filepath.Join(dir, "imgpipe.lock.json")
	stdout, stderr, code := runImgpipe(t, nil, "resolve", "--talos", "v1.10.x", "--lock", lockPath, "-o", "json")
	if code != 0 {
		t.Fatalf("resolve --lock: exit %d: %s", code, stderr)
	}
	data, err := os.ReadFile(lockPath)
	if err != nil {
		t.Fatal(err)
	}
	if string(data) != stdout {
		t.Errorf("lock file differs from -o json output")
	}
	// Determinism: resolving again writes byte-identical content.
	if _, _, code := runImgpipe(t, nil, "resolve", "--talos", "v1.10.x", "--lock", lockPath); code != 0 {
		t.Fatal("second resolve failed")
	}
	again, _ := os.ReadFile(lockPath)
	if !bytes.Equal(data, again) {
		t.Errorf("second resolve wrote a different lock")
	}
	// A lock is accepted by diff as one side.
	out, stderr, code := runImgpipe(t, nil, "diff", lockPath, "v1.10.x", "-o", "json")
	if code != 0 {
		t.Fatalf("diff lock version: exit %d: %s", code, stderr)
	}
	var d site.Drift
	if err := json.Unmarshal([]byte(out), &d); err != nil {
		t.Fatal(err)
	}
	for _, p := range d.Profiles {
		if p.Status != "unchanged" {
			t.Errorf("diff of a lock against its own query: profile %s is %s; want unchanged", p.Name, p.Status)
		}
	}
	// A corrupt lock is a usage error naming the file.
	bad := filepath.Join(dir, "bad.lock.json")
	os.WriteFile(bad, []byte(`{"schema": "imgpipe.dev/lock/v1", "talos": "v1.9.6", "bogus": 1}`), 0o644)
	_, stderr, code = runImgpipe(t, nil, "diff", bad, "v1.10.x")
	if code != 2 || !strings.Contains(stderr, "bad.lock.json") {
		t.Errorf("diff with corrupt lock: exit %d, stderr %q; want exit 2 naming the file", code, stderr)
	}
}

// TestResolvePreAndCatalog: `latest --pre` works (the unverified v1.14.0 is skipped,
// the newest prerelease taken); an exact prerelease without a recorded Kubernetes
// default resolves with machinery's range and a note; the extensions that used to be
// unknown offline resolve.
func TestResolvePreAndCatalog(t *testing.T) {
	t.Parallel()
	cfg := filepath.Join(t.TempDir(), "imgpipe.yaml")
	body := "version: 1\nprofiles:\n  - name: w\n    extensions:\n"
	for _, e := range []string{"intel-ucode", "zfs", "gvisor", "drbd", "i915", "tailscale", "amd-ucode"} {
		body += "      - name: " + e + "\n"
	}
	if err := os.WriteFile(cfg, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		args     []string
		talos    string
		wantNote string
	}{
		{[]string{"--talos", "latest", "--pre"}, "v1.14.0-rc.1", "prerelease"},
		{[]string{"--talos", "v1.14.0-beta.1"}, "v1.14.0-beta.1", "no default Kubernetes version in the matrix: using 1.36.3"},
		{[]string{"--talos", "v1.12.x", "--config", cfg}, "v1.12.11", ""},
		{[]string{"--talos", "v1.9.x", "--config", cfg}, "v1.9.6", ""},
	}
	for _, tt := range tests {
		stdout, stderr, code := runImgpipe(t, nil, append([]string{"resolve", "-o", "json"}, tt.args...)...)
		if code != 0 {
			t.Errorf("resolve %v: exit %d: %s", tt.args, code, stderr)
			continue
		}
		var l site.Lock
		if err := json.Unmarshal([]byte(stdout), &l); err != nil {
			t.Fatal(err)
		}
		if l.Talos != tt.talos {
			t.Errorf("resolve %v: Talos %s; want %s", tt.args, l.Talos, tt.talos)
		}
		if tt.wantNote != "" && !strings.Contains(strings.Join(l.Notes, "\n"), tt.wantNote) {
			t.Errorf("resolve %v: notes %q; want one containing %q", tt.args, l.Notes, tt.wantNote)
		}
	}
}
