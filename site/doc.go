// Package site holds the site's declarations and their resolved form: imgpipe.yaml
// (Config), the resolver that turns a Talos version query plus the compatibility
// matrix into pinned profiles, and the lockfile (Lock) every later stage reads.
// Schematics are image-factory's pkg/schematic values, built from a profile's fields or
// adopted from a schematic file (Config.LoadSchematics reads those through a caller's
// function). Pure otherwise: bytes in, values out; no network.
package site
