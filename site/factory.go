package site

import (
	"fmt"
	"net/url"
	"strings"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// OverrideFactory points the site at another Image Factory (--factory): every
// reference derived from it - ISO and disk URLs, installer refs, the lock's factory -
// follows. The registry host for installer refs becomes the new URL's host: the
// config's factory.registry belonged to the factory being replaced.
func (c *Config) OverrideFactory(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fail.Usage(fmt.Errorf("--factory %q is not an http(s) URL", raw))
	}
	if u.User != nil {
		return fail.Usage(fmt.Errorf("--factory must not carry credentials: set IMGPIPE_FACTORY_USERNAME and IMGPIPE_FACTORY_PASSWORD"))
	}
	c.Factory.URL = strings.TrimRight(raw, "/")
	c.Factory.Registry = u.Host
	return nil
}
