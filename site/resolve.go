package site

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"
	"github.com/siderolabs/image-factory/pkg/schematic"
	"github.com/siderolabs/talos/pkg/machinery/imager/imageropts"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/extensions"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/textdist"
)

// ErrRequiredExtension is returned (with fail.ErrPolicy) when a required extension is not
// available for the resolved Talos release.
var ErrRequiredExtension = errors.New("required extension not available")

// ErrProfileConstraint is returned (with fail.ErrPolicy) when a profile's Talos constraint
// excludes the resolved release.
var ErrProfileConstraint = errors.New("profile does not allow this Talos release")

// ErrUnknownProfile is returned (with fail.ErrUsage) for a --profile that is not declared.
var ErrUnknownProfile = errors.New("unknown profile")

// ResolveOptions select what to resolve.
type ResolveOptions struct {
	// Talos is a version query ("v1.9.x", "latest", "v1.9.6"); empty means the config's, else latest.
	Talos string
	// Kubernetes is a version or query; empty means the config's, else the release default.
	Kubernetes string
	// Pre lets range queries pick prereleases and unverified releases.
	Pre bool
	// Profiles limits the result to these profiles (nil: all).
	Profiles []string
	// MatrixName records where the matrix came from, for the lock.
	MatrixName string
	// Now judges the config's minimumReleaseAge soak (zero: no soak is applied).
	Now time.Time
}

var (
	v18  = semver.MustParse("1.8.0")
	v110 = semver.MustParse("1.10.0")
)

// Resolve resolves the site for one Talos release: the version query against the
// matrix, Kubernetes support (machinery), each profile's extensions (required ones must
// exist, optional ones are left out with a reason), the NVIDIA pairing gate, the
// schematic (built with image-factory's pkg/schematic, extensions sorted by full name
// as the factory UI posts them, so the ID does not depend on config order), and the
// factory URLs. It returns every profile's problem at once, not just the first.
func Resolve(m *compat.Matrix, cfg *Config, opts ResolveOptions) (*Lock, error) {
	query := opts.Talos
	if query == "" {
		query = cfg.Talos
	}
	if query == "" {
		query = "latest"
	}
	soak, err := ParseReleaseAge(cfg.MinimumReleaseAge)
	if err != nil {
		return nil, fail.Usage(err)
	}
	if opts.Now.IsZero() {
		soak = 0
	}
	res, err := m.ResolveDetail(query, compat.ResolveOptions{Pre: opts.Pre, MinReleaseAge: soak, Now: opts.Now})
	if err != nil {
		return nil, err
	}
	rel := res.Release
	kq := opts.Kubernetes
	if kq == "" {
		kq = cfg.Kubernetes
	}
	k8s, err := m.ResolveKubernetes(kq, rel)
	if err != nil {
		return nil, err
	}
	var k8sNote string
	if kq == "" && rel.Kubernetes == "" {
		k8sNote = fmt.Sprintf("Talos %s has no default Kubernetes version in the matrix: using %s, the newest known version its machinery supports (pass --kubernetes to choose)", rel.Version, k8s)
	}
	rng := compat.SupportedKubernetes(rel.Version)
	lock := &Lock{
		Schema:  LockSchema,
		Query:   query,
		Talos:   rel.Version,
		Factory: cfg.Factory.URL,
		Matrix:  opts.MatrixName,
		Kubernetes: Kubernetes{
			Version: k8s, Default: rel.Kubernetes, Min: rng.MinMinor, MaxMinor: rng.MaxMinor,
		},
		Catalog: "ghcr.io/siderolabs/extensions:" + rel.Version,
	}
	for _, p := range res.PassedOver {
		lock.Notes = append(lock.Notes, fmt.Sprintf("passed over Talos %s: %s", p.Version, p.Reason))
	}
	if err := compat.KubernetesSupported(rel.Version, k8s); err != nil {
		return nil, err
	}
	lock.Kubernetes.Supported = true
	if k8sNote != "" {
		lock.Notes = append(lock.Notes, k8sNote)
	}
	lock.Notes = append(lock.Notes, releaseNotes(rel)...)

	profiles, err := selectProfiles(cfg, opts.Profiles)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, pc := range profiles {
		p, err := resolveProfile(m, rel, cfg, pc)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		lock.Profiles = append(lock.Profiles, *p)
	}
	if len(errs) > 0 {
		return nil, errors.Join(errs...)
	}
	lock.CoreImages = coreImages(rel, k8s)
	return lock, nil
}

