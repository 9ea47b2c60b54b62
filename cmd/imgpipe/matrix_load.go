package main

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
)

// loadMatrix parses --matrix, or the embedded matrix.yaml. It returns the matrix and
// the name it was read under (for errors and the lock).
func (a *app) loadMatrix() (*compat.Matrix, string, error) {
	if a.matrixPath == "" {
		m, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
		return m, "embedded", err
	}
	data, err := os.ReadFile(a.matrixPath)
	if err != nil {
		return nil, "", fail.Usage(fmt.Errorf("reading matrix: %w", err))
	}
	m, err := compat.Parse(a.matrixPath, data)
	return m, portableName(a.matrixPath), err
}

// portableName is how the lock records a matrix file: the path as given when it is
// local to the working directory ("matrix.yaml"), else its base name, so the lock
// holds no machine's absolute paths.
func portableName(p string) string {
	if filepath.IsLocal(p) {
		return filepath.ToSlash(filepath.Clean(p))
	}
	return filepath.Base(p)
}
