package compat

import (
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// ErrNoRelease is returned (wrapped, with fail.ErrPolicy) when no release matches a query.
var ErrNoRelease = errors.New("no matching Talos release")

// ResolveOptions tune a version query.
type ResolveOptions struct {
	// Pre lets range queries pick prereleases. Unverified releases (the catalog's
	// predicted one) are never picked by a range, only by their exact version, until a
	// refresh from a factory that lists them clears the flag.
	Pre bool
	// MinReleaseAge is the site's soak period (like Renovate's minimumReleaseAge):
	// a range query passes over a release first seen less than this before Now.
	MinReleaseAge time.Duration
	// Now is the time the soak is judged at (the caller's clock; compat reads none).
	Now time.Time
}

// PassedOver is a newer release a range query matched but did not pick, and why.
type PassedOver struct {
	Version string `json:"version"`
	Reason  string `json:"reason"`
}

func (p PassedOver) String() string { return p.Version + " (" + p.Reason + ")" }

// Resolution is a resolved query: the release and the newer matching releases it
// passed over (newest first).
type Resolution struct {
	Release    *Release
	PassedOver []PassedOver
}

var minorOnlyRE = regexp.MustCompile(`^v?\d+\.\d+$`)

// Resolve turns a version query into the newest matching release:
//
//	v1.9.6            exactly that release (prerelease, unverified or broken ones too, with Note)
//	v1.9.x, 1.9, ~1.9 the newest stable patch of v1.9
//	>=1.9.3 <1.10     the newest stable release in the range
//	latest            the newest stable release
//
// Broken and unverified releases are never picked by a range; prereleases only with
// opts.Pre. An unknown version names the nearest known one.
func (m *Matrix) Resolve(query string, opts ResolveOptions) (*Release, error) {
	res, err := m.ResolveDetail(query, opts)
	if err != nil {
		return nil, err
	}
	return res.Release, nil
}

// ResolveDetail is Resolve that also reports the newer releases a range query
// passed over (broken, prerelease, unverified, soaking) and why.
func (m *Matrix) ResolveDetail(query string, opts ResolveOptions) (*Resolution, error) {
	q := strings.TrimSpace(query)
	if q == "" {
		return nil, fail.Usage(errors.New("empty Talos version query: give one like v1.9.x, ~1.9, >=1.9.3 <1.10, v1.9.5 or latest"))
	}
	if q == "latest" {
		return m.newest(func(*Release) bool { return true }, q, opts)
	}
	if exact, err := parseTalos(normalizeV(q)); err == nil && looksExact(q) {
		if r, ok := m.Release("v" + exact.String()); ok {
			return &Resolution{Release: r}, nil
		}
		return nil, fail.Policy(fmt.Errorf("%w: Talos %s is not in the compatibility matrix%s", ErrNoRelease, q, m.nearest(exact)))
	}
	cq := q
	if minorOnlyRE.MatchString(q) {
		cq = q + ".x"
	}
	c, err := semver.NewConstraint(stripV(cq))
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("Talos version query %q: %v (use v1.9.x, ~1.9, >=1.9.3 <1.10, v1.9.5 or latest)", query, err))
	}
	return m.newest(func(r *Release) bool {
		v := r.semver
		if v.Prerelease() != "" {
			// Masterminds ranges skip prereleases; judge a prerelease by its release core
			// (newest() then skips it unless --pre, and says so).
			core, _ := v.SetPrerelease("")
			v = &core
		}
		return c.Check(v)
	}, query, opts)
}

func (m *Matrix) newest(match func(*Release) bool, query string, opts ResolveOptions) (*Resolution, error) {
	var skipped []PassedOver
	for i := len(m.Releases) - 1; i >= 0; i-- {
		r := &m.Releases[i]
		if r.semver == nil {
			m.reindex()
		}
		if !match(r) {
			continue
		}
		if why := r.Ineligible(opts); why != "" {
			skipped = append(skipped, PassedOver{Version: r.Version, Reason: why})
			continue
		}
		return &Resolution{Release: r, PassedOver: skipped}, nil
	}
	msg := fmt.Sprintf("%v for %q", ErrNoRelease, query)
	if len(skipped) > 0 {
		names := make([]string, len(skipped))
		for i, p := range skipped {
			names[i] = p.String()
		}
		msg += "; skipped " + strings.Join(names, ", ")
	}
	if len(m.Releases) > 0 {
		if s := m.Stable(); len(s) > 0 {
			msg += fmt.Sprintf("; the matrix covers %s to %s", m.Releases[0].Version, s[len(s)-1].Version)
		}
	}
	return nil, fail.Policy(fmt.Errorf("%w", errorString{msg, ErrNoRelease}))
}

// nearest suggests the closest known release to an unknown version: the newest
// release of the same minor if any, else the closest stable release by version.
func (m *Matrix) nearest(v *semver.Version) string {
	if r, ok := m.LatestPatch(v); ok {
		return fmt.Sprintf(" (newest %d.%d release: %s)", v.Major(), v.Minor(), r.Version)
	}
	var best *Release
	for _, r := range m.Stable() {
		if best == nil || distance(r.semver, v) < distance(best.semver, v) {
			best = r
		}
	}
	if best == nil {
		return ""
	}
	return fmt.Sprintf(" (nearest: %s)", best.Version)
}

func distance(a, b *semver.Version) int64 {
	d := func(x, y uint64) int64 {
		if x > y {
			return int64(x - y)
		}
		return int64(y - x)
	}
	return d(a.Major(), b.Major())*1_000_000 + d(a.Minor(), b.Minor())*1_000 + d(a.Patch(), b.Patch())
}

// looksExact reports whether q names one version rather than a range.
func looksExact(q string) bool {
	s := stripV(q)
	return strings.Count(s, ".") >= 2 && !strings.ContainsAny(s, "xX*^~<>=, |")
}

func normalizeV(q string) string { return "v" + stripV(q) }

func stripV(q string) string { return strings.TrimPrefix(strings.TrimPrefix(q, "="), "v") }

type errorString struct {
	msg  string
	wrap error
}

func (e errorString) Error() string { return e.msg }
func (e errorString) Unwrap() error { return e.wrap }
