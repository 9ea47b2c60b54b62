package extensions

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Prefix is the namespace of official extensions in schematics.
const Prefix = "siderolabs/"

// Short strips the "siderolabs/" prefix: "siderolabs/glibc" -> "glibc".
func Short(name string) string { return strings.TrimPrefix(strings.TrimSpace(name), Prefix) }

// Full adds the "siderolabs/" prefix used in schematics: "glibc" -> "siderolabs/glibc".
func Full(name string) string { return Prefix + Short(name) }

// Family groups the NVIDIA extensions whose tags and pairing follow rules.
type Family int

// Families of extensions.
const (
	FamilyOther          Family = iota
	FamilyOpenModules           // nvidia-open-gpu-kernel-modules[-lts|-production]
	FamilyNonfreeModules        // nonfree-kmod-nvidia[-lts|-production]
	FamilyToolkit               // nvidia-container-toolkit[-lts|-production]
	FamilyFabricManager         // nvidia-fabricmanager[-lts|-production]
)

func (f Family) String() string {
	switch f {
	case FamilyOpenModules:
		return "NVIDIA open kernel modules"
	case FamilyNonfreeModules:
		return "NVIDIA proprietary kernel modules"
	case FamilyToolkit:
		return "NVIDIA container toolkit"
	case FamilyFabricManager:
		return "NVIDIA fabric manager"
	}
	return "extension"
}

// Modules reports whether the family is a kernel-module family.
func (f Family) Modules() bool { return f == FamilyOpenModules || f == FamilyNonfreeModules }

// Tier is an NVIDIA driver track.
type Tier string

// NVIDIA tiers. TierLegacy is the single, unsuffixed track before Talos v1.8 (535, LTS).
const (
	TierNone       Tier = ""
	TierLTS        Tier = "lts"
	TierProduction Tier = "production"
	TierLegacy     Tier = "legacy"
)

var familyBases = []struct {
	base   string
	family Family
}{
	{"nvidia-open-gpu-kernel-modules", FamilyOpenModules},
	{"nonfree-kmod-nvidia", FamilyNonfreeModules},
	{"nvidia-container-toolkit", FamilyToolkit},
	{"nvidia-fabricmanager", FamilyFabricManager},
}

// Classify returns an extension's NVIDIA family and tier (FamilyOther, TierNone for the rest).
func Classify(name string) (Family, Tier) {
	s := Short(name)
	for _, fb := range familyBases {
		switch s {
		case fb.base:
			return fb.family, TierLegacy
		case fb.base + "-lts":
			return fb.family, TierLTS
		case fb.base + "-production":
			return fb.family, TierProduction
		}
	}
	return FamilyOther, TierNone
}

func withTier(name string, t Tier) string {
	fam, _ := Classify(name)
	for _, fb := range familyBases {
		if fb.family == fam {
			if t == TierLegacy {
				return fb.base
			}
			return fb.base + "-" + string(t)
		}
	}
	return name
}

// aliases are the Image Factory's renames (image-factory internal/profile ExtensionNameAlias):
// the old name still resolves at the factory, to the new one, from the given release on.
var aliases = []struct {
	old, new, since string
}{
	{"i915-ucode", "i915", "v1.9.0"},
	{"amdgpu-firmware", "amdgpu", "v1.9.0"},
	{"xe-guest-utilities", "xen-guest-agent", "v1.7.0"},
	{"talos-vmtoolsd", "vmtoolsd-guest-agent", "v1.0.0"},
}

var v18 = semver.MustParse("1.8.0")

// Normalize maps a configured extension name to the name the given Talos release ships
// it under. It returns the short canonical name and, when it renamed anything, a note
// the user should see (old NVIDIA names silently mean the LTS tier at the factory).
func Normalize(name string, talos *semver.Version) (string, string) {
	s := Short(name)
	for _, a := range aliases {
		if s == a.old && !talos.LessThan(semver.MustParse(a.since)) {
			return a.new, fmt.Sprintf("%s was renamed %s; using %s", a.old, a.new, a.new)
		}
	}
	fam, tier := Classify(s)
	if fam == FamilyOther {
		return s, ""
	}
	core, _ := talos.SetPrerelease("")
	before18 := core.LessThan(v18)
	switch {
	case tier == TierLegacy && !before18:
		lts := withTier(s, TierLTS)
		return lts, fmt.Sprintf("warning: %s is the pre-v1.8 name; from Talos v1.8 the Image Factory maps it to %s (LTS tier). Name %s or %s explicitly",
			s, lts, lts, withTier(s, TierProduction))
	case tier == TierLTS && before18:
		legacy := withTier(s, TierLegacy)
		return legacy, fmt.Sprintf("Talos %s predates the lts/production split: %s is published as %s (the 535 LTS branch)", "v"+talos.String(), s, legacy)
	}
	return s, ""
}

// UnavailableReason explains why an extension is missing from a release, using what
// is known of when it appeared or was renamed.
func UnavailableReason(name, talos, since, until string) string {
	fam, tier := Classify(name)
	switch {
	case fam != FamilyOther && tier == TierProduction && since != "" && compareV(talos, since) < 0:
		return fmt.Sprintf("%s does not exist for Talos %s: NVIDIA tiers (lts/production) start with %s", name, talos, since)
	case since != "" && compareV(talos, since) < 0:
		return fmt.Sprintf("%s is not available for Talos %s: %s exists from %s", name, talos, name, since)
	case until != "" && compareV(talos, until) > 0:
		return fmt.Sprintf("%s is not available for Talos %s: it was last published for %s", name, talos, until)
	case since == "" && until == "":
		return fmt.Sprintf("%s is not a known extension for Talos %s", name, talos)
	}
	return fmt.Sprintf("%s is not in the Talos %s catalog", name, talos)
}

func compareV(a, b string) int {
	va, err1 := semver.NewVersion(a)
	vb, err2 := semver.NewVersion(b)
	if err1 != nil || err2 != nil {
		return strings.Compare(a, b)
	}
	return va.Compare(vb)
}
