package site

import "slices"

// Drift is what changes between two resolved locks, profile by profile.
type Drift struct {
	From     string         `json:"from"`
	To       string         `json:"to"`
	Profiles []ProfileDrift `json:"profiles"`
}

// ProfileDrift is one profile's change. Removed extensions are the dangerous kind: an
// upgrade with that installer strips them from the node.
type ProfileDrift struct {
	Name          string            `json:"name"`
	Status        string            `json:"status"` // changed | unchanged | added | removed
	SchematicFrom string            `json:"schematic_from,omitempty"`
	SchematicTo   string            `json:"schematic_to,omitempty"`
	Changes       []ExtensionChange `json:"changes"`
}

// ExtensionChange is one extension's change.
type ExtensionChange struct {
	Name        string `json:"name"`
	Change      string `json:"change"` // added | removed | version | digest
	FromVersion string `json:"from_version,omitempty"`
	ToVersion   string `json:"to_version,omitempty"`
	FromDigest  string `json:"from_digest,omitempty"`
	ToDigest    string `json:"to_digest,omitempty"`
}

// Diff compares two locks profile by profile.
func Diff(a, b *Lock) *Drift {
	d := &Drift{From: a.Talos, To: b.Talos, Profiles: []ProfileDrift{}}
	var names []string
	for _, p := range a.Profiles {
		names = append(names, p.Name)
	}
	for _, p := range b.Profiles {
		if !slices.Contains(names, p.Name) {
			names = append(names, p.Name)
		}
	}
	for _, n := range names {
		pa, okA := a.Profile(n)
		pb, okB := b.Profile(n)
		pd := ProfileDrift{Name: n, Changes: []ExtensionChange{}}
		switch {
		case !okA:
			pd.Status, pd.SchematicTo = "added", pb.Schematic.ID
		case !okB:
			pd.Status, pd.SchematicFrom = "removed", pa.Schematic.ID
		default:
			pd.SchematicFrom, pd.SchematicTo = pa.Schematic.ID, pb.Schematic.ID
			pd.Changes = diffExtensions(pa.Extensions, pb.Extensions)
			pd.Status = "unchanged"
			if len(pd.Changes) > 0 || pd.SchematicFrom != pd.SchematicTo {
				pd.Status = "changed"
			}
		}
		d.Profiles = append(d.Profiles, pd)
	}
	return d
}

func diffExtensions(a, b []Extension) []ExtensionChange {
	out := []ExtensionChange{}
	find := func(list []Extension, name string) (Extension, bool) {
		i := slices.IndexFunc(list, func(e Extension) bool { return e.Name == name })
		if i < 0 {
			return Extension{}, false
		}
		return list[i], true
	}
	for _, ea := range a {
		eb, ok := find(b, ea.Name)
		switch {
		case !ok:
			out = append(out, ExtensionChange{Name: ea.Name, Change: "removed", FromVersion: ea.Version, FromDigest: ea.Digest})
		case ea.Version != eb.Version:
			out = append(out, ExtensionChange{Name: ea.Name, Change: "version", FromVersion: ea.Version, ToVersion: eb.Version, FromDigest: ea.Digest, ToDigest: eb.Digest})
		case ea.Digest != eb.Digest:
			out = append(out, ExtensionChange{Name: ea.Name, Change: "digest", FromVersion: ea.Version, ToVersion: eb.Version, FromDigest: ea.Digest, ToDigest: eb.Digest})
		}
	}
	for _, eb := range b {
		if _, ok := find(a, eb.Name); !ok {
			out = append(out, ExtensionChange{Name: eb.Name, Change: "added", ToVersion: eb.Version, ToDigest: eb.Digest})
		}
	}
	return out
}
