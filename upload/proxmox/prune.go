package proxmox

import (
	"context"
	"math"
	"slices"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// Scope says whose images a prune may remove: those imgpipe made for Site and
// one of Profiles. Anything else on the cluster (other sites, other profiles,
// legacy names, files and VMs imgpipe did not make) is never touched.
type Scope struct {
	Site     string
	Profiles []string
}

func (s Scope) owns(siteName, profile string) bool {
	return s.Site != "" && siteName == s.Site && slices.Contains(s.Profiles, profile)
}

// PruneVolumes keeps the newest keep volumes of content type content of each
// in-scope profile on t (newest by Talos version, then by creation time) and
// deletes the rest. A profile's volumes form one group whatever their schematic,
// variant or format, so images the profile no longer uses age out like old
// versions do. The
// protected volids (what this run placed, or in a dry run would place) count
// toward keep even when not on storage yet, and are never removed.
func (c *Client) PruneVolumes(ctx context.Context, t Target, content string, scope Scope, keep int, protect map[string]bool, dryRun bool) ([]Result, error) {
	if keep <= 0 {
		return nil, nil
	}
	vols, err := c.Content(ctx, t.Node, t.Storage, content)
	if err != nil {
		return nil, err
	}
	listed := map[string]bool{}
	for _, v := range vols {
		listed[v.VolID] = true
	}
	for _, id := range sortedGroupKeys(protect) {
		if !listed[id] && strings.HasPrefix(id, t.Storage+":"+content+"/") {
			vols = append(vols, VolumeInfo{VolID: id, Content: content, CTime: math.MaxInt64})
		}
	}
	type entry struct {
		v    VolumeInfo
		name ImageName
		ver  *semver.Version
	}
	groups := map[string][]entry{}
	legacy := 0
	for _, v := range vols {
		n, ok := ParseImageName(v.Name())
		if !ok {
			if IsLegacyName(v.Name()) {
				legacy++
			}
			continue
		}
		ver, err := semver.NewVersion(n.Talos)
		if err != nil || !scope.owns(n.Site, n.Profile) {
			continue
		}
		// One group per profile (the content type is fixed per call): images of an
		// older schematic, variant or disk format age out like older versions.
		groups[n.Profile] = append(groups[n.Profile], entry{v, n, ver})
	}
	if legacy > 0 {
		c.log.Info("volumes with imgpipe's old names (no site) are never pruned; remove them by hand when unused",
			"count", legacy, "node", t.Node, "storage", t.Storage)
	}
	var out []Result
	older := beyondKeep(groups, keep,
		func(a, b entry) bool { return newer(a.ver, b.ver, a.v.CTime > b.v.CTime) },
		func(e entry) bool { return protect[e.v.VolID] })
	for _, o := range older {
		e := o.item
		r := Result{Kind: content, Profile: e.name.Profile, Node: t.Node, Storage: t.Storage, Volume: e.v.VolID, Bytes: e.v.Size, Action: ActionWouldRemove}
		if !dryRun {
			if err := c.DeleteVolume(ctx, t.Node, t.Storage, e.v.VolID); err != nil {
				return out, err
			}
			r.Action = ActionRemoved
		}
		out = append(out, r)
	}
	return out, nil
}

// PruneTemplates keeps the newest keep templates of each in-scope profile among
// those imgpipe made (see TemplateOwner; converted to a template) and destroys
// the rest. Other VMs are never touched. planned are templates a dry run would
// create; they count toward keep.
func (c *Client) PruneTemplates(ctx context.Context, scope Scope, keep int, protect map[int]bool, planned []VMInfo, dryRun bool) ([]Result, error) {
	if keep <= 0 {
		return nil, nil
	}
	vms, err := c.VMs(ctx)
	if err != nil {
		return nil, err
	}
	vms = append(vms, planned...)
	type entry struct {
		v   VMInfo
		ver *semver.Version
	}
	groups := map[string][]entry{}
	for _, v := range vms {
		siteName, profile, talos, ok := TemplateOwner(v)
		if !ok || !bool(v.Template) || !scope.owns(siteName, profile) {
			continue
		}
		ver, err := semver.NewVersion(talos)
		if err != nil {
			continue
		}
		groups[profile] = append(groups[profile], entry{v, ver})
	}
	var out []Result
	older := beyondKeep(groups, keep,
		func(a, b entry) bool { return newer(a.ver, b.ver, a.v.VMID > b.v.VMID) },
		func(e entry) bool { return protect[e.v.VMID] })
	for _, o := range older {
		e, key := o.item, o.group
		r := Result{Kind: "template", Profile: key, Node: e.v.Node, VMID: e.v.VMID, Name: e.v.Name, Action: ActionWouldRemove}
		if !dryRun {
			if err := c.DeleteVM(ctx, e.v.Node, e.v.VMID); err != nil {
				return out, err
			}
			r.Action = ActionRemoved
		}
		out = append(out, r)
	}
	return out, nil
}

func sortedGroupKeys[V any](m map[string]V) []string {
	ks := make([]string, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// grouped is an item with the group it was kept or dropped in.
type grouped[T any] struct {
	group string
	item  T
}

// beyondKeep is the retention rule of --keep: within each group (in key order), items
// sorted newest first by isNewer; the first keep stay, and so does any protected item;
// the rest are returned, in that order, for removal.
func beyondKeep[T any](groups map[string][]T, keep int, isNewer func(a, b T) bool, protected func(T) bool) []grouped[T] {
	var out []grouped[T]
	for _, key := range sortedGroupKeys(groups) {
		es := groups[key]
		sort.SliceStable(es, func(i, j int) bool { return isNewer(es[i], es[j]) })
		for i, e := range es {
			if i >= keep && !protected(e) {
				out = append(out, grouped[T]{key, e})
			}
		}
	}
	return out
}

// newer orders Talos versions newest first, with tie deciding between equal versions.
func newer(a, b *semver.Version, tie bool) bool {
	if c := a.Compare(b); c != 0 {
		return c > 0
	}
	return tie
}
