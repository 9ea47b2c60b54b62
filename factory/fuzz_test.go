package factory

import (
	"github.com/imgpipe/imgpipe/internal/httpx"
	"strconv"
	"testing"
	"time"
)

func FuzzParseContentRange(f *testing.F) {
	for _, s := range []string{"bytes 100-199/200", "bytes 0-0/*", "bytes */200", "", "bytes -1-2/3", "bytes 9223372036854775807-1/2"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		start, size, ok := parseContentRange(s)
		if !ok && (start != 0 || size != 0) {
			t.Errorf("parseContentRange(%q) = %d, %d, false; want zeros when not ok", s, start, size)
		}
		if ok && size < -1 {
			// A negative size other than "unknown" would make resume arithmetic wrong.
			if _, err := strconv.ParseInt(s, 10, 64); err == nil {
				t.Errorf("parseContentRange(%q) size = %d", s, size)
			}
		}
	})
}

func FuzzParseRetryAfter(f *testing.F) {
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	for _, s := range []string{"0", "120", "-3", "Sun, 01 Mar 2026 12:01:00 GMT", "garbage", ""} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, ok := httpx.ParseRetryAfter(s, now)
		if d < 0 {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v; want never negative", s, d)
		}
		if !ok && d != 0 {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v, false; want 0 when not ok", s, d)
		}
	})
}
