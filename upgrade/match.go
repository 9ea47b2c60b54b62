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
	roles    map[string]string              // profile -> controlplane | worker ("" = either)
	byTalos  map[string]map[string][]string // talos -> schematic -> profiles
	failed   map[string]string              // talos -> why resolution failed
}

// NewSchematicMatcher matches against profiles (the site's profile names); roles
// (profile -> controlplane or worker) breaks ties between profiles that share a
// schematic, such as a control-plane and a worker profile with the same extensions.
func NewSchematicMatcher(resolve Resolver, profiles []string, roles map[string]string) *SchematicMatcher {
	return &SchematicMatcher{resolve: resolve, profiles: slices.Clone(profiles), roles: roles,
		byTalos: map[string]map[string][]string{}, failed: map[string]string{}}
}

// Match returns the profile whose schematic at talos is schematic, or "" and why not.
// Profiles sharing the schematic are told apart by the node's role; if that leaves
// more than one, the match is ambiguous: no match.
func (m *SchematicMatcher) Match(talos, schematic, role string) (profile, why string) {
	ids, ok := m.byTalos[talos]
	if !ok {
		ids = m.index(talos)
		m.byTalos[talos] = ids
	}
	got := ids[schematic]
	if len(got) > 1 {
		var same []string
		for _, p := range got {
			if r := m.roles[p]; r == "" || r == role {
				same = append(same, p)
			}
		}
		if len(same) > 0 {
			got = same
		}
	}
	switch {
	case len(got) == 1:
		return got[0], ""
	case len(got) > 1:
		return "", fmt.Sprintf("schematic %s is profile %s alike at %s, for a %s node", short(schematic), strings.Join(got, " and "), talos, role)
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
