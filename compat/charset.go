package compat

import "strings"

// Hand-written matchers for the per-row checks of validate: the full catalog has
// thousands of rows, and these run on every start (regexp costs milliseconds there).
// Each is the regular expression in its comment; TestMatchers holds them to it.

// byteSet is a set of ASCII bytes, as a bitmap.
type byteSet [4]uint64

func setOf(chars string) byteSet {
	var b byteSet
	for i := 0; i < len(chars); i++ {
		b[chars[i]>>6] |= 1 << (chars[i] & 63)
	}
	return b
}

func (b *byteSet) has(c byte) bool { return b[c>>6]&(1<<(c&63)) != 0 }

// The sets are built once at init (a few nanoseconds; a regexp.MustCompile costs
// microseconds).
var (
	hexDigits  = setOf("0123456789abcdef")
	nameChars  = setOf("abcdefghijklmnopqrstuvwxyz0123456789-")
	boardChars = setOf("abcdefghijklmnopqrstuvwxyz0123456789_.-")
	tagChars   = setOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")
)

func allIn(s string, set *byteSet) bool {
	for i := 0; i < len(s); i++ {
		if !set.has(s[i]) {
			return false
		}
	}
	return true
}

// isDigest: ^sha256:[0-9a-f]{64}$
func isDigest(s string) bool {
	h, ok := strings.CutPrefix(s, "sha256:")
	return ok && len(h) == 64 && allIn(h, &hexDigits)
}

// isExtName: ^[a-z0-9][a-z0-9-]*[a-z0-9]$
func isExtName(s string) bool {
	return len(s) >= 2 && allIn(s, &nameChars) && s[0] != '-' && s[len(s)-1] != '-'
}

// isTag: ^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$
func isTag(s string) bool {
	return len(s) >= 1 && len(s) <= 128 && allIn(s, &tagChars) && s[0] != '.' && s[0] != '-'
}

// isBoard: ^[a-z0-9][a-z0-9_.-]*$
func isBoard(s string) bool {
	return len(s) >= 1 && allIn(s, &boardChars) && strings.IndexByte("_.-", s[0]) < 0
}
