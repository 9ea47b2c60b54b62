package main

// The extension-level part of genmatrix: the official catalog
// (extensions-catalog/extensions-catalog.yaml) merged with the facts talos-data.yaml
// already gave. Release-level fields (dates, Kubernetes, images, flags) are main.go's.

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/imgpipe/imgpipe/compat"
)

// catalogFile is the catalog's path under -ref.
const catalogFile = "extensions-catalog/extensions-catalog.yaml"

// Catalog statuses (extensions-catalog.yaml meta.fields.status).
const (
	statusReleased   = "released"
	statusPrerelease = "prerelease"
	statusPredicted  = "predicted-unverified"
)

type extensionsCatalog struct {
	Meta struct {
		Generated string         `yaml:"generated"`
		Sources   map[string]any `yaml:"sources"`
	} `yaml:"meta"`
	Releases []catalogRelease `yaml:"releases"`
}

type catalogRelease struct {
	Talos      string `yaml:"talos"`
	Status     string `yaml:"status"`
	Note       string `yaml:"note"`
	Extensions []struct {
		Name   string `yaml:"name"`
		Ref    string `yaml:"ref"`
		Tier   string `yaml:"tier"`
		Digest string `yaml:"digest"`
	} `yaml:"extensions"`
	Overlays []struct {
		Name   string `yaml:"name"`
		Image  string `yaml:"image"`
		Ref    string `yaml:"ref"`
		Digest string `yaml:"digest"`
	} `yaml:"overlays"`
}

// sourceLine names the catalog's snapshots for matrix.yaml's source field.
func (c *extensionsCatalog) sourceLine() string {
	short := func(k string) string {
		s, _ := c.Meta.Sources[k].(map[string]any)
		return fmt.Sprintf("%s %.10s (%s)", k, s["commit"], s["date"])
	}
	return fmt.Sprintf("extensions-catalog %s (%s, %s, %s)", c.Meta.Generated,
		short("siderolabs/extensions"), short("siderolabs/overlays"), short("siderolabs/talos"))
}

// mergeCatalog replaces each catalogued release's extensions with the catalog's,
// keeping digests talos-data.yaml had for the same (release, name) and tag. A tag or
// digest the two sources disagree on is an error, not a choice. Releases new to the
// matrix are added with the catalog's status.
func mergeCatalog(releases map[string]*compat.Release, cat *extensionsCatalog) error {
	var errs []error
	for _, cr := range cat.Releases {
		r, ok := releases[cr.Talos]
		if !ok {
			r = &compat.Release{Version: cr.Talos, Note: "known from the official extension catalog only"}
			releases[cr.Talos] = r
		}
		switch cr.Status {
		case statusReleased:
		case statusPrerelease:
			r.Prerelease = true
		case statusPredicted:
			// Out of range queries until a refresh from a factory confirms it.
			r.Unverified = true
			r.Note = joinNote(r.Note, "extension catalog predicted from the release branch (no such tag in the extensions snapshot): confirm with `imgpipe matrix refresh`")
		default:
			errs = append(errs, fmt.Errorf("%s: unknown catalog status %q", cr.Talos, cr.Status))
		}
		exts, err := catalogExtensions(cr, r.Extensions)
		errs = append(errs, err)
		r.Extensions = exts
		r.Partial = false // the catalog lists the whole release
		ovs, err := catalogOverlays(cr)
		errs = append(errs, err)
		r.Overlays = ovs
	}
	return errors.Join(errs...)
}

