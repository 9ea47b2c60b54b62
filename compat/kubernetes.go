package compat

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/siderolabs/talos/pkg/machinery/api/machine"
	"github.com/siderolabs/talos/pkg/machinery/compatibility"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// ErrKubernetesUnsupported is returned (with fail.ErrPolicy) when a Talos release does not
// support a Kubernetes version.
var ErrKubernetesUnsupported = errors.New("Kubernetes version not supported by Talos release")

// ErrUpgradeBlocked is returned (with fail.ErrPolicy) when Talos refuses an upgrade between two versions.
var ErrUpgradeBlocked = errors.New("Talos upgrade not allowed")

// KubernetesRange is the range of Kubernetes minors a Talos release supports.
type KubernetesRange struct {
	MinMinor string // e.g. "1.27"
	MaxMinor string // e.g. "1.32"
}

func talosVersion(v string) (*compatibility.TalosVersion, error) {
	tv, err := compatibility.ParseTalosVersion(&machine.VersionInfo{Tag: v})
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("parsing Talos version %q: %w (want like v1.9.6)", v, err))
	}
	return tv, nil
}

// KubernetesSupported reports whether Talos release talos supports Kubernetes version k8s
// ("1.32.4"), as Talos itself decides (machinery compatibility.SupportedWith).
func KubernetesSupported(talos, k8s string) error {
	tv, err := talosVersion(talos)
	if err != nil {
		return err
	}
	kv, err := compatibility.ParseKubernetesVersion(strings.TrimPrefix(k8s, "v"))
	if err != nil {
		return fail.Usage(fmt.Errorf("parsing Kubernetes version %q: %w", k8s, err))
	}
	if err := kv.SupportedWith(tv); err != nil {
		r := SupportedKubernetes(talos)
		return fail.Policy(fmt.Errorf("%w: Talos %s supports Kubernetes %s to %s, not %s (%v)",
			ErrKubernetesUnsupported, talos, r.MinMinor, r.MaxMinor, strings.TrimPrefix(k8s, "v"), err))
	}
	return nil
}

// SupportedKubernetes derives the supported Kubernetes minors of a Talos release by
// asking machinery about each minor, so the range is never a copied table.
func SupportedKubernetes(talos string) KubernetesRange {
	tv, err := talosVersion(talos)
	if err != nil {
		return KubernetesRange{}
	}
	var r KubernetesRange
	for minor := 0; minor <= 99; minor++ {
		kv, err := compatibility.ParseKubernetesVersion(fmt.Sprintf("1.%d.0", minor))
		if err != nil {
			continue
		}
		if kv.SupportedWith(tv) == nil {
			if r.MinMinor == "" {
				r.MinMinor = fmt.Sprintf("1.%d", minor)
			}
			r.MaxMinor = fmt.Sprintf("1.%d", minor)
		}
	}
	return r
}

// UpgradeableFrom reports whether a node running Talos `from` may be upgraded to `to`
// in one step, as Talos itself decides (machinery compatibility.UpgradeableFrom).
func UpgradeableFrom(to, from string) error {
	tv, err := talosVersion(to)
	if err != nil {
		return err
	}
	fv, err := talosVersion(from)
	if err != nil {
		return err
	}
	if err := tv.UpgradeableFrom(fv); err != nil {
		return fail.Policy(fmt.Errorf("%w: %s -> %s: %v", ErrUpgradeBlocked, from, to, err))
	}
	return nil
}

// fallbackKubernetes is the Kubernetes version for a release the matrix records no
// default for (a prerelease known from its catalog only): the newest version the matrix
// knows that machinery says the release supports. Without one the error names the
// supported range, so the user knows what --kubernetes to pass.
func (m *Matrix) fallbackKubernetes(rel *Release) (string, error) {
	var best *semver.Version
	for _, v := range m.KubernetesVersions() {
		if KubernetesSupported(rel.Version, v.String()) == nil {
			best = v
		}
	}
	if best != nil {
		return best.String(), nil
	}
	r := SupportedKubernetes(rel.Version)
	if r.MaxMinor == "" {
		return "", fail.Usage(fmt.Errorf("Talos %s has no default Kubernetes version in the matrix and machinery knows no supported range for it: pass --kubernetes", rel.Version))
	}
	return "", fail.Usage(fmt.Errorf("Talos %s has no default Kubernetes version in the matrix and none of the matrix's Kubernetes versions is in its supported range %s to %s: pass --kubernetes %s.x", rel.Version, r.MinMinor, r.MaxMinor, r.MaxMinor))
}

// ParseKubernetes parses "1.32.4" or "v1.32.4".
func ParseKubernetes(s string) (*semver.Version, error) {
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("Kubernetes version %q: %v (want like 1.32.4)", s, err))
	}
	return v, nil
}

// ResolveKubernetes picks a Kubernetes version for query: an exact version is taken as
// is; "1.31", "1.31.x" or "~1.31" pick the newest matching version the matrix knows
// (the Talos releases' defaults). An empty query picks the release default.
func (m *Matrix) ResolveKubernetes(query string, rel *Release) (string, error) {
	q := strings.TrimPrefix(strings.TrimSpace(query), "v")
	if q == "" {
		if rel.Kubernetes == "" {
			return m.fallbackKubernetes(rel)
		}
		return rel.Kubernetes, nil
	}
	if v, err := semver.StrictNewVersion(q); err == nil {
		return v.String(), nil
	}
	if minorOnlyRE.MatchString(q) {
		q += ".x"
	}
	c, err := semver.NewConstraint(q)
	if err != nil {
		return "", fail.Usage(fmt.Errorf("Kubernetes version query %q: %v", query, err))
	}
	var best *semver.Version
	for _, v := range m.KubernetesVersions() {
		if c.Check(v) {
			best = v
		}
	}
	if best == nil {
		return "", fail.Policy(fmt.Errorf("no known Kubernetes version matches %q: give an exact version like 1.31.4", query))
	}
	return best.String(), nil
}
