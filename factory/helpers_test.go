package factory_test

import (
	"context"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
)

// contextWithCancelOnProgress returns a context cancelled once a download reports at least n bytes.
func contextWithCancelOnProgress(t *testing.T, n int64) (context.Context, func(factory.Progress)) {
	ctx, cancel := context.WithCancel(t.Context())
	return ctx, func(p factory.Progress) {
		if p.Done >= n {
			cancel()
		}
	}
}
