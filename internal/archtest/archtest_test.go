package archtest

import (
	"errors"
	"fmt"
	"go/build"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const module = "github.com/imgpipe/imgpipe"

// ioPackages do network or disk I/O (or exist to). Pure packages may not import them.
var ioPackages = []string{
	"net", "net/http", "net/http/*", "net/rpc", "net/smtp", "net/mail",
	"os", "os/exec", "os/signal", "io/ioutil", "path/filepath", "syscall", "crypto/tls",
	"database/sql", "plugin",
	"github.com/google/go-containerregistry/*",
	"github.com/luthermonson/go-proxmox", "github.com/luthermonson/go-proxmox/*",
	"github.com/sigstore/*",
	"github.com/siderolabs/image-factory/pkg/client",
	"github.com/hashicorp/go-retryablehttp",
	"google.golang.org/grpc", "google.golang.org/grpc/*",
}

// stages are the module's packages above compat/extensions/site.
var stages = []string{"pipeline", "pipeline/*", "factory", "factory/*", "upload", "upload/*", "cluster", "cluster/*", "cmd", "cmd/*"}

type rule struct {
	pkg string // module-relative
	// pure: no I/O imports in the package or in any module package it reaches.
	pure bool
	// forbidden module-relative packages anywhere in its module-internal closure.
	forbidden []string
}

var rules = []rule{
	{pkg: "compat", pure: true, forbidden: append([]string{"site", "site/*", "extensions", "extensions/*"}, stages...)},
	{pkg: "extensions", pure: true, forbidden: append([]string{"site", "site/*"}, stages...)},
	{pkg: "site", forbidden: stages},
	// ghasim emulates GitHub Actions for tests; it stays free of the project so any test can use it.
	{pkg: "internal/ghasim", forbidden: append([]string{"compat", "extensions", "site", "site/*"}, stages...)},
	// upgrade plans from values; reading the live cluster is cluster's job, one level up.
	{pkg: "upgrade", forbidden: stages},
	// cluster is an I/O package beside factory and upload/*: it may use upgrade, never the CLI or pipeline.
	{pkg: "cluster", forbidden: []string{"pipeline", "pipeline/*", "factory", "factory/*", "upload", "upload/*", "cmd", "cmd/*"}},
	// check orchestrates the stage packages' read-only checks; they never know it, and it never knows the CLI.
	{pkg: "pipeline/check", forbidden: []string{"cmd", "cmd/*"}},
	{pkg: "upload/registry", forbidden: []string{"pipeline", "pipeline/*", "cmd", "cmd/*"}},
	{pkg: "upload/proxmox", forbidden: []string{"pipeline", "pipeline/*", "cmd", "cmd/*"}},
}

func match(patterns []string, path string) bool {
	for _, p := range patterns {
		if p == path || (strings.HasSuffix(p, "/*") && strings.HasPrefix(path, strings.TrimSuffix(p, "*"))) {
			return true
		}
	}
	return false
}

// importsFunc returns the non-test imports of a module-relative package.
type importsFunc func(rel string) ([]string, error)

// check walks the module-internal closure of r.pkg and returns every violation.
func check(r rule, imports importsFunc) []error {
	var errs []error
	seen := map[string]bool{}
	var walk func(rel string, via []string)
	walk = func(rel string, via []string) {
		if seen[rel] {
			return
		}
		seen[rel] = true
		path := append(slices.Clone(via), rel)
		imps, err := imports(rel)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", rel, err))
			return
		}
		for _, imp := range imps {
			if r.pure && match(ioPackages, imp) {
				errs = append(errs, fmt.Errorf("%s must do no I/O, but %s imports %s", r.pkg, strings.Join(path, " -> "), imp))
			}
			inner, ok := strings.CutPrefix(imp, module+"/")
			if !ok {
				continue
			}
			if match(r.forbidden, inner) {
				errs = append(errs, fmt.Errorf("imports flow downward only, but %s imports %s", strings.Join(path, " -> "), inner))
			}
			walk(inner, path)
		}
	}
	walk(r.pkg, nil)
	return errs
}

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

// TestImportDirection reads the real packages with go/build (build constraints
// applied, _test.go files excluded) and applies the rules.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	root := moduleRoot(t)
	imports := func(rel string) ([]string, error) {
		p, err := build.Default.ImportDir(filepath.Join(root, filepath.FromSlash(rel)), 0)
		if err != nil {
			var noGo *build.NoGoError
			if errors.As(err, &noGo) {
				return nil, nil
			}
			return nil, err
		}
		return p.Imports, nil
	}
	for _, r := range rules {
		for _, err := range check(r, imports) {
			t.Errorf("%v", err)
		}
	}
}

// TestCheckCatchesViolations proves the rules bite, on a made-up import graph.
func TestCheckCatchesViolations(t *testing.T) {
	t.Parallel()
	graph := map[string][]string{
		"compat":         {"fmt", module + "/internal/yamlx"},
		"internal/yamlx": {"os"}, // I/O reached through a module package
		"extensions":     {module + "/compat", "net/http"},
		"site":           {module + "/extensions", module + "/factory"},
		"factory":        {"github.com/siderolabs/image-factory/pkg/client"},
	}
	imports := func(rel string) ([]string, error) { return graph[rel], nil }
	tests := []struct {
		pkg  string
		want []string
	}{
		{"compat", []string{"compat -> internal/yamlx imports os"}},
		{"extensions", []string{"extensions imports net/http", "extensions -> compat -> internal/yamlx imports os"}},
		{"site", []string{"site imports factory"}},
	}
	for _, tt := range tests {
		var r rule
		for _, x := range rules {
			if x.pkg == tt.pkg {
				r = x
			}
		}
		errs := check(r, imports)
		msg := fmt.Sprint(errs)
		for _, w := range tt.want {
			if !strings.Contains(msg, w) {
				t.Errorf("check(%s) = %v; want a violation %q", tt.pkg, errs, w)
			}
		}
		if len(errs) != len(tt.want) {
			t.Errorf("check(%s) found %d violations; want %d: %v", tt.pkg, len(errs), len(tt.want), errs)
		}
	}
}
