package compat

import (
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/yamlx"
)

// SchemaVersion is the matrix.yaml schema this build reads and writes.
const SchemaVersion = 1

// DigestUnknown marks an extension whose digest no primary source had. The matrix
// says so explicitly rather than leaving the field out or inventing a value.
const DigestUnknown = "unknown"

// Matrix is the parsed matrix.yaml.
type Matrix struct {
	SchemaVersion int `yaml:"schemaVersion"`
	// Source says where the data came from (a snapshot, a factory refresh).
	Source string `yaml:"source,omitempty"`
	// Extensions is per-extension metadata keyed by short name (no "siderolabs/").
	Extensions map[string]ExtensionMeta `yaml:"extensions"`
	// Releases are sorted by semver, oldest first.
	Releases []Release `yaml:"releases"`

	index map[string]int
}

// ExtensionMeta is what the matrix knows about an extension independent of release.
type ExtensionMeta struct {
	// Tier is the tier in the newest release that lists the extension; a release whose
	// catalog says otherwise records its own (ExtensionTag.Tier).
	Tier string `yaml:"tier,omitempty"` // core | extra | contrib | deprecated
	// Since is the first Talos release that ships the extension under this name.
	Since string `yaml:"since,omitempty"`
	// Until is the last Talos release that ships it under this name (renamed or dropped after).
	Until string `yaml:"until,omitempty"`
	Note  string `yaml:"note,omitempty"`
}

// Release is one Talos release.
type Release struct {
	Version    string `yaml:"version"`
	Date       string `yaml:"date,omitempty"`
	Prerelease bool   `yaml:"prerelease,omitempty"`
	Broken     bool   `yaml:"broken,omitempty"`
	// Unverified marks a release whose existence no primary source (the Image Factory's
	// version list, the Talos tag) confirmed: it is only chosen when asked for by its
	// exact version, even with --pre. A release the factory lists is not unverified:
	// refresh clears the flag.
	Unverified bool `yaml:"unverified,omitempty"`
	// FirstSeen is when `imgpipe matrix refresh` first saw the factory list the release
	// (RFC 3339, UTC). A site's soak period (minimumReleaseAge) counts from it; a
	// release without it (recorded before refresh tracked it) has soaked.
	FirstSeen string `yaml:"firstSeen,omitempty"`
	// Partial marks a release whose extension list is known to be incomplete.
	Partial bool   `yaml:"partial,omitempty"`
	Note    string `yaml:"note,omitempty"`
	// Kubernetes is the release's default Kubernetes version (machinery constants at the tag).
	Kubernetes string `yaml:"kubernetes,omitempty"`
	// Images is the `talosctl images default` set of the release.
	Images CoreImages `yaml:"images,omitempty"`
	// Extensions maps a short extension name to its tag and digest in this release's catalog.
	Extensions map[string]ExtensionTag `yaml:"extensions"`
	// Overlays maps a short overlay image name ("sbc-rockchip") to its tag, digest and
	// the boards (overlay names) it serves in this release.
	Overlays map[string]OverlayImage `yaml:"overlays,omitempty"`

	semver *semver.Version
}

// CoreImages are the Talos core images of a release. Kubernetes components are
// repositories (they take the Kubernetes version as tag); the rest are full refs.
type CoreImages struct {
	Installer             string `yaml:"installer,omitempty"`      // repository; tag = Talos version
	InstallerBase         string `yaml:"installer-base,omitempty"` // repository; tag = Talos version (>= v1.10)
	Etcd                  string `yaml:"etcd,omitempty"`
	CoreDNS               string `yaml:"coredns,omitempty"`
	Flannel               string `yaml:"flannel,omitempty"`
	Pause                 string `yaml:"pause,omitempty"`
	Kubelet               string `yaml:"kubelet,omitempty"`
	KubeAPIServer         string `yaml:"kube-apiserver,omitempty"`
	KubeControllerManager string `yaml:"kube-controller-manager,omitempty"`
	KubeScheduler         string `yaml:"kube-scheduler,omitempty"`
	KubeProxy             string `yaml:"kube-proxy,omitempty"`
}