// releaseNotes are the lock notes a release's marks call for.
func releaseNotes(rel *compat.Release) []string {
	var notes []string
	if rel.Note != "" {
		notes = append(notes, fmt.Sprintf("Talos %s: %s", rel.Version, rel.Note))
	}
	switch {
	case rel.Broken:
		notes = append(notes, fmt.Sprintf("warning: Talos %s is marked broken", rel.Version))
	case rel.Prerelease:
		notes = append(notes, fmt.Sprintf("warning: Talos %s is a prerelease", rel.Version))
	case rel.Unverified:
		notes = append(notes, fmt.Sprintf("warning: Talos %s is unverified in the matrix", rel.Version))
	}
	if rel.Partial {
		notes = append(notes, fmt.Sprintf("warning: the matrix lists only part of the Talos %s catalog; run `imgpipe matrix refresh`", rel.Version))
	}
	return notes
}

func selectProfiles(cfg *Config, names []string) ([]ProfileConfig, error) {
	if len(names) == 0 {
		return cfg.Profiles, nil
	}
	var out []ProfileConfig
	for _, n := range names {
		if slices.ContainsFunc(out, func(p ProfileConfig) bool { return p.Name == n }) {
			continue // --profile worker,worker
		}
		i := slices.IndexFunc(cfg.Profiles, func(p ProfileConfig) bool { return p.Name == n })
		if i < 0 {
			known := make([]string, len(cfg.Profiles))
			for j, p := range cfg.Profiles {
				known[j] = p.Name
			}
			return nil, fail.Usage(fmt.Errorf("%w %q: the site declares %s", ErrUnknownProfile, n, strings.Join(known, ", ")))
		}
		out = append(out, cfg.Profiles[i])
	}
	return out, nil
}

func resolveProfile(m *compat.Matrix, rel *compat.Release, cfg *Config, pc ProfileConfig) (*Profile, error) {
	v := rel.Semver()
	if pc.Talos != "" {
		c, err := semver.NewConstraint(strings.ReplaceAll(pc.Talos, "v", ""))
		if err != nil {
			return nil, fail.Usage(fmt.Errorf("profile %s: Talos constraint %q: %v", pc.Name, pc.Talos, err))
		}
		core, _ := v.SetPrerelease("")
		if !c.Check(&core) {
			return nil, fail.Policy(fmt.Errorf("%w: profile %s allows Talos %s, not %s", ErrProfileConstraint, pc.Name, pc.Talos, rel.Version))
		}
	}
	p := &Profile{
		Name: pc.Name, Platform: pc.Platform, Arch: pc.Arch,
		SecureBoot: pc.SecureBoot != nil && pc.SecureBoot.Enabled,
		Extensions: []Extension{}, Omitted: []Omitted{},
	}
	exts := pc.Extensions
	var adopted *schematic.Schematic
	if pc.SchematicFile != "" && pc.adopted == nil {
		// Never build a schematic in its place: the ID would silently differ.
		return nil, fail.Usage(fmt.Errorf("profile %s: schematicFile %s was not read (Config.LoadSchematics)", pc.Name, pc.SchematicFile))
	}
	if pc.adopted != nil {
		sc, err := schematic.Unmarshal(pc.adopted)
		if err != nil {
			return nil, fail.Usage(fmt.Errorf("profile %s: schematicFile %s: %w", pc.Name, pc.SchematicFile, err))
		}
		adopted, exts = sc, nil
		for _, name := range sc.Customization.SystemExtensions.OfficialExtensions {
			exts = append(exts, ExtensionConfig{Name: name})
		}
	}
	errs, pinned := resolveExtensions(m, rel, pc.Name, exts, p)
	dc, err := extensions.ParseDriverConstraint(pc.NVIDIADriver)
	if err != nil {
		errs = append(errs, fail.Usage(fmt.Errorf("profile %s: %w", pc.Name, err)))
	} else if err := extensions.CheckNVIDIA(rel.Version, pinned, dc); err != nil {
		errs = append(errs, fmt.Errorf("profile %s, Talos %s: %w", pc.Name, rel.Version, err))
	}
	if len(errs) > 0 {
		joined := errors.Join(errs...)
		if errors.Is(joined, fail.ErrUsage) {
			return nil, joined // a config mistake: fix it before judging policy
		}
		return nil, fail.Policy(joined)
	}
	slices.SortFunc(p.Extensions, func(a, b Extension) int { return strings.Compare(a.Name, b.Name) })

	sc, err := profileSchematic(rel, pc, p, adopted)
	if err != nil {
		return nil, err
	}
	if err := p.place(sc, cfg.Factory, rel.Version); err != nil {
		return nil, err
	}
	return p, nil
}

