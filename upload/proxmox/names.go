package proxmox

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// How imgpipe recognises what it made on a cluster, and for whom.
//
// A volume name says who made it and what it holds:
//
//	talos_<site>_<profile>_<version>_<schematic12>_<platform>-<arch>[-secureboot].<ext>
//
// e.g. talos_lab_gpu_v1.9.5_376567988ad3_metal-amd64-secureboot.iso. Site and profile
// are DNS labels (no "_"), so "_" splits the name without ambiguity. The schematic,
// version and variant fix the bytes (the factory serves one file per schematic,
// version, platform, arch and secure-boot flag), so the name stays content-addressed;
// site and profile make it this config's own. PVE has no notes or tags for ISO and
// import volumes, so the name is the only place an owner can be recorded.
//
// A template carries the tags imgpipe, site-<site>, profile-<profile>, talos-<version>,
// schematic-<schematic12> and variant-<platform>-<arch>[-secureboot].
//
// Names of the old scheme (talos-<schematic12>-<version>-<platform>-<arch>.<ext>,
// no owner, no secure-boot flag) are recognised by IsLegacyName but never reused
// (one of them may hold the wrong secure-boot variant) and never pruned (no owner).

// DefaultSite is the site name used when proxmox.site is unset. Pruning needs an
// explicit site (see RequireSite).
const DefaultSite = "default"

// TagImgpipe marks every VM template imgpipe makes; --keep only ever removes
// templates that carry it and this site's and profile's tags.
const TagImgpipe = "imgpipe"

// ErrNoSite means pruning was asked for without proxmox.site.
var ErrNoSite = errors.New("pruning needs proxmox.site")

