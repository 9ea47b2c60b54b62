package verify

import (
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Roles of the images a lock names; core images keep the role the lock gives them
// ("installer", "kubelet", "flannel", ...).
const (
	RoleExtension        = "extension"
	RoleFactoryInstaller = "factory-installer"
	RoleCatalog          = "catalog"
)

// Image is one image to verify: the reference as the lock names it (upstream, usually
// tagged), the digest the lock pins (empty when unknown: the tag is then resolved at
// the registry and the result is marked unpinned), and what the image is for.
type Image struct {
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
	Role   string `json:"role"`
	// Profiles lists the lock profiles that use the image (empty for catalog and core images).
	Profiles []string `json:"profiles,omitempty"`
}

// ImagesFromLock lists every image a lock names, once each, in a stable order: extension
// images and factory installers of every profile, the extensions catalog, then the core
// images. Mentions are merged by canonical reference (site.ImagePins, the rule images
// and mirror apply too): "GHCR.IO/x:1" and "ghcr.io:443/x:1" are one image, and a
// pinned digest fills in an unpinned mention. A reference whose @digest disagrees with
// its digest field, or one tag pinned to two digests, is a usage error naming both
// fields, never an image checked under one digest and shipped under another.
func ImagesFromLock(l *site.Lock) ([]Image, error) {
	pins := &site.ImagePins{}
	var out []Image
	add := func(field, ref, digest, role, profile string) {
		if strings.TrimSpace(ref) == "" {
			return
		}
		n := len(pins.Images())
		i := pins.Add(field, ref, digest)
		if i < 0 {
			return
		}
		if i == n {
			out = append(out, Image{Ref: strings.TrimSpace(ref), Role: role})
		}
		if profile != "" && !slices.Contains(out[i].Profiles, profile) {
			out[i].Profiles = append(out[i].Profiles, profile)
		}
	}
	for _, p := range l.Profiles {
		for j, e := range p.Extensions {
			add(fmt.Sprintf("profile %s extensions[%d]", p.Name, j), e.Ref, e.Digest, RoleExtension, p.Name)
		}
		add(fmt.Sprintf("profile %s installer", p.Name), p.Installer, "", RoleFactoryInstaller, p.Name)
	}
	add("catalog", l.Catalog, "", RoleCatalog, "")
	for j, c := range l.CoreImages {
		role := c.Role
		if role == "" {
			role = "core"
		}
		add(fmt.Sprintf("core_images[%d]", j), c.Ref, c.Digest, role, "")
	}
	if err := pins.Err(); err != nil {
		return nil, fail.Usage(fmt.Errorf("reading the lock's images: %w", err))
	}
	for i, pi := range pins.Images() {
		out[i].Digest = pi.Ref.Digest
		sort.Strings(out[i].Profiles)
	}
	return out, nil
}
