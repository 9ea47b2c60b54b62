// Package httpx holds the small HTTP rules every client of imgpipe (factory,
// registries, Proxmox VE) must apply the same way, so that a throttling server is
// treated alike whichever stage it answers.
package httpx

import (
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads a Retry-After value as delta-seconds or an HTTP-date
// (RFC 9110 §10.2.3), relative to now. ok is false when the header is absent or
// unreadable. Seconds are capped at a day: anything longer is "not soon", and the
// cap keeps the multiplication from overflowing.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil {
		if s < 0 {
			return 0, false
		}
		return time.Duration(min(s, 86400)) * time.Second, true
	}
	if at, err := http.ParseTime(v); err == nil {
		return max(at.Sub(now), 0), true
	}
	return 0, false
}
