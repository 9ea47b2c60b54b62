package site

import (
	"errors"
	"net/url"
	"strings"
)

// ErrURLCredentials marks a URL that carries a user name or password. Such URLs end up in
// locks, reports and logs; credentials come from the environment (IMGPIPE_*) instead.
var ErrURLCredentials = errors.New("URL carries credentials (user:password@): remove them and set them through the environment (IMGPIPE_FACTORY_USERNAME/PASSWORD, IMGPIPE_PROXMOX_TOKEN, the Docker config)")

// CheckURLCredentials refuses a URL with userinfo. It looks at the authority even when
// the URL does not parse or has no scheme ("user:pw@host:5000"), so a malformed URL
// cannot smuggle a secret past the check.
func CheckURLCredentials(raw string) error {
	if userinfo(raw) {
		return ErrURLCredentials
	}
	return nil
}

func userinfo(raw string) bool {
	if u, err := url.Parse(raw); err == nil && u.User != nil {
		return true
	}
	rest := raw
	if _, after, ok := strings.Cut(raw, "://"); ok {
		rest = after
	}
	if i := strings.IndexAny(rest, "/?#"); i >= 0 {
		rest = rest[:i]
	}
	return strings.Contains(rest, "@")
}

// RedactURL removes userinfo, query and fragment from a URL for messages. A string that
// is not a URL is returned with anything before an "@" in its authority replaced.
func RedactURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	scheme, rest, hasScheme := strings.Cut(raw, "://")
	if !hasScheme {
		scheme, rest = "", raw
	}
	end := strings.IndexByte(rest, '/')
	if end < 0 {
		end = len(rest)
	}
	if at := strings.LastIndex(rest[:end], "@"); at >= 0 {
		rest = "REDACTED@" + rest[at+1:]
	}
	if hasScheme {
		return scheme + "://" + rest
	}
	return rest
}