func catalogExtensions(cr catalogRelease, known map[string]compat.ExtensionTag) (map[string]compat.ExtensionTag, error) {
	var errs []error
	out := make(map[string]compat.ExtensionTag, len(cr.Extensions))
	for _, e := range cr.Extensions {
		name := strings.TrimPrefix(e.Name, "siderolabs/")
		tag, ok := strings.CutPrefix(e.Ref, compat.OfficialRepository+"/"+name+":")
		if !ok || name == e.Name {
			errs = append(errs, fmt.Errorf("%s: %s: ref %q is not ghcr.io/siderolabs/<name>:<tag>", cr.Talos, e.Name, e.Ref))
			continue
		}
		t := compat.ExtensionTag{Tag: tag, Digest: compat.DigestUnknown, Tier: e.Tier}
		if e.Digest != "" {
			t.Digest = e.Digest
		}
		if k, ok := known[name]; ok {
			if k.Tag != t.Tag {
				errs = append(errs, fmt.Errorf("%s: %s: catalog tag %s, talos-data.yaml tag %s", cr.Talos, name, t.Tag, k.Tag))
			}
			switch {
			case k.Digest == compat.DigestUnknown:
			case t.Digest == compat.DigestUnknown:
				t.Digest = k.Digest
			case t.Digest != k.Digest:
				errs = append(errs, fmt.Errorf("%s: %s: catalog digest %s, talos-data.yaml digest %s", cr.Talos, name, t.Digest, k.Digest))
			}
		}
		out[name] = t
	}
	for _, name := range slices.Sorted(maps.Keys(known)) {
		if _, ok := out[name]; !ok {
			errs = append(errs, fmt.Errorf("%s: talos-data.yaml lists %s, the catalog does not", cr.Talos, name))
		}
	}
	return out, errors.Join(errs...)
}

// catalogOverlays groups the release's overlays by image: one tag and digest per image,
// the boards in catalog order.
func catalogOverlays(cr catalogRelease) (map[string]compat.OverlayImage, error) {
	if len(cr.Overlays) == 0 {
		return nil, nil
	}
	var errs []error
	out := map[string]compat.OverlayImage{}
	for _, o := range cr.Overlays {
		img := strings.TrimPrefix(o.Image, "siderolabs/")
		cur := compat.OverlayImage{Digest: compat.DigestUnknown}
		if o.Digest != "" {
			cur.Digest = o.Digest
		}
		if o.Ref != "" {
			tag, ok := strings.CutPrefix(o.Ref, compat.OfficialRepository+"/"+img+":")
			if !ok {
				errs = append(errs, fmt.Errorf("%s: overlay %s: ref %q is not %s/%s:<tag>", cr.Talos, o.Name, o.Ref, compat.OfficialRepository, img))
				continue
			}
			cur.Tag = tag
		}
		prev, seen := out[img]
		if seen && (prev.Tag != cur.Tag || prev.Digest != cur.Digest) {
			errs = append(errs, fmt.Errorf("%s: overlay image %s has two refs: %s@%s and %s@%s", cr.Talos, img, prev.Tag, prev.Digest, cur.Tag, cur.Digest))
			continue
		}
		cur.Boards = append(prev.Boards, o.Name)
		out[img] = cur
	}
	return out, errors.Join(errs...)
}

// extensionMeta derives each extension's since/until (first and last release listing
// it; until is left out while the newest stable release, or a later one, lists it)
// and tier (the newest stable release's, else the newest listing's), then drops the
// per-release tiers that equal it so that only exceptions stay in the file.
func extensionMeta(m *compat.Matrix) {
	newestStable := ""
	for _, r := range m.Releases {
		if r.Stable() {
			newestStable = r.Version
		}
	}
	atOrAfterNewest := newestStable == ""
	m.Extensions = map[string]compat.ExtensionMeta{}
	stableTier := map[string]string{}
	for _, r := range m.Releases {
		if r.Version == newestStable {
			atOrAfterNewest = true
		}
		for name, e := range r.Extensions {
			meta := m.Extensions[name]
			if meta.Since == "" {
				meta.Since = r.Version
			}
			meta.Until = r.Version
			if atOrAfterNewest {
				meta.Until = ""
			}
			if e.Tier != "" {
				meta.Tier = e.Tier
				if r.Stable() {
					stableTier[name] = e.Tier
				}
			}
			m.Extensions[name] = meta
		}
	}
	for name, meta := range m.Extensions {
		if t, ok := stableTier[name]; ok {
			meta.Tier = t
		}
		if meta.Until != "" {
			meta.Note = "renamed or dropped after " + meta.Until
		}
		m.Extensions[name] = meta
	}
	for i := range m.Releases {
		for name, e := range m.Releases[i].Extensions {
			if e.Tier == m.Extensions[name].Tier {
				e.Tier = ""
				m.Releases[i].Extensions[name] = e
			}
		}
	}
}

func joinNote(a, b string) string {
	if a == "" {
		return b
	}
	return a + "; " + b
}
