package site_test

import (
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/site"
)

func TestParseReleaseAge(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"", 0, true}, {"0", 0, true}, {"3d", 72 * time.Hour, true}, {"72h", 72 * time.Hour, true},
		{"1d12h", 36 * time.Hour, true}, {"90m", 90 * time.Minute, true},
		{"3 days", 0, false}, {"-1h", 0, false}, {"d", 0, false}, {"99999d", 0, false}, {"3d-1h", 0, false},
	}
	for _, tt := range tests {
		got, err := site.ParseReleaseAge(tt.in)
		if (err == nil) != tt.ok || got != tt.want {
			t.Errorf("ParseReleaseAge(%q) = %v, %v; want %v, ok %v", tt.in, got, err, tt.want, tt.ok)
		}
	}
}

func FuzzParseReleaseAge(f *testing.F) {
	for _, s := range []string{"3d", "72h", "1d12h", "0", "", "99999d", "3 days"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		d, err := site.ParseReleaseAge(s)
		if err == nil && d < 0 {
			t.Errorf("ParseReleaseAge(%q) = %v; want no negative soak", s, d)
		}
	})
}
