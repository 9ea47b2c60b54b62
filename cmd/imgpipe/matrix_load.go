package main

import (
	"fmt"
	"os"

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
	return m, a.matrixPath, err
}
