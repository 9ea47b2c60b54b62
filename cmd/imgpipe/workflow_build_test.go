package main

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/internal/ghasim"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

// workflowRepo is a bare git remote holding this module's source plus a site
// config, a refreshed matrix and a committed lock, as an operator's repository would.
type workflowRepo struct {
	dir, src, bare string
}

func gitT(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.invalid",
		"GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.invalid", "GIT_CONFIG_GLOBAL=/dev/null")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v\n%s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// newWorkflowRepo copies the module's files (tracked and new, as in this checkout)
// into a fresh repository with the given imgpipe.yaml, bootstraps matrix.yaml and the
// lock with `imgpipe refresh`, and pushes it to a bare remote's main.
func newWorkflowRepo(t *testing.T, siteYAML string) *workflowRepo {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	r := &workflowRepo{dir: t.TempDir()}
	r.src, r.bare = filepath.Join(r.dir, "src"), filepath.Join(r.dir, "remote.git")
	for _, f := range strings.Split(gitT(t, root, "ls-files", "-co", "--exclude-standard"), "\n") {
		if f == "" || f == "imgpipe.yaml" || f == "imgpipe.lock.json" {
			continue
		}
		data, err := os.ReadFile(filepath.Join(root, f))
		if os.IsNotExist(err) {
			continue // deleted in the working tree
		}
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(r.src, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(r.src, "imgpipe.yaml"), []byte(siteYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	cfg, matrix, lock := filepath.Join(r.src, "imgpipe.yaml"), filepath.Join(r.src, "matrix.yaml"), filepath.Join(r.src, "imgpipe.lock.json")
	if _, stderr, code := runImgpipe(t, nil, "refresh", "--config", cfg, "--matrix", matrix, "--lock", lock); code != 0 {
		t.Fatalf("bootstrap refresh = exit %d; stderr:\n%s", code, stderr)
	}
	gitT(t, r.dir, "init", "-q", "--bare", "-b", "main", r.bare)
	gitT(t, r.src, "init", "-q", "-b", "main")
	gitT(t, r.src, "add", "-A")
	gitT(t, r.src, "commit", "-q", "-m", "site")
	gitT(t, r.src, "push", "-q", r.bare, "main")
	return r
}

// show reads a file at a ref of the remote.
func (r *workflowRepo) show(t *testing.T, ref, file string) string {
	t.Helper()
	return gitT(t, r.dir, "--git-dir", r.bare, "show", ref+":"+file)
}

// TestBuildWorkflow runs .github/workflows/build.yml as GitHub would (ghasim) on four
// days against the fake factory and a fake PVE: nothing new, a new patch (one PR,
// its body the drift report), the same again (that PR updated, not duplicated), and
// after the merge a broken release (never built; the matrix recording it is
// proposed in a pull request of its own).
//
// The self-hosted build job runs the stages resolve,schematic,fetch,mirror,upload
// (the repository variable IMGPIPE_BUILD_STAGES): verify needs signed images in
// registries, which this site does not configure; mirror reports "no registries";
// upload puts the ISO on the fake PVE.
func TestBuildWorkflow(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog(),
		// The template stage decompresses the nocloud .raw.zst: serve a real zstd stream.
		Content: func(id, version, path string) []byte {
			if strings.HasSuffix(path, ".raw.zst") {
				return enc.EncodeAll(e2eDisk(id, version), nil)
			}
			return nil
		}})
	pve := pvetest.New(pvetest.WithTaskPolls(0))
	t.Cleanup(pve.Close)
	siteYAML := "version: 1\ntalos: v1.13.x\nfactory:\n  url: " + f.URL() + "\nprofiles:\n  - name: worker\n    extensions:\n      - name: qemu-guest-agent\n" +
		"proxmox:\n  url: " + pve.URL + "\n  fingerprint: " + pve.Fingerprint() + "\n  nodes: [pve1]\n  storage: local\n  isoMethod: upload\n"
	repo := newWorkflowRepo(t, siteYAML)
	wf, err := ghasim.ParseWorkflowFile(filepath.Join(repo.src, ".github", "workflows", "build.yml"))
	if err != nil {
		t.Fatal(err)
	}
	gocache := strings.TrimSpace(gitLessGoEnv(t, "GOCACHE"))
	runDir := filepath.Join(repo.dir, "gha")
	var log strings.Builder
	day := func(n int) *ghasim.Result {
		t.Helper()
		log.Reset()
		res, err := ghasim.Run(ctx, wf, ghasim.Options{
			Dir: runDir, Remote: repo.bare, RunID: n, Log: &log,
			Secrets: map[string]string{"IMGPIPE_PROXMOX_TOKEN": pve.Token()},
			Vars:    map[string]string{"IMGPIPE_BUILD_STAGES": "resolve,schematic,fetch,mirror,upload"},
			Env:     map[string]string{"XDG_CACHE_HOME": filepath.Join(repo.dir, "runner-cache"), "GOCACHE": gocache},
		})
		if err != nil {
			t.Fatalf("day %d: %v\n%s", n, err, log.String())
		}
		if res.Err != nil {
			t.Fatalf("day %d: %v\n%s", n, res.Err, log.String())
		}
		return res
	}
	state := func() *ghasim.GHState {
		t.Helper()
		st, err := ghasim.LoadGHState(runDir)
		if err != nil {
			t.Fatal(err)
		}
		return st
	}

	// Day 1: the factory lists nothing new.
	if res := day(1); res.Jobs["build"].Result != "skipped" || res.Jobs["publish"].Result != "skipped" || res.Jobs["refresh"].Outputs["changed"] != "false" {
		t.Errorf("day 1: refresh outputs %v, build %s, publish %s; want changed=false, no build, nothing published",
			res.Jobs["refresh"].Outputs, res.Jobs["build"].Result, res.Jobs["publish"].Result)
	}
	if st := state(); len(st.Calls) != 0 || len(st.PRs) != 0 {
		t.Errorf("day 1: gh calls %v, PRs %d; want none", st.Calls, len(st.PRs))
	}

	// Day 2: a new patch release.
	f.SetCatalog(catalogWithPatch(false))
	res := day(2)
	if res.Jobs["build"].Result != "success" || res.Jobs["publish"].Result != "success" {
		t.Fatalf("day 2: build = %s, publish = %s; want both success\n%s", res.Jobs["build"].Result, res.Jobs["publish"].Result, log.String())
	}
	drift, err := os.ReadFile(filepath.Join(runDir, "runs", "2", "artifacts", "resolved", "drift.md"))
	if err != nil {
		t.Fatal(err)
	}
	st := state()
	if prs := st.OpenPRs(); len(prs) != 1 || prs[0].Body != string(drift) || prs[0].Head != "imgpipe/refresh-imgpipe" || prs[0].Base != "main" {
		t.Fatalf("day 2: PRs %+v; want one from imgpipe/refresh-imgpipe into main with the drift report as body", st.PRs)
	}
	if !strings.Contains(string(drift), "Talos v1.13.9 → v1.13.10") {
		t.Errorf("day 2: drift report lacks the new patch:\n%s", drift)
	}
	branchLock, err := site.ParseLock("branch lock", []byte(repo.show(t, "imgpipe/refresh-imgpipe", "imgpipe.lock.json")+"\n"))
	if err != nil {
		t.Fatal(err)
	}
	if branchLock.Talos != "v1.13.10" || len(branchLock.Profiles[0].Artifacts) != 2 || branchLock.Profiles[0].Artifacts[0].SHA256 == "" {
		t.Errorf("day 2: branch lock = Talos %s, artifacts %+v; want v1.13.10 with both artifacts fetched", branchLock.Talos, branchLock.Profiles[0].Artifacts)
	}
	if !slices.ContainsFunc(pve.Volumes(), func(v pvetest.Volume) bool { return strings.Contains(v.VolID, "v1.13.10") }) {
		t.Errorf("day 2: PVE volumes %+v; want the v1.13.10 ISO", pve.Volumes())
	}
	head2 := gitT(t, repo.dir, "--git-dir", repo.bare, "rev-parse", "imgpipe/refresh-imgpipe")

	// Day 3: the same again: the branch is force-pushed, the PR updated, not duplicated.
	if res := day(3); res.Jobs["build"].Result != "success" || res.Jobs["publish"].Result != "success" {
		t.Fatalf("day 3: build = %s, publish = %s; want both success", res.Jobs["build"].Result, res.Jobs["publish"].Result)
	}
	st = state()
	if len(st.PRs) != 1 || st.PRs[0].Edits != 1 || st.PRs[0].Body != string(drift) {
		t.Errorf("day 3: PRs %+v; want the one PR edited once, same body", st.PRs)
	}
	creates := 0
	for _, c := range st.Calls {
		if len(c) > 1 && c[0] == "pr" && c[1] == "create" {
			creates++
		}
	}
	if creates != 1 {
		t.Errorf("gh pr create calls = %d; want 1 (calls %v)", creates, st.Calls)
	}
	if head3 := gitT(t, repo.dir, "--git-dir", repo.bare, "rev-parse", "imgpipe/refresh-imgpipe"); head3 == head2 {
		t.Errorf("day 3: the branch was not updated")
	}

	// The PR is merged. Day 4: the factory lists v1.13.11, marked broken.
	gitT(t, repo.dir, "--git-dir", repo.bare, "update-ref", "refs/heads/main", "refs/heads/imgpipe/refresh-imgpipe")
	st.PRs[0].State = "MERGED"
	if err := st.Save(runDir); err != nil {
		t.Fatal(err)
	}
	c := catalogWithPatch(false)
	c.Versions = append(c.Versions, "v1.13.11")
	c.Extensions["v1.13.11"] = c.Extensions["v1.13.9"]
	c.Broken = append(c.Broken, "v1.13.11")
	f.SetCatalog(c)
	volumes := len(pve.Volumes())
	if res := day(4); res.Jobs["build"].Result != "skipped" || res.Jobs["publish"].Result != "success" {
		t.Errorf("day 4: build = %s, publish = %s; want no build (v1.13.11 is broken), the matrix published", res.Jobs["build"].Result, res.Jobs["publish"].Result)
	}
	// The matrix change (v1.13.11 recorded as broken) is proposed; nothing is rebuilt.
	if prs := state().OpenPRs(); len(prs) != 1 || !strings.Contains(prs[0].Body, "No rebuild") || !strings.Contains(prs[0].Body, "v1.13.11 (broken)") {
		t.Errorf("day 4: open PRs %+v; want one matrix-only PR naming v1.13.11 as broken\n%s", prs, log.String())
	}
	if got := repo.show(t, "imgpipe/refresh-imgpipe", "imgpipe.lock.json"); !strings.Contains(got, `"talos": "v1.13.10"`) {
		t.Errorf("day 4: the branch's lock moved off v1.13.10:\n%s", got)
	}
	if n := len(pve.Volumes()); n != volumes {
		t.Errorf("day 4: PVE volumes %d -> %d; want nothing uploaded", volumes, n)
	}
	for _, r := range f.Requests() {
		if strings.Contains(r.Path, "v1.13.11") && r.Route != factorytest.RouteExtensions {
			t.Errorf("day 4: the factory was asked for %s %s; a broken release is never built", r.Method, r.Path)
		}
	}
}

// gitLessGoEnv is `go env NAME`.
func gitLessGoEnv(t *testing.T, name string) string {
	t.Helper()
	out, err := exec.Command("go", "env", name).Output()
	if err != nil {
		t.Fatalf("go env %s: %v", name, err)
	}
	return string(out)
}