// place records the schematic and the factory references derived from its ID.
func (p *Profile) place(sc *schematic.Schematic, f FactoryConfig, talos string) error {
	id, err := sc.ID()
	if err != nil {
		return fmt.Errorf("profile %s: computing schematic ID: %w", p.Name, err)
	}
	raw, err := sc.Marshal()
	if err != nil {
		return fmt.Errorf("profile %s: encoding schematic: %w", p.Name, err)
	}
	p.Schematic = Schematic{ID: id, YAML: string(raw)}
	p.Installer = InstallerRef(f.Registry, id, talos, p.Platform, p.SecureBoot)
	p.ISO = ImageURL(f.URL, id, talos, p.Platform, p.Arch, p.SecureBoot, ".iso")
	p.DiskImage = ImageURL(f.URL, id, talos, p.Platform, p.Arch, p.SecureBoot, DiskImageSuffix(talos))
	return nil
}

// resolveExtensions resolves a profile's extensions against the release's catalog into
// p.Extensions (and p.Omitted, p.Notes). It returns every problem, and the NVIDIA pins.
func resolveExtensions(m *compat.Matrix, rel *compat.Release, profile string, exts []ExtensionConfig, p *Profile) ([]error, []extensions.Pinned) {
	var errs []error
	var pinned []extensions.Pinned
	seen := map[string]string{} // normalized name -> configured name
	for j, ec := range exts {
		name, note := extensions.Normalize(ec.Name, rel.Semver())
		if !knownExtension(m, name) {
			// Not in any release of the matrix: a typo, or newer than the matrix.
			errs = append(errs, fail.Usage(unknownExtension(m, rel, profile, j, ec.Name, name)))
			continue
		}
		if first, dup := seen[name]; dup {
			// Aliases and legacy NVIDIA names can make two configured names one extension.
			errs = append(errs, fail.Usage(fmt.Errorf("profile %s: %s and %s are the same extension (%s) for Talos %s: list it once",
				profile, first, ec.Name, name, rel.Version)))
			continue
		}
		seen[name] = ec.Name
		if note != "" {
			p.Notes = append(p.Notes, note)
		}
		tag, ok := rel.Extensions[name]
		if !ok {
			meta := m.Extensions[name]
			reason := extensions.UnavailableReason(name, rel.Version, meta.Since, meta.Until)
			if rel.Partial {
				reason += " (the matrix lists only part of this release's catalog)"
			}
			if ec.Optional {
				p.Omitted = append(p.Omitted, Omitted{Name: extensions.Full(name), Reason: reason})
				continue
			}
			errs = append(errs, fmt.Errorf("%w: profile %s: %s", ErrRequiredExtension, profile, reason))
			continue
		}
		ext := Extension{
			Name: extensions.Full(name), Ref: "ghcr.io/siderolabs/" + name + ":" + tag.Tag,
			Version: tag.Tag, Tier: m.Tier(rel, name), Required: !ec.Optional,
			DigestStatus: "unknown",
		}
		if tag.Digest != compat.DigestUnknown {
			ext.Digest, ext.DigestStatus = tag.Digest, "pinned"
		}
		p.Extensions = append(p.Extensions, ext)
		pinned = append(pinned, extensions.Pinned{Name: name, Tag: tag.Tag})
	}
	return errs, pinned
}

