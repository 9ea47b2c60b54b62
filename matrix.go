// Package imgpipe embeds the compatibility matrix (matrix.yaml) so the binary
// resolves versions offline. It lives at the module root because go:embed cannot
// reach a parent directory.
package imgpipe

import _ "embed"

// MatrixYAML is the embedded matrix.yaml, parsed by compat.Parse.
//
//go:embed matrix.yaml
var MatrixYAML []byte

// MatrixName is how the embedded matrix is named in errors and locks.
const MatrixName = "matrix.yaml (embedded)"
