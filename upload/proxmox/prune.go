package proxmox

import (
	"context"
	"math"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"
)

// PruneVolumes keeps the newest keep Talos versions of each imgpipe-named file
// family (same schematic, platform, arch and extension) on t and deletes the
// rest. Files whose names do not match imgpipe's content-addressed pattern are
// never touched, nor are the protected volids (what this run placed, or in a dry
// run would place: those count toward keep even when not on storage yet).
func (c *Client) PruneVolumes(ctx context.Context, t Target, content string, keep int, protect map[string]bool, dryRun bool) ([]Result, error) {
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
		v   VolumeInfo
		ver *semver.Version
	}
	groups := map[string][]entry{}
	for _, v := range vols {
		m := talosFileRE.FindStringSubmatch(v.Name())
		if m == nil {
			continue
		}
		ver, err := semver.NewVersion(m[2])
		if err != nil {
			continue
		}
		key := strings.Join([]string{m[1], m[3], m[4], m[5]}, "|")
		groups[key] = append(groups[key], entry{v, ver})
	}
	var out []Result
	older := beyondKeep(groups, keep,
		func(a, b entry) bool { return newer(a.ver, b.ver, a.v.CTime > b.v.CTime) },
		func(e entry) bool { return protect[e.v.VolID] })
	for _, o := range older {
		e := o.item
		r := Result{Kind: content, Node: t.Node, Storage: t.Storage, Volume: e.v.VolID, Bytes: e.v.Size, Action: ActionWouldRemove}
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

// PruneTemplates keeps the newest keep templates per profile among those imgpipe
// made (tagged "imgpipe", a profile-* and a talos-* tag, and converted to a
// template) and destroys the rest. Other VMs are never touched. planned are
// templates a dry run would create; they count toward keep.
func (c *Client) PruneTemplates(ctx context.Context, keep int, protect map[int]bool, planned []VMInfo, dryRun bool) ([]Result, error) {
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
		if !bool(v.Template) || !v.HasTags(TagImgpipe) {
			continue
		}
		var profile string
		var ver *semver.Version
		for _, t := range v.TagList() {
			if p, ok := strings.CutPrefix(t, "profile-"); ok {
				profile = p
			}
			if s, ok := strings.CutPrefix(t, "talos-"); ok {
				ver, _ = semver.NewVersion(s)
			}
		}
		if profile == "" || ver == nil {
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
