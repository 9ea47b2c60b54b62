package registry

import (
	"github.com/imgpipe/imgpipe/internal/httpx"
	"os"
	"strings"
	"testing"
	"time"
)

// FuzzParseRetryAfter: any header value parses without panic, and an accepted one is
// never a negative wait. Seeds: testdata/retry-after.txt, one value a line.
func FuzzParseRetryAfter(f *testing.F) {
	seeds, err := os.ReadFile("testdata/retry-after.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(string(seeds), "\n") {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := httpx.ParseRetryAfter(v, now)
		if ok && d < 0 {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v, true; want a wait >= 0", v, d)
		}
		if !ok && d != 0 {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v, false; want 0 when refused", v, d)
		}
	})
}
