package upgrade

import (
	"fmt"
	"slices"
	"strings"
)

// SchematicMatcher finds the site profile a running schematic ID belongs to, at the
// Talos release the node runs: a profile's schematic depends on the release
// (extension versions are in it), so the match is per release. It resolves every
// profile once per release and caches the result.
type SchematicMatcher struct {
	resolve  Resolver
	profiles []string
	byTalos  map[string]map[string][]string // talos -> schematic -> profiles
	failed   map[string]string              // talos -> why resolution failed
}

// NewSchematicMatcher matches against profiles (the site's profile names).
func NewSchematicMatcher(resolve Resolver, profiles []string) *SchematicMatcher {
	return &SchematicMatcher{resolve: resolve, profiles: slices.Clone(profiles),
		byTalos: map[string]map[string][]string{}, failed: map[string]string{}}
}

// Match returns the profile whose schematic at talos is schematic, or "" and why not.
// Two profiles with one schematic (they differ only outside it) are ambiguous: no match.
func (m *SchematicMatcher) Match(talos, schematic string) (profile, why string) {
	ids, ok := m.byTalos[talos]
	if !ok {
		ids = m.index(talos)
		m.byTalos[talos] = ids
	}
	got := ids[schematic]
	switch {
	case len(got) == 1:
		return got[0], ""
	case len(got) > 1:
		return "", fmt.Sprintf("schematic %s is profile %s alike at %s", short(schematic), strings.Join(got, " and "), talos)
	case m.failed[talos] != "":
		return "", fmt.Sprintf("schematic %s: the site's profiles do not resolve at %s (%s)", short(schematic), talos, m.failed[talos])
	}
	return "", fmt.Sprintf("schematic %s matches no site profile at %s", short(schematic), talos)
}

// index resolves every profile at talos, one at a time so one profile that has no
// build there does not hide the others.
func (m *SchematicMatcher) index(talos string) map[string][]string {
	ids := map[string][]string{}
	var fails []string
	for _, name := range m.profiles {
		lock, err := m.resolve(talos, "", []string{name})
		if err != nil {
			fails = append(fails, name+": "+firstLine(err))
			continue
		}
		if prof, ok := lock.Profile(name); ok {
			ids[prof.Schematic.ID] = append(ids[prof.Schematic.ID], name)
		}
	}
	if len(fails) == len(m.profiles) && len(fails) > 0 {
		m.failed[talos] = strings.Join(fails, "; ")
	}
	return ids
}

// boundedList lists errs one per line, the first max, then how many more: a refusal
// at 10,000 nodes stays a screenful.
func boundedList(errs []error, max int) error {
	if len(errs) <= max {
		return joinIndented(errs)
	}
	out := append(slices.Clone(errs[:max]), fmt.Errorf("... and %d more", len(errs)-max))
	return &indented{errs: out, all: errs}
}
