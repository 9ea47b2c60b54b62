package factory

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/extensions"
)

// Change kinds in a RefreshReport.
const (
	ChangeNewRelease       = "new-release"       // the factory offers a release the matrix lacks
	ChangeConfirmed        = "confirmed"         // a partial release's extension list is now complete
	ChangeBroken           = "broken"            // the factory marks the release broken
	ChangeVerified         = "verified"          // the factory lists a release the matrix had as unverified
	ChangeAddedExtension   = "added-extension"   // the release's catalog gained an extension
	ChangeRemovedExtension = "removed-extension" // the release's catalog lost an extension
	ChangedTag             = "changed-tag"       // an extension's tag differs
	ChangePinnedDigest     = "pinned-digest"     // an unknown digest is now known
	ChangeChangedDigest    = "changed-digest"    // a known digest differs
	ChangeNotOffered       = "not-offered"       // the matrix has a release the factory does not list
	ChangeCatalogMismatch  = "catalog-mismatch"  // the extensions catalog image disagrees with the factory
)

// Change is one difference between a matrix and the live factory.
type Change struct {
	Kind      string `json:"kind"`
	Release   string `json:"release"`
	Extension string `json:"extension,omitempty"`
	Old       string `json:"old,omitempty"`
	New       string `json:"new,omitempty"`
}

func (c Change) String() string {
	s := c.Release + ": " + c.Kind
	if c.Extension != "" {
		s += " " + c.Extension
	}
	switch {
	case c.Old != "" && c.New != "":
		s += " " + c.Old + " -> " + c.New
	case c.New != "":
		s += " " + c.New
	case c.Old != "":
		s += " (was " + c.Old + ")"
	}
	return s
}

// RefreshReport says what a refresh changed and which features the factory lacked.
type RefreshReport struct {
	Factory string   `json:"factory"`
	Changes []Change `json:"changes"`
	// Notes describe degraded features (e.g. no broken-version list); never fatal.
	Notes []string `json:"notes,omitempty"`
}

// LiveCatalogs is what a factory says about its releases.
type LiveCatalogs struct {
	Factory  string
	Versions []string
	// Broken is nil when the factory cannot tell (BrokenKnown false).
	Broken      []string
	BrokenKnown bool
	Extensions  map[string][]ExtensionInfo
	Notes       []string
	// Filtered is set when only some versions were read (RefreshOptions.Versions),
	// so a matrix release missing from Versions says nothing about the factory.
	Filtered bool
	// Seen is when the catalogs were read; Merge records it as a new release's
	// firstSeen, from which a site's soak period counts.
	Seen time.Time
}

// RefreshOptions bound a refresh.
type RefreshOptions struct {
	// Since is the oldest Talos version read from the factory ("" reads all it lists).
	Since string
	// Versions, when set, limits the catalogs read to these releases (still >= Since).
	Versions []string
	// Concurrency is how many catalogs are read at once (default 4).
	Concurrency int
}

// Catalogs reads the factory's versions, broken versions and the official
// extension catalog of every version >= opt.Since. A factory without the
// broken-version list degrades to a note.
func (c *Client) Catalogs(ctx context.Context, opt RefreshOptions) (*LiveCatalogs, error) {
	var since *semver.Version
	if opt.Since != "" {
		v, err := semver.NewVersion(strings.TrimPrefix(opt.Since, "v"))
		if err != nil {
			return nil, fmt.Errorf("since %q: %w", opt.Since, err)
		}
		since = v
	}
	all, err := c.Versions(ctx)
	if err != nil {
		return nil, err
	}
	live := &LiveCatalogs{Factory: c.BaseURL(), Extensions: map[string][]ExtensionInfo{}, Filtered: len(opt.Versions) > 0,
		Seen: time.Now().UTC()}
	for _, v := range all {
		sv, err := semver.StrictNewVersion(strings.TrimPrefix(v, "v"))
		if err != nil || !strings.HasPrefix(v, "v") {
			live.Notes = append(live.Notes, fmt.Sprintf("skipped factory version %q: not a Talos version", v))
			continue
		}
		if since != nil && sv.LessThan(since) {
			continue
		}
		if len(opt.Versions) > 0 && !slices.Contains(opt.Versions, v) {
			continue
		}
		live.Versions = append(live.Versions, v)
	}
	sortVersions(live.Versions)
	broken, err := c.BrokenVersions(ctx, all)
	switch {
	case err == nil:
		live.Broken, live.BrokenKnown = broken, true
	case errors.Is(err, ErrUnsupported):
		live.Notes = append(live.Notes, "this factory does not publish broken versions (?broken=true); broken flags were left as they were")
	default:
		return nil, err
	}

	n := opt.Concurrency
	if n <= 0 {
		n = 4
	}
	lists := make([][]ExtensionInfo, len(live.Versions))
	errs := make([]error, len(live.Versions))
	sem := make(chan struct{}, n)
	var wg sync.WaitGroup
	for i, v := range live.Versions {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			lists[i], errs[i] = c.Extensions(ctx, v)
		}()
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	for i, v := range live.Versions {
		live.Extensions[v] = lists[i]
	}
	return live, nil
}

