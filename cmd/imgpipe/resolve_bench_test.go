package main

import (
	"context"
	"io"
	"strings"
	"testing"
)

// BenchmarkResolveCLI is `imgpipe resolve --talos v1.9.x` in-process (no package
// init, no exec): the part of the start-up the code controls. bench/startup measures
// the whole process.
func BenchmarkResolveCLI(b *testing.B) {
	for b.Loop() {
		if code := run(context.Background(), []string{"resolve", "--talos", "v1.9.x"}, strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" }); code != 0 {
			b.Fatalf("exit %d", code)
		}
	}
}