// unknownExtension explains a name no release of the matrix lists: the nearest names of
// this release's own catalog, and the refresh that would learn a newer extension.
func unknownExtension(m *compat.Matrix, rel *compat.Release, profile string, j int, configured, name string) error {
	msg := fmt.Sprintf("profile %s: extensions[%d]: %q is not in the Talos %s catalog nor in any other release the matrix knows",
		profile, j, configured, rel.Version)
	if near := nearestNames(rel, name); len(near) > 0 {
		msg += fmt.Sprintf(" (did you mean %s?)", strings.Join(near, " or "))
	}
	newest := m.Releases[len(m.Releases)-1].Version
	return fmt.Errorf("%s; if it is an extension published after %s, update the matrix with `imgpipe matrix refresh`", msg, newest)
}

// profileSchematic is the profile's schematic: the adopted file's exactly, or one
// built from the profile's fields.
func profileSchematic(rel *compat.Release, pc ProfileConfig, p *Profile, adopted *schematic.Schematic) (*schematic.Schematic, error) {
	if adopted != nil {
		if adopted.Overlay.Name != "" {
			p.Overlay = overlayRef(rel, adopted.Overlay.Image, adopted.Overlay.Name)
		}
		return adopted, nil
	}
	sc := buildSchematic(pc, p.Extensions)
	if pc.Overlay != nil {
		ov, err := resolveOverlay(rel, pc, p)
		if err != nil {
			return nil, err
		}
		sc.Overlay = ov
	}
	return &sc, nil
}

// buildSchematic builds the profile's schematic with image-factory's own types, so
// the YAML and ID are byte-for-byte what the factory computes. Extensions are already
// sorted by full name. The overlay is resolveOverlay's.
func buildSchematic(pc ProfileConfig, exts []Extension) schematic.Schematic {
	var sc schematic.Schematic
	for _, e := range exts {
		sc.Customization.SystemExtensions.OfficialExtensions = append(sc.Customization.SystemExtensions.OfficialExtensions, e.Name)
	}
	sc.Customization.ExtraKernelArgs = pc.ExtraKernelArgs
	for _, mv := range pc.Meta {
		sc.Customization.Meta = append(sc.Customization.Meta, schematic.MetaValue{Key: mv.Key, Value: mv.Value})
	}
	if pc.DiskImage != nil {
		sc.Customization.DiskImage.SectorSize = pc.DiskImage.SectorSize
	}
	if pc.Bootloader != "" {
		if k, err := imageropts.BootloaderKindString(pc.Bootloader); err == nil {
			sc.Customization.Bootloader = k
		}
	}
	if pc.SecureBoot != nil {
		sc.Customization.SecureBoot.EnrollKeys = pc.SecureBoot.EnrollKeys
		sc.Customization.SecureBoot.IncludeWellKnownCertificates = pc.SecureBoot.IncludeWellKnownCertificates
	}
	return sc
}