var (
	labelRE = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$`)
	siteRE  = regexp.MustCompile(`^[a-z0-9]([a-z0-9-]{0,30}[a-z0-9])?$`)
	// imageNameRE: site, profile, version, schematic12, platform, arch, secureboot, ext.
	imageNameRE  = regexp.MustCompile(`^talos_([a-z0-9][a-z0-9-]*)_([a-z0-9][a-z0-9-]*)_(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)_([0-9a-f]{12})_([a-z0-9]+)-(amd64|arm64)(-secureboot)?\.(iso|raw|qcow2)$`)
	legacyNameRE = regexp.MustCompile(`^talos-([0-9a-f]{12})-(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)-([a-z0-9]+)-(amd64|arm64)\.(iso|raw|qcow2)$`)
)

// Variant is what, besides schematic and version, decides which image file the
// factory serves: platform, architecture and the secure-boot flag.
type Variant struct {
	Platform   string
	Arch       string
	SecureBoot bool
}

// String is the variant as the factory names its files: nocloud-amd64, metal-amd64-secureboot.
func (v Variant) String() string {
	s := v.Platform + "-" + v.Arch
	if v.SecureBoot {
		s += "-secureboot"
	}
	return s
}

// VariantOf is a lock profile's image variant.
func VariantOf(p *site.Profile) Variant {
	return Variant{Platform: p.Platform, Arch: p.Arch, SecureBoot: p.SecureBoot}
}

// ImageName is the parsed name of a volume imgpipe made.
type ImageName struct {
	Site, Profile string
	// Talos is the release, "v1.9.5".
	Talos string
	// Schematic is the first 12 hex digits of the schematic ID.
	Schematic string
	Variant   Variant
	// Ext is the volume's format: iso, raw or qcow2.
	Ext string
}

// String renders the volume file name (no storage or content prefix).
func (n ImageName) String() string {
	return fmt.Sprintf("talos_%s_%s_%s_%s_%s.%s", n.Site, n.Profile, n.Talos, n.Schematic, n.Variant, n.Ext)
}

// OwnedBy reports whether the volume belongs to site and, unless profile is
// empty, to that profile.
func (n ImageName) OwnedBy(siteName, profile string) bool {
	return n.Site == siteName && (profile == "" || n.Profile == profile)
}

// ParseImageName reads a volume file name or volid (local:iso/x.iso) made by
// imgpipe. Anything else, legacy names included, yields false.
func ParseImageName(s string) (ImageName, bool) {
	if i := strings.LastIndexAny(s, ":/"); i >= 0 {
		s = s[i+1:]
	}
	m := imageNameRE.FindStringSubmatch(s)
	if m == nil || !siteRE.MatchString(m[1]) || !labelRE.MatchString(m[2]) {
		return ImageName{}, false
	}
	return ImageName{Site: m[1], Profile: m[2], Talos: m[3], Schematic: m[4],
		Variant: Variant{Platform: m[5], Arch: m[6], SecureBoot: m[7] != ""}, Ext: m[8]}, true
}

// IsLegacyName reports whether a volume file name or volid follows the naming of
// imgpipe before sites and variants (talos-<schematic12>-<version>-<platform>-<arch>.<ext>).
func IsLegacyName(s string) bool {
	if i := strings.LastIndexAny(s, ":/"); i >= 0 {
		s = s[i+1:]
	}
	return legacyNameRE.MatchString(s)
}

// NameFor is the name of a profile's artifact with extension ext (iso, raw, qcow2)
// for site siteName ("" means DefaultSite).
func NameFor(siteName string, lock *site.Lock, p *site.Profile, ext string) (ImageName, error) {
	if siteName == "" {
		siteName = DefaultSite
	}
	if err := CheckSite(siteName); err != nil {
		return ImageName{}, err
	}
	if len(p.Schematic.ID) < 12 {
		return ImageName{}, fail.Usage(fmt.Errorf("profile %s: schematic id %q is too short: re-run `imgpipe resolve`", p.Name, p.Schematic.ID))
	}
	version := lock.Talos
	if !strings.HasPrefix(version, "v") {
		version = "v" + version
	}
	n := ImageName{Site: siteName, Profile: p.Name, Talos: version, Schematic: strings.ToLower(p.Schematic.ID[:12]),
		Variant: VariantOf(p), Ext: ext}
	if got, ok := ParseImageName(n.String()); !ok || got != n {
		return ImageName{}, fail.Usage(fmt.Errorf("profile %s: cannot build a volume name from profile %q, version %q, platform %q, arch %q, format %q",
			p.Name, p.Name, version, p.Platform, p.Arch, ext))
	}
	return n, nil
}

// VolumeName is NameFor rendered as a file name.
func VolumeName(siteName string, lock *site.Lock, p *site.Profile, ext string) (string, error) {
	n, err := NameFor(siteName, lock, p, ext)
	if err != nil {
		return "", err
	}
	return n.String(), nil
}

// CheckSite validates a proxmox.site value.
func CheckSite(name string) error {
	if !siteRE.MatchString(name) {
		return fail.Usage(fmt.Errorf("proxmox.site %q: use lower-case letters, digits and dashes, at most 32 characters (e.g. lab)", name))
	}
	return nil
}

// RequireSite refuses pruning for a config without proxmox.site: without a name
// of its own, a config cannot tell its images from another config's on the same
// cluster.
func RequireSite(cfgSite string, keep int) error {
	if keep > 0 && cfgSite == "" {
		return fail.Usage(fmt.Errorf("--keep/proxmox.keep %d: %w: set proxmox.site to a name for this config (e.g. site: lab), so pruning never touches another config's images on the cluster", keep, ErrNoSite))
	}
	return nil
}

// TemplateTags are the tags that identify a profile's template for a site.
func TemplateTags(siteName string, lock *site.Lock, p *site.Profile) []string {
	if siteName == "" {
		siteName = DefaultSite
	}
	return []string{TagImgpipe, Tag("site", siteName), Tag("profile", p.Name), Tag("talos", lock.Talos),
		Tag("schematic", shortID(p.Schematic.ID)), Tag("variant", VariantOf(p).String())}
}

// TemplateOwner reads the site, profile and Talos version of a VM imgpipe made
// (tagged imgpipe, site-*, profile-* and talos-*). ok is false for any other VM,
// including templates of imgpipe before sites existed.
func TemplateOwner(v VMInfo) (siteName, profile, talos string, ok bool) {
	if !v.HasTags(TagImgpipe) {
		return "", "", "", false
	}
	for _, t := range v.TagList() {
		if s, found := strings.CutPrefix(t, "site-"); found {
			siteName = s
		}
		if p, found := strings.CutPrefix(t, "profile-"); found {
			profile = p
		}
		if s, found := strings.CutPrefix(t, "talos-"); found {
			talos = s
		}
	}
	return siteName, profile, talos, siteName != "" && profile != "" && talos != ""
}

// OwnedBy reports whether imgpipe made the VM for site and, unless profile is
// empty, for that profile.
func (v VMInfo) OwnedBy(siteName, profile string) bool {
	s, p, _, ok := TemplateOwner(v)
	return ok && s == siteName && (profile == "" || p == profile)
}
