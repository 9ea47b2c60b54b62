package upgrade

import (
	"strings"
)

func clusterSuffix(c string) string {
	if c == "" {
		return ""
	}
	return " for cluster " + c
}

func lastTalos(p *Plan) string {
	if len(p.Hops) > 0 {
		return p.Hops[len(p.Hops)-1].Talos
	}
	if len(p.To.Talos) > 0 {
		return p.To.Talos[0]
	}
	return "of the target release"
}

// ShellQuote quotes s for a POSIX shell when it needs quoting: s as is when every
// byte is one of [A-Za-z0-9@%+=:,./_-], else in single quotes.
func ShellQuote(s string) string {
	if shellSafe(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// shellSafe is a byte loop, not a regexp: the planner quotes every value of every
// step, and at 100,000 nodes a regexp here was a quarter of the planning time.
func shellSafe(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		case strings.IndexByte("@%+=:,./_-", c) >= 0:
		default:
			return false
		}
	}
	return true
}
