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
	Tier string `yaml:"tier,omitempty"` // core | extra | contrib
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
	// version list, the Talos tag) confirmed; like a prerelease it is only chosen when
	// asked for by exact version or with --pre. A release the factory lists is not
	// unverified: refresh clears the flag.
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

// ExtensionTag is an extension's image tag and digest in one release catalog.
type ExtensionTag struct {
	Tag    string `yaml:"tag"`
	Digest string `yaml:"digest"` // "sha256:<64 hex>" or DigestUnknown
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
// broken, a prerelease or unverified (unless opts.Pre), or still soaking (seen less
// than opts.MinReleaseAge before opts.Now).
func (r *Release) Ineligible(opts ResolveOptions) string {
	switch {
	case r.Broken:
		return "broken"
	case r.Prerelease && !opts.Pre:
		return "prerelease; use --pre"
	case r.Unverified && !opts.Pre:
		return "unverified: no primary source lists it; use --pre"
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
	digestRE  = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	extNameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9-]*[a-z0-9]$`)
	tagRE     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$`)
	k8sRE     = regexp.MustCompile(`^\d+\.\d+\.\d+(-[0-9A-Za-z.-]+)?$`)
	tiers     = []string{"core", "extra", "contrib"}
)

// Parse decodes and validates matrix.yaml. file names the source in errors
// ("matrix.yaml:42: releases[3].extensions.glibc.digest: ..."). Errors wrap fail.ErrUsage.
func Parse(file string, data []byte) (*Matrix, error) {
	var m Matrix
	if err := yamlx.Decode(file, data, &m); err != nil {
		return nil, fail.Usage(fmt.Errorf("parsing compatibility matrix: %w", err))
	}
	if err := m.validate(file, data); err != nil {
		return nil, fail.Usage(fmt.Errorf("validating compatibility matrix: %w", err))
	}
	return &m, nil
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
	for name, meta := range m.Extensions {
		if !extNameRE.MatchString(name) {
			errs = append(errs, at(fmt.Sprintf("invalid extension name %q", name), "extensions", name))
		}
		if meta.Tier != "" && !slices.Contains(tiers, meta.Tier) {
			errs = append(errs, at(fmt.Sprintf("tier %q is not one of %s", meta.Tier, strings.Join(tiers, ", ")), "extensions", name, "tier"))
		}
		for field, v := range map[string]string{"since": meta.Since, "until": meta.Until} {
			if v != "" {
				if _, err := parseTalos(v); err != nil {
					errs = append(errs, at(err.Error(), "extensions", name, field))
				}
			}
		}
	}
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
		for _, name := range slices.Sorted(maps.Keys(r.Extensions)) {
			e := r.Extensions[name]
			if !extNameRE.MatchString(name) {
				errs = append(errs, at(fmt.Sprintf("invalid extension name %q (use the short name, without siderolabs/)", name), "releases", i, "extensions", name))
			}
			if !tagRE.MatchString(e.Tag) {
				errs = append(errs, at(fmt.Sprintf("invalid tag %q", e.Tag), "releases", i, "extensions", name, "tag"))
			}
			if e.Digest != DigestUnknown && !digestRE.MatchString(e.Digest) {
				errs = append(errs, at(fmt.Sprintf("digest %q is neither sha256:<64 hex> nor %q", e.Digest, DigestUnknown), "releases", i, "extensions", name, "digest"))
			}
		}
	}
	return errors.Join(errs...)
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