func sortVersions(vs []string) {
	slices.SortFunc(vs, func(a, b string) int {
		va, ea := semver.NewVersion(strings.TrimPrefix(a, "v"))
		vb, eb := semver.NewVersion(strings.TrimPrefix(b, "v"))
		if ea != nil || eb != nil {
			return strings.Compare(a, b)
		}
		return va.Compare(vb)
	})
}

var (
	sha256RE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)
	tierRE   = regexp.MustCompile(`^\[(core|extra|contrib)\]`)
)

// Merge applies live catalogs to a copy of base and reports every difference. It
// is pure. What the factory knows replaces the matrix's extension lists (tags and
// digests) of the releases it lists; what it does not know is kept: release dates,
// Kubernetes defaults, core images, notes, extension tiers, and broken flags the
// site set. A release new to the matrix is added with firstSeen = live.Seen (a site's
// soak period counts from it) and its Kubernetes default and core images copied from
// the previous patch of its minor, with a note saying so (the factory publishes
// neither). A listed release is confirmed by a primary source, so it is eligible for
// range queries unless broken or a prerelease; an unverified one the factory lists
// loses the flag. Digests are never guessed: a known digest the factory omits is
// kept; one it lacks stays "unknown".
func Merge(base *compat.Matrix, live *LiveCatalogs) (*compat.Matrix, *RefreshReport, error) {
	m, err := cloneMatrix(base)
	if err != nil {
		return nil, nil, err
	}
	rep := &RefreshReport{Factory: live.Factory, Notes: slices.Clone(live.Notes)}
	offered := map[string]bool{}
	for _, v := range live.Versions {
		offered[v] = true
	}
	var added []compat.Release
	for _, v := range live.Versions {
		exts, err := liveExtensions(v, live.Extensions[v], rep)
		if err != nil {
			return nil, nil, err
		}
		broken := live.BrokenKnown && slices.Contains(live.Broken, v)
		r, ok := m.Release(v)
		if !ok {
			nr := newRelease(m, v, exts, broken, live.Factory)
			if !live.Seen.IsZero() {
				nr.FirstSeen = live.Seen.UTC().Truncate(time.Second).Format(time.RFC3339)
			}
			added = append(added, nr)
			rep.Changes = append(rep.Changes, Change{Kind: ChangeNewRelease, Release: v, New: fmt.Sprintf("%d extensions", len(exts))})
			addMeta(m, v, live.Extensions[v])
			continue
		}
		// The catalog is now complete; whether the release itself is trusted
		// (unverified) stays the site's call: the factory says nothing about its
		// Kubernetes default or core images.
		if r.Partial {
			rep.Changes = append(rep.Changes, Change{Kind: ChangeConfirmed, Release: v})
			r.Partial = false
		}
		if r.Unverified {
			r.Unverified = false
			rep.Changes = append(rep.Changes, Change{Kind: ChangeVerified, Release: v})
		}
		if broken && !r.Broken {
			r.Broken = true
			rep.Changes = append(rep.Changes, Change{Kind: ChangeBroken, Release: v})
		}
		rep.Changes = append(rep.Changes, diffExtensions(v, r.Extensions, exts)...)
		r.Extensions = exts
		addMeta(m, v, live.Extensions[v])
	}
	// Appended only now: m.Release's index points into m.Releases.
	m.Releases = append(m.Releases, added...)
	sortReleases(m)
	if len(live.Versions) > 0 && !live.Filtered {
		oldest := live.Versions[0]
		for _, r := range m.Releases {
			if !offered[r.Version] && !versionLess(r.Version, oldest) {
				rep.Changes = append(rep.Changes, Change{Kind: ChangeNotOffered, Release: r.Version})
			}
		}
	}
	if len(rep.Changes) > 0 && !strings.Contains(m.Source, "refreshed from "+live.Factory) {
		if m.Source != "" {
			m.Source += "; "
		}
		m.Source += "extensions refreshed from " + live.Factory
	}
	out, err := cloneMatrix(m)
	if err != nil {
		return nil, nil, fmt.Errorf("refreshed matrix is invalid: %w", err)
	}
	return out, rep, nil
}

// liveExtensions turns a factory catalog into matrix entries, degrading bad entries to notes.
func liveExtensions(v string, list []ExtensionInfo, rep *RefreshReport) (map[string]compat.ExtensionTag, error) {
	in := make([]extensions.FactoryExtension, 0, len(list))
	for _, e := range list {
		d := e.Digest
		if d != "" && !sha256RE.MatchString(d) {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: %s: factory digest %q is not sha256:<hex>; recorded as unknown", v, e.Name, d))
			d = ""
		}
		in = append(in, extensions.FactoryExtension{Name: e.Name, Ref: e.Ref, Digest: d})
	}
	exts, err := extensions.FromFactory(in)
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%s: skipped malformed catalog entries: %v", v, err))
	}
	if exts == nil {
		exts = map[string]compat.ExtensionTag{}
	}
	return exts, nil
}

