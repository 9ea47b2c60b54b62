package site

import (
	"fmt"
	"regexp"
	"strconv"
	"time"
)

var daysRE = regexp.MustCompile(`^(\d+)d(.*)$`)

// ParseReleaseAge parses minimumReleaseAge: a Go duration ("72h", "90m") with an
// optional leading day count ("3d", "1d12h"). Empty means no soak.
func ParseReleaseAge(s string) (time.Duration, error) {
	if s == "" || s == "0" {
		return 0, nil
	}
	var d time.Duration
	rest := s
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err != nil || n > 3650 {
			return 0, fmt.Errorf("minimumReleaseAge %q: day count out of range", s)
		}
		d, rest = time.Duration(n)*24*time.Hour, m[2]
	}
	if rest != "" {
		extra, err := time.ParseDuration(rest)
		if err != nil || extra < 0 {
			return 0, fmt.Errorf("minimumReleaseAge %q is not a duration like 3d, 72h or 1d12h", s)
		}
		d += extra
	}
	return d, nil
}