// ExtensionTag is an extension's image tag and digest in one release catalog. The
// digest belongs to this (release, name) pair: the same name:tag can have another
// digest in another release, so digests are never shared by tag.
type ExtensionTag struct {
	Tag    string `yaml:"tag"`
	Digest string `yaml:"digest"` // "sha256:<64 hex>" or DigestUnknown
	// Tier is set only where this release's tier differs from extensions.<name>.tier.
	Tier string `yaml:"tier,omitempty"`
}

// OverlayImage is one official overlay image in a release: its tag (empty when no
// source gave it), its digest (or DigestUnknown) and the board names it provides.
type OverlayImage struct {
	Tag    string   `yaml:"tag,omitempty"`
	Digest string   `yaml:"digest"`
	Boards []string `yaml:"boards"`
}

// OfficialRepository is where official extension and overlay images live
// ("<repo>/zfs:<tag>", "<repo>/sbc-rockchip:<tag>").
const OfficialRepository = "ghcr.io/siderolabs"

// Tier returns an extension's tier in release r: the release's own when recorded,
// else the extension's.
func (m *Matrix) Tier(r *Release, name string) string {
	if e, ok := r.Extensions[name]; ok && e.Tier != "" {
		return e.Tier
	}
	return m.Extensions[name].Tier
}

// Overlay returns the overlay image that provides board in release r ("sbc-rockchip").
func (r *Release) Overlay(board string) (string, OverlayImage, bool) {
	for _, img := range slices.Sorted(maps.Keys(r.Overlays)) {
		if slices.Contains(r.Overlays[img].Boards, board) {
			return img, r.Overlays[img], true
		}
	}
	return "", OverlayImage{}, false
}

// Semver returns the parsed version.
func (r *Release) Semver() *semver.Version { return r.semver }

// Stable reports whether the release may be picked by a range query without --pre
// (ignoring any soak period: see Eligible).
func (r *Release) Stable() bool { return !r.Prerelease && !r.Broken && !r.Unverified }

// FirstSeenTime parses FirstSeen; ok is false when it is not set.
func (r *Release) FirstSeenTime() (t time.Time, ok bool) {
	if r.FirstSeen == "" {
		return time.Time{}, false
	}
	t, err := time.Parse(time.RFC3339, r.FirstSeen)
	return t, err == nil
}

// Ineligible says why a range query passes over the release ("" when it may pick it):
// broken, unverified, a prerelease (unless opts.Pre), or still soaking (seen less
// than opts.MinReleaseAge before opts.Now).
func (r *Release) Ineligible(opts ResolveOptions) string {
	switch {
	case r.Broken:
		return "broken"
	case r.Prerelease && !opts.Pre:
		return "prerelease; use --pre"
	case r.Unverified:
		// Predicted or not confirmed by any primary source: only by its exact version,
		// even with --pre, until a refresh from a factory that lists it clears the flag.
		return "unverified: no primary source lists it; name it exactly, or confirm it with `imgpipe matrix refresh`"
	}
	if opts.MinReleaseAge > 0 {
		if seen, ok := r.FirstSeenTime(); ok {
			if age := opts.Now.Sub(seen); age < opts.MinReleaseAge {
				return fmt.Sprintf("soaking: first seen %s, eligible from %s (minimumReleaseAge %s)",
					r.FirstSeen, seen.Add(opts.MinReleaseAge).UTC().Format(time.RFC3339), opts.MinReleaseAge)
			}
		}
	}
	return ""
}

var (
	k8sRE = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	tiers = []string{"core", "extra", "contrib", "deprecated"}
)

// Parse decodes and validates matrix.yaml. file names the source in errors
// ("matrix.yaml:42: releases[3].extensions.glibc.digest: ..."). Errors wrap fail.ErrUsage.
func Parse(file string, data []byte) (*Matrix, error) {
	m, err := decodeCanonical(data)
	if err != nil {
		m = &Matrix{}
		if err := yamlx.Decode(file, data, m); err != nil {
			return nil, fail.Usage(fmt.Errorf("parsing compatibility matrix: %w", err))
		}
	}
	if err := m.validate(file, data); err != nil {
		return nil, fail.Usage(fmt.Errorf("validating compatibility matrix: %w", err))
	}
	return m, nil
}

