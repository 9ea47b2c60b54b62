package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/internal/ghasim"
)

// moduleRoot finds the directory holding go.mod above the test's directory.
func moduleRoot(t *testing.T) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("go.mod not found")
		}
		dir = parent
	}
}

// siteRemote makes a bare repository holding this module's working tree (what the
// workflow builds imgpipe from) plus the site's imgpipe.yaml and lock.
func siteRemote(t *testing.T, dir string, files map[string][]byte) string {
	t.Helper()
	root := moduleRoot(t)
	src := filepath.Join(dir, "src")
	for _, rel := range strings.Split(strings.TrimSpace(gitT(t, root, "ls-files", "-co", "--exclude-standard")), "\n") {
		data, err := os.ReadFile(filepath.Join(root, rel))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		files[rel] = data
	}
	for rel, data := range files {
		p := filepath.Join(src, rel)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	bare := filepath.Join(dir, "remote.git")
	gitT(t, dir, "init", "-q", "--bare", "-b", "main", bare)
	gitT(t, src, "init", "-q", "-b", "main")
	gitT(t, src, "add", ".")
	gitT(t, src, "commit", "-qm", "site")
	gitT(t, src, "push", "-q", bare, "main")
	return bare
}

// goShim builds imgpipe once from this tree (the build cache makes that cheap after
// `go test` compiled the packages) and puts a `go` first on the workflow's PATH that
// answers the workflow's `go build -o X ./cmd/imgpipe` with a copy of it and runs the
// real go for anything else. A workflow build in ghasim's fresh workspace recompiles
// every package (the path is part of the build cache key) and takes minutes on a
// loaded machine; IMGPIPE_WORKFLOW_REAL_BUILD=1 runs it for real. It returns the PATH
// for the steps: the shim, ghasim's bin (the fake gh), then the host's.
func goShim(t *testing.T, dir string) string {
	t.Helper()
	realGo, err := exec.LookPath("go")
	if err != nil {
		t.Fatal(err)
	}
	shim := filepath.Join(dir, "shim")
	if err := os.MkdirAll(shim, 0o755); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(shim, "imgpipe.prebuilt")
	cmd := exec.Command(realGo, "build", "-o", bin, "./cmd/imgpipe")
	cmd.Dir = moduleRoot(t)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/imgpipe: %v\n%s", err, out)
	}
	script := fmt.Sprintf(`#!/bin/sh
if [ "$1" = build ] && [ "$2" = -o ] && [ "$4" = ./cmd/imgpipe ] && [ $# -eq 4 ]; then
  exec cp %q "$3"
fi
exec %q "$@"
`, bin, realGo)
	if err := os.WriteFile(filepath.Join(shim, "go"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return strings.Join([]string{shim, filepath.Join(dir, "bin"), os.Getenv("PATH")}, string(os.PathListSeparator))
}

// TestCheckWorkflowThreeDays runs .github/workflows/check.yml as GitHub would (ghasim:
// checkout from a bare remote, the real build of imgpipe, a fake gh keeping issue
// state) on three days against the fake factory: day 1 the factory has lost a
// schematic and one drift issue is opened; day 2 it still has, and that issue is
// updated (not a second one); day 3 the schematic is back and the issue is closed.
func TestCheckWorkflowThreeDays(t *testing.T) {
	if testing.Short() {
		t.Skip("builds imgpipe and the fake gh")
	}
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	s := newCheckSite(t, fmt.Sprintf("version: 1\ntalos: v1.12.x\nfactory:\n  url: %s\n", f.URL())+checkProfiles)
	for _, p := range s.lock.Profiles {
		if _, err := f.AddSchematic(p.Schematic.YAML); err != nil {
			t.Fatal(err)
		}
	}
	cfg, err := os.ReadFile(s.config)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := os.ReadFile(s.lockPath)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	remote := siteRemote(t, dir, map[string][]byte{"imgpipe.yaml": cfg, "imgpipe.lock.json": lock})
	wf, err := ghasim.ParseWorkflowFile(filepath.Join(moduleRoot(t), ".github", "workflows", "check.yml"))
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"XDG_CACHE_HOME": filepath.Join(dir, "xdg")}
	if os.Getenv("IMGPIPE_WORKFLOW_REAL_BUILD") == "" {
		env["PATH"] = goShim(t, dir)
	}
	var log strings.Builder
	var logTo io.Writer = &log
	if p := os.Getenv("CHECK_WF_LOG"); p != "" { // follow a run live: tail -f the file
		lf, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		defer lf.Close()
		logTo = io.MultiWriter(&log, lf)
	}
	day := func(n int) *ghasim.GHState {
		t.Helper()
		res, err := ghasim.Run(t.Context(), wf, ghasim.Options{Dir: dir, Remote: remote, RunID: n, Log: logTo, Env: env})
		if err != nil {
			t.Fatalf("day %d: %v\n%s", n, err, log.String())
		}
		if res.Err != nil || res.Jobs["check"].Result != "success" {
			t.Fatalf("day %d: job check = %s (%v)\n%s", n, res.Jobs["check"].Result, res.Err, log.String())
		}
		st, err := ghasim.LoadGHState(dir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	lost := s.lock.Profiles[1].Schematic.ID

	f.RemoveSchematic(lost)
	st := day(1)
	if len(st.Issues) != 1 || st.Issues[0].State != "OPEN" || !slices.Contains(st.Issues[0].Labels, "imgpipe-drift") ||
		!strings.Contains(st.Issues[0].Body, lost) {
		t.Fatalf("day 1 (drift): issues %+v; want one open imgpipe-drift issue naming schematic %s", st.Issues, lost)
	}

	st = day(2)
	if len(st.Issues) != 1 || st.Issues[0].State != "OPEN" || len(st.Issues[0].Comments) != 1 ||
		!strings.Contains(st.Issues[0].Body, lost) {
		t.Fatalf("day 2 (still drift): issues %+v; want the same issue, still open, body naming the schematic, one comment", st.Issues)
	}

	if _, err := f.AddSchematic(s.lock.Profiles[1].Schematic.YAML); err != nil {
		t.Fatal(err)
	}
	st = day(3)
	if len(st.Issues) != 1 || st.Issues[0].State != "CLOSED" || len(st.Issues[0].Comments) != 2 {
		t.Fatalf("day 3 (clean): issues %+v; want the one issue closed with a comment", st.Issues)
	}
	var issueCalls []string
	for _, c := range st.Calls {
		if len(c) > 1 && c[0] == "issue" {
			issueCalls = append(issueCalls, c[1])
		}
	}
	want := []string{"list", "create", "list", "edit", "comment", "list", "close"}
	if !slices.Equal(issueCalls, want) {
		t.Errorf("gh issue calls over three days = %v; want %v", issueCalls, want)
	}
}
