package upgrade

import (
	"bytes"
	"go/parser"
	"go/token"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func clusterPlan(t *testing.T, opts Options) *Plan {
	t.Helper()
	p, err := planFor(t, "cluster.yaml", "", opts)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func TestWriteScriptNothingToDo(t *testing.T) {
	t.Parallel()
	p, err := planFor(t, "", `nodes:
  - {name: cp-1, address: 10.5.0.11, role: controlplane, profile: controlplane, talos: v1.10.9, kubernetes: 1.33.6}
`, Options{To: "v1.10.x"})
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := WriteScript(&buf, p); err != nil {
		t.Fatal(err)
	}
	if regexp.MustCompile(`(?m)^(talosctl|kubectl|imgpipe|crane) `).MatchString(buf.String()) || !strings.Contains(buf.String(), "nothing to do") {
		t.Errorf("WriteScript(no hops) =\n%s\nwant a script that says there is nothing to do", buf.String())
	}
}

// TestImportDirection keeps the package pure: it may import site, extensions, compat
// and internal helpers, never the CLI, the pipeline or any I/O stage.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	allowed := []string{"github.com/imgpipe/imgpipe/site", "github.com/imgpipe/imgpipe/extensions",
		"github.com/imgpipe/imgpipe/compat", "github.com/imgpipe/imgpipe/internal/"}
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") {
			continue
		}
		af, err := parser.ParseFile(token.NewFileSet(), f, nil, parser.ImportsOnly)
		if err != nil {
			t.Fatal(err)
		}
		for _, imp := range af.Imports {
			path, _ := strconv.Unquote(imp.Path.Value)
			if !strings.HasPrefix(path, "github.com/imgpipe/") {
				if slices.Contains([]string{"net/http", "os", "os/exec"}, path) {
					t.Errorf("%s imports %s; the planner does no I/O", f, path)
				}
				continue
			}
			if !slices.ContainsFunc(allowed, func(a string) bool { return strings.HasPrefix(path, a) }) {
				t.Errorf("%s imports %s; upgrade may import only site, extensions, compat and internal", f, path)
			}
		}
	}
}
