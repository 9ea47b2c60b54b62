package ghasim

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

func git(t *testing.T, dir string, args ...string) string {
	t.Helper()
	cmd := exec.Command("git", args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@x", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@x")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("git %v: %v: %s", args, err, out)
	}
	return strings.TrimSpace(string(out))
}

// remoteWith makes a bare repository whose main branch holds data.txt = content.
func remoteWith(t *testing.T, dir, content string) string {
	t.Helper()
	bare := filepath.Join(dir, "remote.git")
	src := filepath.Join(dir, "src")
	if _, err := os.Stat(bare); err != nil {
		git(t, dir, "init", "-q", "--bare", "-b", "main", bare)
		git(t, dir, "clone", "-q", bare, src)
	}
	git(t, src, "switch", "-q", "-C", "main")
	touchWith(t, filepath.Join(src, "data.txt"), content)
	git(t, src, "add", ".")
	git(t, src, "commit", "-q", "--allow-empty", "-m", content)
	git(t, src, "push", "-q", "origin", "main")
	return bare
}

func touchWith(t *testing.T, p, content string) {
	t.Helper()
	if err := os.WriteFile(p, []byte(content+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestRunFlow(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the fake gh")
	}
	ctx := context.Background()
	wf, err := ParseWorkflowFile("testdata/flow.yml")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var log strings.Builder
	run := func(id int, content string, opts Options) *Result {
		t.Helper()
		opts.Dir, opts.Remote, opts.RunID, opts.Log = dir, remoteWith(t, dir, content), id, &log
		res, err := Run(ctx, wf, opts)
		if err != nil {
			t.Fatalf("run %d: %v\n%s", id, err, log.String())
		}
		if res.Err != nil {
			t.Fatalf("run %d: %v\n%s", id, res.Err, log.String())
		}
		return res
	}

	res := run(1, "old", Options{})
	if got := res.Jobs["act"].Result; got != "skipped" {
		t.Errorf("day 1: act = %s; want skipped", got)
	}
	// A job run by always() after a skipped need still runs its steps.
	if got := res.Jobs["report"].Outputs["ran"]; got != "skipped" {
		t.Errorf("day 1: report outputs.ran = %q; want skipped (its step ran)", got)
	}
	if got := res.Jobs["decide"].Outputs["multi"]; got != "line1\nline2" {
		t.Errorf("heredoc output = %q; want line1\\nline2", got)
	}
	res = run(2, "new", Options{})
	if got := res.Jobs["act"].Result; got != "success" {
		t.Errorf("day 2: act = %s; want success", got)
	}
	if got := res.Jobs["after-failure"].Result; got != "skipped" {
		t.Errorf("after-failure = %s; want skipped", got)
	}
	run(3, "old", Options{Event: "workflow_dispatch", Inputs: map[string]string{"force": "true"}})

	st, err := LoadGHState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.PRs) != 1 || st.PRs[0].Edits != 1 || st.PRs[0].Body != "old\n" || st.PRs[0].Head != "bot/update" {
		t.Errorf("PRs = %+v; want one PR edited once with body old", st.PRs)
	}
	var verbs []string
	for _, c := range st.Calls {
		verbs = append(verbs, strings.Join(c[:2], " "))
	}
	if want := []string{"pr list", "pr create", "pr list", "pr edit"}; !slices.Equal(verbs, want) {
		t.Errorf("gh calls = %v; want %v", verbs, want)
	}
	if got := git(t, dir, "--git-dir", filepath.Join(dir, "remote.git"), "show", "bot/update:run.txt"); got != "3" {
		t.Errorf("pushed run.txt = %q; want 3", got)
	}
}

func TestRunRejectsBadInputs(t *testing.T) {
	t.Parallel()
	wf, err := ParseWorkflowFile("testdata/flow.yml")
	if err != nil {
		t.Fatal(err)
	}
	for _, in := range []map[string]string{{"force": "yes"}, {"nope": "x"}} {
		if _, err := Run(context.Background(), wf, Options{Dir: t.TempDir(), Event: "workflow_dispatch", Inputs: in}); err == nil {
			t.Errorf("Run(inputs %v) = nil error; want one", in)
		}
	}
}

func TestParseWorkflowErrors(t *testing.T) {
	t.Parallel()
	for _, src := range []string{
		"jobs:\n  a:\n    needs: b\n    steps: [{run: x}]\n",
		"jobs:\n  a:\n    needs: b\n    steps: [{run: x}]\n  b:\n    needs: a\n    steps: [{run: x}]\n",
		"jobs:\n  a:\n    steps: [{run: x, uses: y}]\n",
		"jobs: [a]\n",
	} {
		if _, err := ParseWorkflow([]byte(src)); err == nil {
			t.Errorf("ParseWorkflow(%q) = nil error; want one", src)
		}
	}
}

func FuzzParseWorkflow(f *testing.F) {
	data, err := os.ReadFile("testdata/flow.yml")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(data)
	f.Add([]byte("on: push\njobs:\n  a:\n    steps: [{run: x}]\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		wf, err := ParseWorkflow(data)
		if err == nil {
			if _, err := wf.order(); err != nil {
				t.Errorf("ParseWorkflow accepted a workflow whose jobs cannot be ordered: %v", err)
			}
		}
	})
}

func FuzzParseKV(f *testing.F) {
	for _, s := range []string{"a=b\n", "m<<EOF\nx\ny\nEOF\n", "bad\n", "m<<EOF\nnever closed\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		p := filepath.Join(t.TempDir(), "out")
		if err := os.WriteFile(p, data, 0o644); err != nil {
			t.Fatal(err)
		}
		_, _ = parseKV(p) // must not panic
	})
}

func TestParseKV(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "out")
	if err := os.WriteFile(p, []byte("a=b=c\nm<<EOF\nx\n\ny\nEOF\nempty=\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	got, err := parseKV(p)
	if err != nil || got["a"] != "b=c" || got["m"] != "x\n\ny" || got["empty"] != "" || len(got) != 3 {
		t.Errorf("parseKV = %q, %v; want a=b=c, m=x\\n\\ny, empty=", got, err)
	}
}
