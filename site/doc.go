// Package site holds the site's declarations and their resolved form: imgpipe.yaml
// (Config), the resolver that turns a Talos version query plus the compatibility
// matrix into pinned profiles, and the lockfile (Lock) every later stage reads.
// Pure: bytes in, values out; no network. Imports extensions and compat only.
package site