func (m *Matrix) validate(file string, data []byte) error {
	var loc *yamlx.Locator
	at := func(msg string, path ...any) error {
		if loc == nil {
			loc = yamlx.NewLocator(data)
		}
		return yamlx.At(file, loc, msg, path...)
	}
	var errs []error
	if m.SchemaVersion != SchemaVersion {
		errs = append(errs, at(fmt.Sprintf("schema version %d is not supported (this imgpipe reads %d)", m.SchemaVersion, SchemaVersion), "schemaVersion"))
	}
	errs = append(errs, m.validateMeta(at)...)
	if len(m.Releases) == 0 {
		errs = append(errs, at("no releases", "releases"))
	}
	m.index = make(map[string]int, len(m.Releases))
	for i := range m.Releases {
		r := &m.Releases[i]
		v, err := parseTalos(r.Version)
		if err != nil {
			errs = append(errs, at(err.Error(), "releases", i, "version"))
			continue
		}
		r.semver = v
		if j, dup := m.index[r.Version]; dup {
			errs = append(errs, at(fmt.Sprintf("release %s is listed twice (also releases[%d])", r.Version, j), "releases", i, "version"))
		}
		m.index[r.Version] = i
		if i > 0 && m.Releases[i-1].semver != nil && !m.Releases[i-1].semver.LessThan(v) {
			errs = append(errs, at(fmt.Sprintf("releases must be sorted by version: %s comes after %s", r.Version, m.Releases[i-1].Version), "releases", i, "version"))
		}
		if _, err := time.Parse(time.RFC3339, r.FirstSeen); r.FirstSeen != "" && err != nil {
			errs = append(errs, at(fmt.Sprintf("firstSeen %q is not an RFC 3339 time like 2026-12-02T05:17:00Z", r.FirstSeen), "releases", i, "firstSeen"))
		}
		if r.Kubernetes != "" && !k8sRE.MatchString(r.Kubernetes) {
			errs = append(errs, at(fmt.Sprintf("kubernetes %q is not a version like 1.32.4", r.Kubernetes), "releases", i, "kubernetes"))
		}
		errs = append(errs, validateOverlays(r, i, at)...)
		if extensionsValid(r) {
			continue // the common case: no need to sort names for deterministic messages
		}
		for _, name := range slices.Sorted(maps.Keys(r.Extensions)) {
			e := r.Extensions[name]
			if !isExtName(name) {
				errs = append(errs, at(fmt.Sprintf("invalid extension name %q (use the short name, without siderolabs/)", name), "releases", i, "extensions", name))
			}
			if !isTag(e.Tag) {
				errs = append(errs, at(fmt.Sprintf("invalid tag %q", e.Tag), "releases", i, "extensions", name, "tag"))
			}
			if e.Digest != DigestUnknown && !isDigest(e.Digest) {
				errs = append(errs, at(fmt.Sprintf("digest %q is neither sha256:<64 hex> nor %q", e.Digest, DigestUnknown), "releases", i, "extensions", name, "digest"))
			}
			if e.Tier != "" && !slices.Contains(tiers, e.Tier) {
				errs = append(errs, at(fmt.Sprintf("tier %q is not one of %s", e.Tier, strings.Join(tiers, ", ")), "releases", i, "extensions", name, "tier"))
			}
		}
	}
	return errors.Join(errs...)
}

func (m *Matrix) validateMeta(at func(string, ...any) error) []error {
	var errs []error
	for name, meta := range m.Extensions {
		if !isExtName(name) {
			errs = append(errs, at(fmt.Sprintf("invalid extension name %q", name), "extensions", name))
		}
		if meta.Tier != "" && !slices.Contains(tiers, meta.Tier) {
			errs = append(errs, at(fmt.Sprintf("tier %q is not one of %s", meta.Tier, strings.Join(tiers, ", ")), "extensions", name, "tier"))
		}
		for _, f := range []struct{ field, v string }{{"since", meta.Since}, {"until", meta.Until}} {
			if f.v != "" {
				if _, err := parseTalos(f.v); err != nil {
					errs = append(errs, at(err.Error(), "extensions", name, f.field))
				}
			}
		}
	}
	return errs
}

