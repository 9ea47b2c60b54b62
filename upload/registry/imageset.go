package registry

import (
	"errors"
	"fmt"
	"strings"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Image sources, in the order ImageSet lists them.
const (
	SourceCore      = "core"
	SourceExtension = "extension"
	SourceInstaller = "installer"
	SourceCatalog   = "catalog"
	SourceExtra     = "extra"
)

// Image is one image of a lock's set.
type Image struct {
	// Role says what the image is for ("kubelet", "etcd", "extension", "installer", ...).
	Role string `json:"role"`
	// Ref is the canonical upstream reference without digest ("docker.io/library/x:1" for "x:1").
	Ref string `json:"ref"`
	// Digest is the pinned "sha256:..." or "" when the lock does not know it yet.
	Digest string `json:"digest,omitempty"`
	// Source is where in the lock or config the image came from (core, extension, ...).
	Source string `json:"source"`
	// Profiles lists the lock profiles that use an extension or installer.
	Profiles []string `json:"profiles,omitempty"`
}

// Pinned is Ref@Digest, or Ref alone when the digest is unknown.
func (im Image) Pinned() string {
	if im.Digest == "" {
		return im.Ref
	}
	return im.Ref + "@" + im.Digest
}

// ImageSet returns the images a lock needs on the site's registries: the Talos core set
// (lock.CoreImages), every profile's extensions and factory installer, the extensions
// catalog, and the site's extra images. The order is stable (as listed above, first
// occurrence wins) and an image used twice appears once, with its profiles merged.
// It does no I/O. A malformed reference or two digests for one tag is a usage error
// naming the lock or config field.
func ImageSet(lock *site.Lock, extras []string) ([]Image, error) {
	// site.ImagePins is the one merge rule verify uses too: canonical references, a
	// ref@digest that disagrees with its digest field or one tag pinned to two digests
	// is an error naming both fields.
	pins := &site.ImagePins{}
	var out []Image
	add := func(field, source, role, ref, digest, profile string) {
		if strings.TrimSpace(ref) == "" {
			return
		}
		n := len(pins.Images())
		i := pins.Add(field, ref, digest)
		if i < 0 {
			return
		}
		if i == n {
			out = append(out, Image{Role: role, Source: source})
		}
		if profile != "" && !contains(out[i].Profiles, profile) {
			out[i].Profiles = append(out[i].Profiles, profile)
		}
	}
	for i, c := range lock.CoreImages {
		role := c.Role
		if role == "" {
			role = SourceCore
		}
		add(fmt.Sprintf("lock core_images[%d]", i), SourceCore, role, c.Ref, c.Digest, "")
	}
	for _, p := range lock.Profiles {
		for j, e := range p.Extensions {
			add(fmt.Sprintf("lock profile %q extensions[%d] (%s)", p.Name, j, e.Name), SourceExtension, "extension", e.Ref, e.Digest, p.Name)
		}
	}
	for _, p := range lock.Profiles {
		add(fmt.Sprintf("lock profile %q installer", p.Name), SourceInstaller, "installer", p.Installer, "", p.Name)
	}
	add("lock catalog", SourceCatalog, "extensions-catalog", lock.Catalog, "", "")
	for i, x := range extras {
		add(fmt.Sprintf("imgpipe.yaml images[%d]", i), SourceExtra, "extra", x, "", "")
	}
	if err := pins.Err(); err != nil {
		return nil, fail.Usage(err)
	}
	for i, pi := range pins.Images() {
		r := pi.Ref
		out[i].Digest, r.Digest = r.Digest, ""
		out[i].Ref = r.String()
	}
	return out, nil
}

func contains(ss []string, s string) bool {
	for _, x := range ss {
		if x == s {
			return true
		}
	}
	return false
}

// Placement is an image with where it goes.
type Placement struct {
	Image
	// Mirror is the reference at the local endpoint ("" when unmirrored).
	Mirror   string   `json:"mirror,omitempty"`
	Endpoint Endpoint `json:"-"`
	// Unmirrored is set when no endpoint takes the image's upstream host.
	Unmirrored bool `json:"unmirrored,omitempty"`
}

// Place maps every image to its mirror. Images whose upstream has no endpoint are kept,
// marked Unmirrored, so callers report them instead of dropping them.
func Place(images []Image, m *EndpointMap) ([]Placement, error) {
	out := make([]Placement, 0, len(images))
	for _, im := range images {
		p := Placement{Image: im}
		mirror, ep, err := m.MirrorRef(im.Ref)
		switch {
		case errors.Is(err, ErrNoMirror):
			p.Unmirrored = true
		case err != nil:
			return nil, err
		default:
			p.Mirror, p.Endpoint = mirror, ep
		}
		out = append(out, p)
	}
	return out, nil
}

// PinDigests records in the lock the digests a run resolved upstream for images the lock
// had no digest for (core images and extensions; installers and the catalog have no
// digest field), but only for images verified at their mirror. It returns how many it
// pinned. Extensions pinned this way get digest_status "pinned".
func PinDigests(lock *site.Lock, rep *Report) int {
	resolved := map[string]string{}
	for _, ir := range rep.Images {
		if ir.DigestSource == "upstream" && ir.Verified && ir.Digest != "" {
			resolved[ir.Ref] = ir.Digest
		}
	}
	canon := func(ref string) string {
		r, err := ParseRef(ref)
		if err != nil {
			return ""
		}
		r.Digest = ""
		return r.String()
	}
	n := 0
	for i := range lock.CoreImages {
		c := &lock.CoreImages[i]
		if d, ok := resolved[canon(c.Ref)]; ok && c.Digest == "" {
			c.Digest = d
			n++
		}
	}
	for i := range lock.Profiles {
		for j := range lock.Profiles[i].Extensions {
			e := &lock.Profiles[i].Extensions[j]
			if d, ok := resolved[canon(e.Ref)]; ok && e.Digest == "" {
				e.Digest, e.DigestStatus = d, "pinned"
				n++
			}
		}
	}
	return n
}

// ErrNothingToMirror means no image of a lock has a mirror configured.
var ErrNothingToMirror = errors.New("no image of the lock has a mirror")

// PlanLock places a lock's image set (plus the config's extra images) on the site's
// endpoints, with every endpoint's mode forced to mode when it is not empty. Images
// whose upstream has no mirror stay in the result marked Unmirrored, so they are
// reported rather than skipped silently. It fails with ErrNothingToMirror (a usage
// error) when no image has a mirror at all. No I/O.
func PlanLock(lock *site.Lock, cfg *site.Config, mode Mode) ([]Placement, error) {
	set, err := ImageSet(lock, cfg.Images)
	if err != nil {
		return nil, err
	}
	em, err := NewEndpointMap(cfg.Registries)
	if err != nil {
		return nil, err
	}
	ps, err := Place(set, em)
	if err != nil {
		return nil, err
	}
	mirrored := 0
	for i := range ps {
		if mode != "" {
			ps[i].Endpoint.Mode = mode
		}
		if !ps[i].Unmirrored {
			mirrored++
		}
	}
	if mirrored == 0 {
		return ps, fail.Usage(fmt.Errorf("%w: set registries.host (or registries.mirrors) in imgpipe.yaml", ErrNothingToMirror))
	}
	return ps, nil
}

// ErrDigestConflict means verify checked another digest than the lock pins for an image.
var ErrDigestConflict = errors.New("verified digest differs from the lock's")

// PinVerified sets each placement's digest to the one verify checked (verified, keyed
// by site.ImageRef.Key), so mirror copies or warms exactly what was verified and never
// resolves those tags again. Images verify did not check (no policy covers them, or
// imgpipe.yaml's extra images) keep the lock's digest or none. A lock digest that
// disagrees with the verified one is an error: one of them is stale.
func PinVerified(ps []Placement, verified map[string]string) error {
	var errs []error
	for i := range ps {
		r, err := site.ParseImageRef(ps[i].Pinned())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		d, ok := verified[r.Key()]
		switch {
		case !ok:
		case ps[i].Digest != "" && ps[i].Digest != d:
			errs = append(errs, fmt.Errorf("%s: lock pins %s, verify checked %s: %w", ps[i].Ref, ps[i].Digest, d, ErrDigestConflict))
		default:
			ps[i].Digest = d
		}
	}
	return errors.Join(errs...)
}
