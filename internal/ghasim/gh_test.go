package ghasim

import (
	"path/filepath"
	"strings"
	"testing"
)

func gh(t *testing.T, dir string, env map[string]string, args ...string) (string, int) {
	t.Helper()
	var out, errb strings.Builder
	getenv := func(k string) string {
		if v, ok := env[k]; ok {
			return v
		}
		return map[string]string{GHStateEnv: GHStatePath(dir), "GH_TOKEN": "x"}[k]
	}
	code := GHMain(args, getenv, strings.NewReader("from stdin"), &out, &errb)
	return out.String() + errb.String(), code
}

func TestFakeGH(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	steps := []struct {
		args []string
		out  string
		code int
	}{
		{[]string{"pr", "list", "--head", "b"}, "", 0},
		{[]string{"pr", "create", "-t", "T", "-b", "B", "-H", "b", "-B", "main"}, "https://github.com/ghasim/repo/pull/1\n", 0},
		{[]string{"pr", "create", "-t", "T", "-b", "B", "-H", "b", "-B", "main"}, "already exists", 1},
		{[]string{"pr", "list", "--head", "b"}, "1\tT\tb\tOPEN\n", 0},
		{[]string{"pr", "edit", "b", "--body-file", "-", "--title=T2"}, "", 0},
		{[]string{"pr", "view", "1"}, "title:\tT2\nstate:\tOPEN\nnumber:\t1\nhead:\tb\n--\nfrom stdin\n", 0},
		{[]string{"issue", "create", "--title", "drift", "--body", "x", "--label", "imgpipe,bot"}, "https://github.com/ghasim/repo/issues/2\n", 0},
		{[]string{"issue", "list", "--label", "imgpipe", "--search", "drift in:title"}, "2\tOPEN\tdrift\timgpipe, bot\n", 0},
		{[]string{"issue", "comment", "2", "--body", "again"}, "", 0},
		{[]string{"issue", "edit", "2", "--remove-label", "bot"}, "", 0},
		{[]string{"issue", "close", "2", "--comment", "fixed"}, "", 0},
		{[]string{"issue", "list"}, "", 0},
		{[]string{"issue", "list", "--state", "closed"}, "2\tCLOSED\tdrift\timgpipe\n", 0},
		{[]string{"issue", "close", "9"}, "could not resolve", 1},
		{[]string{"pr", "list", "--json", "number"}, "unknown flag --json", 1},
		{[]string{"repo", "clone", "x"}, "does not implement", 1},
	}
	for _, s := range steps {
		out, code := gh(t, dir, nil, s.args...)
		if code != s.code || !strings.Contains(out, s.out) || (s.out == "" && out != "") {
			t.Errorf("gh %v = %q, %d; want %q, %d", s.args, out, code, s.out, s.code)
		}
	}
	st, err := LoadGHState(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Calls) != len(steps) || len(st.Issues[0].Comments) != 2 || len(st.OpenPRs()) != 1 {
		t.Errorf("state = %d calls, issue %+v, PRs %+v", len(st.Calls), st.Issues[0], st.PRs)
	}
	if _, code := gh(t, dir, map[string]string{"GH_TOKEN": ""}, "pr", "list"); code != 4 {
		t.Errorf("gh without a token exited %d; want 4", code)
	}
	if _, code := gh(t, filepath.Join(dir, "none"), map[string]string{GHStateEnv: ""}, "pr", "list"); code != 4 {
		t.Errorf("gh without state exited %d; want 4", code)
	}
}