// extensionsValid is the fast check that each of r's extension rows is well formed.
func extensionsValid(r *Release) bool {
	for name, e := range r.Extensions {
		if !isExtName(name) || !isTag(e.Tag) || e.Digest != DigestUnknown && !isDigest(e.Digest) || e.Tier != "" && !slices.Contains(tiers, e.Tier) {
			return false
		}
	}
	return true
}

func validateOverlays(r *Release, i int, at func(string, ...any) error) []error {
	var errs []error
	board := map[string]string{}
	for _, img := range slices.Sorted(maps.Keys(r.Overlays)) {
		o := r.Overlays[img]
		if !isExtName(img) {
			errs = append(errs, at(fmt.Sprintf("invalid overlay image name %q (use the short name, like sbc-rockchip)", img), "releases", i, "overlays", img))
		}
		if o.Tag != "" && !isTag(o.Tag) {
			errs = append(errs, at(fmt.Sprintf("invalid tag %q", o.Tag), "releases", i, "overlays", img, "tag"))
		}
		if o.Digest != DigestUnknown && !isDigest(o.Digest) {
			errs = append(errs, at(fmt.Sprintf("digest %q is neither sha256:<64 hex> nor %q", o.Digest, DigestUnknown), "releases", i, "overlays", img, "digest"))
		}
		if len(o.Boards) == 0 {
			errs = append(errs, at("an overlay image needs at least one board", "releases", i, "overlays", img, "boards"))
		}
		for j, b := range o.Boards {
			if !isBoard(b) {
				errs = append(errs, at(fmt.Sprintf("invalid board name %q", b), "releases", i, "overlays", img, "boards", j))
			}
			if other, dup := board[b]; dup {
				errs = append(errs, at(fmt.Sprintf("board %s is also provided by %s", b, other), "releases", i, "overlays", img, "boards", j))
			}
			board[b] = img
		}
	}
	return errs
}

// parseTalos parses a Talos version, which must carry the "v" prefix (v1.9.6).
func parseTalos(s string) (*semver.Version, error) {
	if !strings.HasPrefix(s, "v") {
		return nil, fmt.Errorf("Talos version %q must start with v (like v1.9.6)", s)
	}
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return nil, fmt.Errorf("Talos version %q: %v", s, err)
	}
	return v, nil
}

// Release returns the release with exactly this version ("v1.9.6").
func (m *Matrix) Release(version string) (*Release, bool) {
	if m.index == nil {
		m.reindex()
	}
	i, ok := m.index[version]
	if !ok {
		return nil, false
	}
	return &m.Releases[i], true
}

func (m *Matrix) reindex() {
	m.index = make(map[string]int, len(m.Releases))
	for i := range m.Releases {
		m.index[m.Releases[i].Version] = i
		if m.Releases[i].semver == nil {
			m.Releases[i].semver, _ = parseTalos(m.Releases[i].Version)
		}
	}
}

// Stable returns the releases a range query may pick without --pre, oldest first.
func (m *Matrix) Stable() []*Release {
	var out []*Release
	for i := range m.Releases {
		if m.Releases[i].Stable() {
			out = append(out, &m.Releases[i])
		}
	}
	return out
}

// LatestPatch returns the newest stable release of the given minor ("v1.9" or any
// version of that minor), or false when the minor has no stable release.
func (m *Matrix) LatestPatch(minorOf *semver.Version) (*Release, bool) {
	var best *Release
	for i := range m.Releases {
		r := &m.Releases[i]
		if !r.Stable() || r.semver.Major() != minorOf.Major() || r.semver.Minor() != minorOf.Minor() {
			continue
		}
		best = r
	}
	return best, best != nil
}

// KubernetesVersions returns the Kubernetes versions the matrix knows of (each stable
// release's default), sorted ascending and deduplicated.
func (m *Matrix) KubernetesVersions() []*semver.Version {
	seen := map[string]bool{}
	var out []*semver.Version
	for i := range m.Releases {
		r := &m.Releases[i]
		if !r.Stable() || r.Kubernetes == "" || seen[r.Kubernetes] {
			continue
		}
		v, err := semver.StrictNewVersion(r.Kubernetes)
		if err != nil || v.Prerelease() != "" {
			continue
		}
		seen[r.Kubernetes] = true
		out = append(out, v)
	}
	slices.SortFunc(out, func(a, b *semver.Version) int { return a.Compare(b) })
	return out
}
