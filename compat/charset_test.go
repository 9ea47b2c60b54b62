package compat

import (
	"regexp"
	"testing"
)

// TestMatchers holds the hand-written matchers to the regular expressions they stand for.
func TestMatchers(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fn   func(string) bool
		re   *regexp.Regexp
	}{
		{"isDigest", isDigest, regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)},
		{"isExtName", isExtName, regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)},
		{"isTag", isTag, regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)},
		{"isBoard", isBoard, regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)},
	}
	inputs := []string{"", "a", "-", "ab", "a-", "-a", "a-b", "A", "_x", ".x", "v1.9.0", "1.2_3", "x y", "zfs", "rpi_generic",
		"sha256:" + string(make([]byte, 0)), "sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		"sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef", "é", "a\n"}
	long := make([]byte, 129)
	for i := range long {
		long[i] = 'a'
	}
	inputs = append(inputs, string(long), string(long[:128]))
	for _, tt := range tests {
		for _, in := range inputs {
			if got, want := tt.fn(in), tt.re.MatchString(in); got != want {
				t.Errorf("%s(%q) = %v; want %v", tt.name, in, got, want)
			}
		}
	}
}

func FuzzMatchers(f *testing.F) {
	for _, s := range []string{"sha256:00", "v1.9.0", "a-b", "rpi_generic"} {
		f.Add(s)
	}
	digest := regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	name := regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)
	tag := regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	board := regexp.MustCompile(`^[a-z0-9][a-z0-9_.-]*$`)
	f.Fuzz(func(t *testing.T, s string) {
		if isDigest(s) != digest.MatchString(s) || isExtName(s) != name.MatchString(s) || isTag(s) != tag.MatchString(s) || isBoard(s) != board.MatchString(s) {
			t.Fatalf("matchers disagree with their regexps on %q", s)
		}
	})
}
