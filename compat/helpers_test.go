package compat_test

import (
	"os"
	"path/filepath"
	"sync"
	"testing"

	imgpipe "github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
)

// embedded parses the embedded matrix once; tests only read it.
var embedded = sync.OnceValues(func() (*compat.Matrix, error) {
	return compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
})

func embeddedMatrix(t *testing.T) *compat.Matrix {
	t.Helper()
	m, err := embedded()
	if err != nil {
		t.Fatalf("Parse(embedded matrix) = %v; want nil", err)
	}
	return m
}

func loadMatrix(t *testing.T, file string) *compat.Matrix {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", file))
	if err != nil {
		t.Fatal(err)
	}
	m, err := compat.Parse(file, data)
	if err != nil {
		t.Fatalf("Parse(%q) = %v; want nil", file, err)
	}
	return m
}
