package upgrade

import (
	"regexp"
	"testing"
)

// The byte-loop checks replace regexps for speed; they must accept exactly the same.
var shellSafeRE = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

func FuzzFastChecks(f *testing.F) {
	for _, s := range []string{"cp-1", "a.b-c", "-a", "a-", "a..b", "A", "10.0.0.1", "x y", "", "a'b", "node-000001", "é"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := validNodeName(s), len(s) <= 253 && nodeNameRE.MatchString(s); got != want {
			t.Errorf("validNodeName(%q) = %v; want %v (nodeNameRE)", s, got, want)
		}
		if got, want := shellSafe(s), shellSafeRE.MatchString(s); got != want {
			t.Errorf("shellSafe(%q) = %v; want %v", s, got, want)
		}
	})
}
