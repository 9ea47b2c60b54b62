package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// checkRun runs `imgpipe check -o json` with args and decodes the report.
func checkRun(t *testing.T, env map[string]string, args ...string) (check.Report, int, string) {
	t.Helper()
	stdout, stderr, code := runImgpipe(t, env, append([]string{"check", "-o", "json"}, args...)...)
	var rep check.Report
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		t.Fatalf("imgpipe check %s = exit %d with stdout that is no report: %v\nstdout:\n%s\nstderr:\n%s",
			strings.Join(args, " "), code, err, stdout, stderr)
	}
	return rep, code, stderr
}

// itemKey names an item the way the acceptance test needs it named.
func itemKey(it check.Item) string {
	return fmt.Sprintf("%s/%s %s @%s: %s", it.Check, it.Kind, it.Name, it.Where, it.Status)
}

// wantClean requires exit 0 and every item of the named check ok (or skipped).
func wantClean(t *testing.T, what string, rep check.Report, code int, stderr string, section string) {
	t.Helper()
	if code != 0 || rep.Result != check.ResultClean || rep.ExitCode != 0 {
		var bad []string
		for _, it := range rep.Drifted() {
			bad = append(bad, itemKey(it)+" ("+it.Detail+")")
		}
		t.Fatalf("%s: exit %d, result %s; want 0, clean\nnot ok:\n  %s\nstderr:\n%s", what, code, rep.Result, strings.Join(bad, "\n  "), stderr)
	}
	n := 0
	for _, it := range rep.Items {
		if it.Check == section && it.Status == check.OK {
			n++
		}
	}
	if n == 0 {
		t.Fatalf("%s: no %s item is ok; the check looked at nothing: %+v", what, section, rep.Items)
	}
}

// wantDrift requires exit 3 and exactly the given items drifted (check/kind name: status).
func wantDrift(t *testing.T, what string, rep check.Report, code int, stderr string, want ...string) {
	t.Helper()
	var got []string
	for _, it := range rep.Drifted() {
		got = append(got, itemKey(it))
	}
	slices.Sort(got)
	slices.Sort(want)
	if code != 3 || rep.ExitCode != 3 || !slices.Equal(got, want) {
		t.Fatalf("%s: exit %d, drifted\n  %s\nwant exit 3, drifted\n  %s\nstderr:\n%s", what, code,
			strings.Join(got, "\n  "), strings.Join(want, "\n  "), stderr)
	}
}

// checkSite is a site whose lock was resolved offline and written to dir.
type checkSite struct {
	dir, config, lockPath string
	lock                  *site.Lock
}

// newCheckSite writes config (with %s for the factory URL) and resolves its lock.
func newCheckSite(t *testing.T, config string) *checkSite {
	t.Helper()
	return newCheckSiteTB(t, config)
}

func newCheckSiteTB(t testing.TB, config string) *checkSite {
	t.Helper()
	s := &checkSite{dir: t.TempDir()}
	s.config = filepath.Join(s.dir, "imgpipe.yaml")
	if err := os.WriteFile(s.config, []byte(config), 0o644); err != nil {
		t.Fatal(err)
	}
	s.lockPath = filepath.Join(s.dir, "imgpipe.lock.json")
	if _, stderr, code := runImgpipeTB(t, nil, "resolve", "--config", s.config, "--lock", s.lockPath, "-o", "json"); code != 0 {
		t.Fatalf("resolve = exit %d\n%s", code, stderr)
	}
	s.lock = readLockTB(t, s.lockPath)
	return s
}

const checkProfiles = `profiles:
  - name: controlplane
    role: controlplane
    extensions:
      - name: qemu-guest-agent
  - name: worker
    extensions:
      - name: qemu-guest-agent
      - name: nfs-utils
        optional: true
`

