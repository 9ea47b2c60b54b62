//go:build !unix

package factory

import "context"

// lockFile is a no-op where flock(2) does not exist; concurrent runs sharing a
// cache are then the caller's to avoid.
func lockFile(context.Context, string) (func(), error) { return func() {}, nil }
