package upgrade

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/site"
)

var (
	matrixOnce sync.Once
	matrixVal  *compat.Matrix
	matrixErr  error
)

// testMatrix is the embedded matrix, parsed once; tests only read it.
func testMatrix(t testing.TB) *compat.Matrix {
	t.Helper()
	matrixOnce.Do(func() { matrixVal, matrixErr = compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML) })
	if matrixErr != nil {
		t.Fatal(matrixErr)
	}
	return matrixVal
}

func testSite(t testing.TB) *site.Config {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", "site.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := site.ParseConfig("site.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

func readInventory(t testing.TB, name string) *Inventory {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	inv, err := ParseInventory(name, data)
	if err != nil {
		t.Fatal(err)
	}
	return inv
}

func profileNames(cfg *site.Config) []string {
	var out []string
	for _, p := range cfg.Profiles {
		out = append(out, p.Name)
	}
	return out
}
