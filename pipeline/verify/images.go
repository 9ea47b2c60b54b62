package verify

import (
	"slices"
	"sort"
	"strings"

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
// images. An image named twice (e.g. an extension shared by two profiles) is merged; if
// one mention pins a digest and another does not, the pinned digest wins.
func ImagesFromLock(l *site.Lock) []Image {
	var out []Image
	index := map[string]int{}
	add := func(ref, digest, role, profile string) {
		ref = strings.TrimSpace(ref)
		if ref == "" {
			return
		}
		key := ref
		if i, ok := index[key]; ok {
			if out[i].Digest == "" {
				out[i].Digest = digest
			}
			if profile != "" && !slices.Contains(out[i].Profiles, profile) {
				out[i].Profiles = append(out[i].Profiles, profile)
			}
			return
		}
		img := Image{Ref: ref, Digest: digest, Role: role}
		if profile != "" {
			img.Profiles = []string{profile}
		}
		index[key] = len(out)
		out = append(out, img)
	}
	for _, p := range l.Profiles {
		for _, e := range p.Extensions {
			add(e.Ref, e.Digest, RoleExtension, p.Name)
		}
		add(p.Installer, "", RoleFactoryInstaller, p.Name)
	}
	add(l.Catalog, "", RoleCatalog, "")
	for _, c := range l.CoreImages {
		role := c.Role
		if role == "" {
			role = "core"
		}
		add(c.Ref, c.Digest, role, "")
	}
	for i := range out {
		sort.Strings(out[i].Profiles)
	}
	return out
}
