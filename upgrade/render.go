package upgrade

import (
	"regexp"
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

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

// ShellQuote quotes s for a POSIX shell when it needs quoting.
func ShellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}