// TestCheckFactoryEndToEnd: every schematic of the lock resolves on the factory;
// the factory losing one is drift naming exactly that schematic; pushing it back is clean.
func TestCheckFactoryEndToEnd(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	s := newCheckSite(t, fmt.Sprintf("version: 1\ntalos: v1.12.x\nfactory:\n  url: %s\n", f.URL())+checkProfiles)
	for _, p := range s.lock.Profiles {
		if _, err := f.AddSchematic(p.Schematic.YAML); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"--config", s.config, "--lock", s.lockPath}

	rep, code, stderr := checkRun(t, nil, args...)
	wantClean(t, "all schematics known", rep, code, stderr, check.CheckFactory)

	lost := s.lock.Profiles[1]
	f.RemoveSchematic(lost.Schematic.ID)
	rep, code, stderr = checkRun(t, nil, args...)
	wantDrift(t, "factory lost a schematic", rep, code, stderr, "factory/schematic "+lost.Schematic.ID+" @"+f.URL()+": missing")
	for _, it := range rep.Drifted() {
		if it.Profile != lost.Name || !strings.Contains(it.Fix, "schematic push") {
			t.Errorf("drifted item %+v: want profile %s and a schematic push fix", it, lost.Name)
		}
	}

	if _, _, code := runImgpipe(t, nil, "schematic", "push", "--config", s.config, "--lock", s.lockPath); code != 0 {
		t.Fatalf("schematic push = exit %d", code)
	}
	rep, code, stderr = checkRun(t, nil, args...)
	wantClean(t, "schematic pushed again", rep, code, stderr, check.CheckFactory)
}

// runImgpipeTB is runImgpipe for tests and benchmarks.
func runImgpipeTB(t testing.TB, env map[string]string, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, func(k string) string { return env[k] })
	return out.String(), errb.String(), code
}

func readLockTB(t testing.TB, path string) *site.Lock {
	t.Helper()
	l, err := site.ReadLock(path)
	if err != nil {
		t.Fatalf("ReadLock(%q) error = %v", path, err)
	}
	return l
}

func TestCheckUsageErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	notReport := filepath.Join(dir, "build.json")
	if err := os.WriteFile(notReport, []byte(`{"schema": "imgpipe.dev/build-report/v1"}`), 0o644); err != nil {
		t.Fatal(err)
	}
	tests := [][]string{
		{"check", "-o", "yaml"},
		{"check", "--checks", "registry,dns"},
		{"check", "--lock", filepath.Join(dir, "missing.lock.json")},
		{"check", "issue"},
		{"check", "issue", "--report", notReport},
	}
	for _, args := range tests {
		stdout, stderr, code := runImgpipe(t, nil, args...)
		if code != 2 || stdout != "" {
			t.Errorf("imgpipe %s = exit %d, stdout %q; want exit 2 and nothing on stdout (stderr: %s)", strings.Join(args, " "), code, stdout, stderr)
		}
	}
}

// TestCheckRegistryUnreachable: a mirror that does not answer makes every image
// unchecked, by name, and the check incomplete (exit 1), never ok.
func TestCheckRegistryUnreachable(t *testing.T) {
	t.Parallel()
	addr, err := registrytest.FreeAddr() // free a moment ago: nothing listens there
	if err != nil {
		t.Fatal(err)
	}
	s := newCheckSite(t, "version: 1\ntalos: v1.12.x\n"+checkProfiles+
		fmt.Sprintf("registries:\n  insecure: true\n  mirrors:\n    ghcr.io:\n      endpoint: http://%s\n      mode: push\n", addr))
	rep, code, _ := checkRun(t, map[string]string{"HOME": s.dir}, "--config", s.config, "--lock", s.lockPath, "--checks", "registry")
	if code != 1 || rep.Result != check.ResultIncomplete {
		t.Fatalf("check with the mirror down = exit %d, %s; want 1, incomplete", code, rep.Result)
	}
	n := 0
	for _, it := range rep.Items {
		if it.Status == check.OK {
			t.Errorf("%s is ok with its mirror down", it.Name)
		}
		if it.Status == check.Unchecked {
			n++
			if !strings.HasPrefix(it.Name, "ghcr.io/") || !strings.Contains(it.Detail, addr) {
				t.Errorf("unchecked item %s (%s): want a ghcr.io image and the mirror named in the detail", it.Name, it.Detail)
			}
		}
	}
	if n == 0 {
		t.Errorf("no item unchecked: %+v", rep.Items)
	}
}
