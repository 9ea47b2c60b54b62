package extensions

import (
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// ErrPairing is returned when a profile's NVIDIA extensions do not belong together.
var ErrPairing = errors.New("NVIDIA extension pairing violated")

// Pinned is an extension with the tag it resolved to.
type Pinned struct {
	Name string // short name
	Tag  string
}

// DriverConstraint is a parsed constraint on the NVIDIA driver version ("550.x", ">=570 <580").
type DriverConstraint struct {
	raw string
	c   *semver.Constraints
}

// ParseDriverConstraint parses a driver constraint; the empty string means "any".
func ParseDriverConstraint(s string) (*DriverConstraint, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return nil, nil
	}
	c, err := semver.NewConstraint(s)
	if err != nil {
		return nil, fmt.Errorf("NVIDIA driver constraint %q: %v (want like 550.x or >=570 <580)", s, err)
	}
	return &DriverConstraint{raw: s, c: c}, nil
}

func (d *DriverConstraint) String() string { return d.raw }

// Allows reports whether a driver version (550.144.03) satisfies the constraint.
func (d *DriverConstraint) Allows(driver string) bool {
	if d == nil {
		return true
	}
	v, err := semver.NewVersion(driver)
	if err != nil {
		return false
	}
	return d.c.Check(v)
}

// CheckNVIDIA is the pairing gate for one profile resolved for Talos target:
// at most one kernel-module flavour; every NVIDIA extension on the same tier and the
// same driver; the kernel modules built for exactly the target Talos release; a
// toolkit only together with kernel modules; and the driver inside the profile's
// constraint. It returns nil when the set has no NVIDIA extensions.
func CheckNVIDIA(target string, set []Pinned, constraint *DriverConstraint) error {
	type entry struct {
		Pinned
		fam  Family
		tier Tier
		tag  Tag
	}
	var nv []entry
	var errs []error
	for _, p := range set {
		fam, tier := Classify(p.Name)
		if fam == FamilyOther {
			continue
		}
		t, err := ParseTag(p.Name, p.Tag)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		nv = append(nv, entry{p, fam, tier, t})
	}
	if len(nv) == 0 {
		if len(errs) > 0 {
			return fmt.Errorf("%w: %w", ErrPairing, errors.Join(errs...))
		}
		if constraint != nil {
			return fmt.Errorf("%w: a driver constraint %q is set but the profile has no NVIDIA extensions", ErrPairing, constraint)
		}
		return nil
	}
	var modules []entry
	hasToolkit := false
	for _, e := range nv {
		if e.fam.Modules() {
			modules = append(modules, e)
		}
		if e.fam == FamilyToolkit {
			hasToolkit = true
		}
	}
	if len(modules) > 1 {
		names := make([]string, len(modules))
		for i, m := range modules {
			names[i] = m.Name
		}
		errs = append(errs, fmt.Errorf("more than one kernel-module extension (%s): choose the open modules (Turing and newer) or the proprietary ones, not both", strings.Join(names, ", ")))
	}
	if hasToolkit && len(modules) == 0 {
		errs = append(errs, errors.New("nvidia-container-toolkit without kernel modules: add nvidia-open-gpu-kernel-modules-<tier> (or nonfree-kmod-nvidia-<tier>) of the same tier"))
	}
	first := nv[0]
	for _, e := range nv[1:] {
		if e.tier != first.tier {
			errs = append(errs, fmt.Errorf("tiers differ: %s is %s but %s is %s; use the same track for all NVIDIA extensions", first.Name, first.tier, e.Name, e.tier))
		}
		if e.tag.Driver != first.tag.Driver {
			errs = append(errs, fmt.Errorf("drivers differ: %s:%s has driver %s but %s:%s has %s", first.Name, first.Tag, first.tag.Driver, e.Name, e.Tag, e.tag.Driver))
		}
	}
	for _, m := range modules {
		if m.tag.Talos != target {
			errs = append(errs, fmt.Errorf("%s:%s was built for Talos %s, not %s: kernel modules only load on the release they were built for", m.Name, m.Tag, m.tag.Talos, target))
		}
	}
	if constraint != nil && !constraint.Allows(first.tag.Driver) {
		errs = append(errs, fmt.Errorf("driver %s (%s, Talos %s) is outside the profile's constraint %q", first.tag.Driver, first.Name, target, constraint))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%w: %w", ErrPairing, errors.Join(errs...))
	}
	return nil
}
