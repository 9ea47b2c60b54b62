package factory_test

import (
	"go/build"
	"strings"
	"testing"
)

// TestImportDirection keeps factory below pipeline: it may use compat and
// extensions, never the CLI, the pipeline, the uploaders or cosign.
func TestImportDirection(t *testing.T) {
	t.Parallel()
	forbidden := []string{
		"github.com/imgpipe/imgpipe/cmd",
		"github.com/imgpipe/imgpipe/pipeline",
		"github.com/imgpipe/imgpipe/upload",
		"github.com/imgpipe/imgpipe/upgrade",
		"github.com/sigstore/",
	}
	for _, dir := range []string{".", "factorytest"} {
		pkg, err := build.ImportDir(dir, 0)
		if err != nil {
			t.Fatalf("build.ImportDir(%q) error = %v", dir, err)
		}
		for _, imp := range pkg.Imports {
			for _, f := range forbidden {
				if strings.HasPrefix(imp, f) {
					t.Errorf("package %s imports %s; factory must not depend on %s", pkg.Name, imp, f)
				}
			}
		}
	}
}