// InstallerRef is the factory installer image for a schematic and release:
// <registry>/installer[-secureboot]/<id>:<v> before v1.10 (what the factory UI shows),
// <registry>/<platform>-installer[-secureboot]/<id>:<v> from v1.10.
func InstallerRef(registry, id, talos, platform string, secureBoot bool) string {
	repo := "installer"
	if v, err := semver.NewVersion(talos); err == nil {
		core, _ := v.SetPrerelease("")
		if !core.LessThan(v110) {
			repo = platform + "-installer"
		}
	}
	if secureBoot {
		repo += "-secureboot"
	}
	return fmt.Sprintf("%s/%s/%s:%s", registry, repo, id, talos)
}

// ImageURL is a factory download URL: <factory>/image/<id>/<v>/<platform>-<arch>[-secureboot]<suffix>.
func ImageURL(factory, id, talos, platform, arch string, secureBoot bool, suffix string) string {
	sb := ""
	if secureBoot {
		sb = "-secureboot"
	}
	return fmt.Sprintf("%s/image/%s/%s/%s-%s%s%s", factory, id, talos, platform, arch, sb, suffix)
}

// DiskImageSuffix is the default disk image compression of a release: .raw.xz before
// v1.8, .raw.zst from v1.8 (Talos imager quirks).
func DiskImageSuffix(talos string) string {
	if v, err := semver.NewVersion(talos); err == nil {
		core, _ := v.SetPrerelease("")
		if core.LessThan(v18) {
			return ".raw.xz"
		}
	}
	return ".raw.zst"
}

func coreImages(rel *compat.Release, k8s string) []Image {
	img := rel.Images
	var out []Image
	add := func(role, ref string) {
		if ref != "" {
			out = append(out, Image{Role: role, Ref: ref})
		}
	}
	if img.Installer != "" {
		add("installer", img.Installer+":"+rel.Version)
	}
	if img.InstallerBase != "" {
		add("installer-base", img.InstallerBase+":"+rel.Version)
	}
	kv := "v" + strings.TrimPrefix(k8s, "v")
	for _, c := range []struct{ role, repo string }{
		{"kubelet", img.Kubelet}, {"kube-apiserver", img.KubeAPIServer},
		{"kube-controller-manager", img.KubeControllerManager}, {"kube-scheduler", img.KubeScheduler},
		{"kube-proxy", img.KubeProxy},
	} {
		if c.repo != "" {
			add(c.role, c.repo+":"+kv)
		}
	}
	add("etcd", img.Etcd)
	add("coredns", img.CoreDNS)
	add("flannel", img.Flannel)
	add("pause", img.Pause)
	return out
}

// knownExtension reports whether any release of the matrix ships the extension.
func knownExtension(m *compat.Matrix, name string) bool {
	if _, ok := m.Extensions[name]; ok {
		return true
	}
	for i := range m.Releases {
		if _, ok := m.Releases[i].Extensions[name]; ok {
			return true
		}
	}
	return false
}

// nearestNames suggests the extensions of the release's own catalog closest to a
// misspelled name: those at the smallest edit distance (at most 3), else those sharing
// its first word; at most 3.
func nearestNames(rel *compat.Release, name string) []string {
	type cand struct {
		name string
		d    int
	}
	var cs []cand
	prefix, _, _ := strings.Cut(name, "-")
	for n := range rel.Extensions {
		d := textdist.Levenshtein(name, n)
		if d > 3 && !(len(prefix) >= 3 && strings.HasPrefix(n, prefix)) {
			continue
		}
		cs = append(cs, cand{n, d})
	}
	slices.SortFunc(cs, func(a, b cand) int {
		if a.d != b.d {
			return a.d - b.d
		}
		return strings.Compare(a.name, b.name)
	})
	var out []string
	for _, c := range cs[:min(len(cs), 3)] {
		if c.d <= 3 && c.d > cs[0].d {
			break // only the best distance, not the also-rans
		}
		out = append(out, c.name)
	}
	return out
}