func diffExtensions(v string, old, cur map[string]compat.ExtensionTag) []Change {
	var out []Change
	for _, name := range slices.Sorted(maps.Keys(old)) {
		if _, ok := cur[name]; !ok {
			out = append(out, Change{Kind: ChangeRemovedExtension, Release: v, Extension: name, Old: old[name].Tag})
		}
	}
	for _, name := range slices.Sorted(maps.Keys(cur)) {
		n := cur[name]
		o, ok := old[name]
		if ok && n.Tier == "" && o.Tier != "" {
			n.Tier = o.Tier // the release's own tier (the factory list carries none)
			cur[name] = n
		}
		switch {
		case !ok:
			out = append(out, Change{Kind: ChangeAddedExtension, Release: v, Extension: name, New: n.Tag})
			continue
		case o.Tag != n.Tag:
			out = append(out, Change{Kind: ChangedTag, Release: v, Extension: name, Old: o.Tag, New: n.Tag})
		}
		switch {
		case n.Digest == compat.DigestUnknown && o.Digest != compat.DigestUnknown && o.Tag == n.Tag:
			n.Digest = o.Digest // keep what a primary source once gave
			cur[name] = n
		case o.Digest == compat.DigestUnknown && n.Digest != compat.DigestUnknown:
			out = append(out, Change{Kind: ChangePinnedDigest, Release: v, Extension: name, New: n.Digest})
		case o.Digest != n.Digest && n.Digest != compat.DigestUnknown:
			out = append(out, Change{Kind: ChangeChangedDigest, Release: v, Extension: name, Old: o.Digest, New: n.Digest})
		}
	}
	return out
}

// newRelease builds a release the matrix lacks from the factory's catalog.
func newRelease(m *compat.Matrix, v string, exts map[string]compat.ExtensionTag, broken bool, factoryURL string) compat.Release {
	sv, _ := semver.NewVersion(strings.TrimPrefix(v, "v"))
	r := compat.Release{Version: v, Prerelease: sv != nil && sv.Prerelease() != "", Broken: broken, Extensions: exts}
	var prev *compat.Release
	for i := range m.Releases {
		p := &m.Releases[i]
		ps := p.Semver()
		if ps == nil || sv == nil || ps.Major() != sv.Major() || ps.Minor() != sv.Minor() || !ps.LessThan(sv) || p.Kubernetes == "" {
			continue
		}
		if prev == nil || prev.Semver().LessThan(ps) {
			prev = p
		}
	}
	if prev != nil {
		r.Kubernetes, r.Images = prev.Kubernetes, prev.Images
		r.Note = fmt.Sprintf("added by matrix refresh from %s; kubernetes and core images copied from %s (the factory publishes neither): confirm before use", factoryURL, prev.Version)
	} else {
		r.Note = fmt.Sprintf("added by matrix refresh from %s; kubernetes and core images unknown (the factory publishes neither)", factoryURL)
	}
	return r
}

// addMeta records metadata for extensions the matrix has not seen before.
func addMeta(m *compat.Matrix, v string, list []ExtensionInfo) {
	if m.Extensions == nil {
		m.Extensions = map[string]compat.ExtensionMeta{}
	}
	for _, e := range list {
		name := extensions.Short(e.Name)
		if _, ok := m.Extensions[name]; ok {
			continue
		}
		meta := compat.ExtensionMeta{Since: v}
		if t := tierRE.FindStringSubmatch(strings.TrimSpace(e.Description)); t != nil {
			meta.Tier = t[1]
		}
		m.Extensions[name] = meta
	}
}

func sortReleases(m *compat.Matrix) {
	slices.SortStableFunc(m.Releases, func(a, b compat.Release) int {
		if versionLess(a.Version, b.Version) {
			return -1
		}
		if versionLess(b.Version, a.Version) {
			return 1
		}
		return 0
	})
}

func versionLess(a, b string) bool {
	va, ea := semver.NewVersion(strings.TrimPrefix(a, "v"))
	vb, eb := semver.NewVersion(strings.TrimPrefix(b, "v"))
	if ea != nil || eb != nil {
		return a < b
	}
	return va.LessThan(vb)
}

// cloneMatrix deep-copies (and re-validates) a matrix through its canonical encoding.
func cloneMatrix(m *compat.Matrix) (*compat.Matrix, error) {
	data, err := compat.Marshal(m)
	if err != nil {
		return nil, err
	}
	return compat.Parse("matrix", data)
}

// Refresh reads the live catalogs and merges them into base (see Merge).
func (c *Client) Refresh(ctx context.Context, base *compat.Matrix, opt RefreshOptions) (*compat.Matrix, *RefreshReport, error) {
	live, err := c.Catalogs(ctx, opt)
	if err != nil {
		return nil, nil, err
	}
	return Merge(base, live)
}
