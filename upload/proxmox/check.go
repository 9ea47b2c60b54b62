package proxmox

import (
	"context"
	"fmt"
	"os"
	"sort"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/site"
)

// Outcomes of a Proxmox check.
const (
	CheckOK        = "ok"
	CheckMissing   = "missing"
	CheckDifferent = "different"
	CheckStray     = "stray"
)

// CheckItem is one ISO, import disk or template: expected by the lock and what PVE
// has, or made by imgpipe and referenced by no lock (stray). Part of the JSON
// contract of `imgpipe check -o json` (through pipeline/check).
type CheckItem struct {
	Kind    string `json:"kind"` // iso | import | template
	Profile string `json:"profile,omitempty"`
	Node    string `json:"node"`
	Storage string `json:"storage,omitempty"`
	// Name is the volume id for files, the VM name for templates.
	Name   string `json:"name"`
	VMID   int    `json:"vmid,omitempty"`
	Status string `json:"status"`
	Want   string `json:"want,omitempty"`
	Got    string `json:"got,omitempty"`
	Detail string `json:"detail,omitempty"`
	// Fix is the command that brings the item in line.
	Fix string `json:"fix,omitempty"`
}

// CheckOptions shape a Proxmox check.
type CheckOptions struct {
	// Referenced are other locks (an older release kept for rollback): what they
	// name is not stray, though it is not checked either.
	Referenced []*site.Lock
}

// ownership is the one seam between the check and imgpipe's naming rules (names.go):
// what a profile's files and template are called for this site, and which volumes
// and templates this site's imgpipe made. Stray detection only ever looks at what
// these functions claim; a config without proxmox.site claims nothing (named is
// false), since it cannot tell its images from another unnamed config's.
type ownership struct {
	site  string
	named bool
}

func newOwnership(cfg site.ProxmoxConfig) ownership {
	if cfg.Site == "" {
		return ownership{site: DefaultSite}
	}
	return ownership{site: cfg.Site, named: true}
}

func (o ownership) isoName(lock *site.Lock, p *site.Profile) (string, error) {
	return VolumeName(o.site, lock, p, "iso")
}

func (o ownership) diskName(lock *site.Lock, p *site.Profile) (string, error) {
	ext, err := ImportExt(p)
	if err != nil {
		return "", err
	}
	return VolumeName(o.site, lock, p, ext)
}

func (o ownership) templateTags(lock *site.Lock, p *site.Profile) []string {
	return TemplateTags(o.site, lock, p)
}

// volume reports whether this site's imgpipe named a file, and its retention group
// (the profile: prune keeps the newest per profile and content type) and version.
func (o ownership) volume(v VolumeInfo) (family string, ver *semver.Version, ok bool) {
	n, ok := ParseImageName(v.Name())
	if !ok || !o.named || !n.OwnedBy(o.site, "") {
		return "", nil, false
	}
	ver, err := semver.NewVersion(n.Talos)
	if err != nil {
		return "", nil, false
	}
	return n.Profile, ver, true
}

// template reports whether this site's imgpipe made a template (tagged, converted),
// and for which profile and version. VMs that are not templates, clones of imgpipe
// templates included, are never imgpipe's.
func (o ownership) template(v VMInfo) (profile string, ver *semver.Version, ok bool) {
	siteName, profile, talos, ok := TemplateOwner(v)
	if !ok || !o.named || !bool(v.Template) || siteName != o.site {
		return "", nil, false
	}
	ver, err := semver.NewVersion(talos)
	if err != nil {
		return "", nil, false
	}
	return profile, ver, true
}

// wantFile is a file the lock expects on a node's storage.
type wantFile struct {
	kind, profile, node, storage, volid string
	size                                int64
	sizeNote                            string
}

// Check compares PVE with the lock: each profile's ISO on every node (once on shared
// storage), its import disk and its template on the first node (where upload puts
// them), names and sizes; and it lists what this site's imgpipe made (names.go:
// ParseImageName owned by proxmox.site, TemplateOwner) that neither the lock nor
// opts.Referenced names and that proxmox.keep would not keep (stray). Without
// proxmox.site nothing is called stray. It only reads.
func (c *Client) Check(ctx context.Context, cfg site.ProxmoxConfig, lock *site.Lock, opts CheckOptions) ([]CheckItem, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	own := newOwnership(cfg)
	isoTargets, err := c.checkTargets(ctx, cfg)
	if err != nil {
		return nil, err
	}
	ver, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	first := Target{Node: cfg.Nodes[0], Storage: cfg.Storage}
	st, err := c.StorageStatus(ctx, first.Node, first.Storage)
	if err != nil {
		return nil, err
	}
	useImport := ver.AtLeast(8, 4) && st.Has("import")

	wants, err := expectedFiles(ctx, own, lock, isoTargets, first, useImport)
	if err != nil {
		return nil, err
	}
	listed := map[Target][]VolumeInfo{}
	var out []CheckItem
	for _, t := range isoTargets {
		if listed[t], err = c.Content(ctx, t.Node, t.Storage, "iso"); err != nil {
			return nil, err
		}
	}
	var importVols []VolumeInfo
	if useImport {
		if importVols, err = c.Content(ctx, first.Node, first.Storage, "import"); err != nil {
			return nil, err
		}
	}
	for _, w := range wants {
		vols := listed[Target{w.node, w.storage}]
		if w.kind == "import" {
			vols = importVols
		}
		out = append(out, compareFile(w, vols))
	}
	refd := referencedNames(own, append([]*site.Lock{lock}, opts.Referenced...))
	for _, t := range isoTargets {
		out = append(out, strayFiles(own, t, "iso", listed[t], wants, refd, cfg.Keep)...)
	}
	if useImport {
		out = append(out, strayFiles(own, first, "import", importVols, wants, refd, cfg.Keep)...)
	}
	vms, err := c.VMs(ctx)
	if err != nil {
		return nil, err
	}
	out = append(out, checkTemplates(own, cfg, lock, opts.Referenced, vms)...)
	return out, nil
}

// checkTargets are the nodes that should hold each ISO: all, or the first when the
// storage is shared.
func (c *Client) checkTargets(ctx context.Context, cfg site.ProxmoxConfig) ([]Target, error) {
	var out []Target
	for i, n := range cfg.Nodes {
		info, err := c.StorageStatus(ctx, n, cfg.Storage)
		if err != nil {
			return nil, err
		}
		out = append(out, Target{Node: n, Storage: cfg.Storage})
		if i == 0 && (cfg.Shared || info.Shared) {
			break
		}
	}
	return out, nil
}

// expectedFiles lists each profile's ISO per target and its import disk.
func expectedFiles(ctx context.Context, own ownership, lock *site.Lock, isoTargets []Target, first Target, useImport bool) ([]wantFile, error) {
	var out []wantFile
	for i := range lock.Profiles {
		p := &lock.Profiles[i]
		name, err := own.isoName(lock, p)
		if err != nil {
			return nil, err
		}
		iso, ok := artifact(p, "iso")
		note := ""
		if !ok || iso.Size <= 0 {
			note = "the lock records no ISO size (run imgpipe fetch): only the name was checked"
		}
		for _, t := range isoTargets {
			out = append(out, wantFile{kind: "iso", profile: p.Name, node: t.Node, storage: t.Storage,
				volid: t.Storage + ":iso/" + name, size: iso.Size, sizeNote: note})
		}
		if !useImport {
			continue
		}
		w, err := expectedDisk(ctx, own, lock, p, first)
		if err != nil {
			return nil, err
		}
		out = append(out, w)
	}
	return out, nil
}

// expectedDisk names a profile's import volume and its size: the artifact's own for
// .raw/.qcow2, the decompressed size for .raw.zst/.raw.gz when the fetched file is
// on this machine (measured, as upload does), else unknown.
func expectedDisk(ctx context.Context, own ownership, lock *site.Lock, p *site.Profile, t Target) (wantFile, error) {
	d, _ := artifact(p, "disk")
	_, comp, err := importFormat(p, d)
	if err != nil {
		return wantFile{}, err
	}
	name, err := own.diskName(lock, p)
	if err != nil {
		return wantFile{}, err
	}
	w := wantFile{kind: "import", profile: p.Name, node: t.Node, storage: t.Storage, volid: t.Storage + ":import/" + name}
	switch {
	case d.Size > 0 && comp == "":
		w.size = d.Size
	case d.File != "" && comp != "":
		if _, err := os.Stat(d.File); err == nil {
			size, _, err := measureDecompressed(ctx, d.File, comp, d.SHA256)
			if err != nil {
				return wantFile{}, fmt.Errorf("profile %s: %w", p.Name, err)
			}
			w.size = size
		}
	}
	if w.size == 0 {
		w.sizeNote = "the raw size is unknown here (no fetched disk image on this machine): only the name was checked"
	}
	return w, nil
}

func compareFile(w wantFile, vols []VolumeInfo) CheckItem {
	it := CheckItem{Kind: w.kind, Profile: w.profile, Node: w.node, Storage: w.storage, Name: w.volid}
	var have *VolumeInfo
	for i := range vols {
		if vols[i].VolID == w.volid {
			have = &vols[i]
		}
	}
	what := "iso"
	if w.kind == "template" || w.kind == "import" {
		what = "template"
	}
	switch {
	case have == nil:
		it.Status = CheckMissing
		it.Detail = fmt.Sprintf("not on %s of %s", w.storage, w.node)
		it.Fix = fmt.Sprintf("imgpipe upload %s --profile %s", what, w.profile)
	case w.size > 0 && have.Size != w.size:
		it.Status = CheckDifferent
		it.Want, it.Got = fmt.Sprintf("%d bytes", w.size), fmt.Sprintf("%d bytes", have.Size)
		it.Detail = "size differs from the lock's artifact"
		it.Fix = fmt.Sprintf("pvesh delete /nodes/%s/storage/%s/content/%s && imgpipe upload %s --profile %s", w.node, w.storage, w.volid, what, w.profile)
	default:
		it.Status = CheckOK
		it.Got = fmt.Sprintf("%d bytes", have.Size)
		it.Detail = w.sizeNote
	}
	return it
}

// referencedNames are the file names and template identities the locks name.
func referencedNames(own ownership, locks []*site.Lock) map[string]bool {
	out := map[string]bool{}
	for _, l := range locks {
		for i := range l.Profiles {
			p := &l.Profiles[i]
			if n, err := own.isoName(l, p); err == nil {
				out[n] = true
			}
			if n, err := own.diskName(l, p); err == nil {
				out[n] = true
			}
			out["tags:"+strings.Join(own.templateTags(l, p), ";")] = true
		}
	}
	return out
}

// strayFiles lists the imgpipe-named files on t that no lock references and that
// the keep rule would not keep; files kept by proxmox.keep are reported ok.
func strayFiles(own ownership, t Target, content string, vols []VolumeInfo, wants []wantFile, refd map[string]bool, keep int) []CheckItem {
	expected := map[string]bool{}
	for _, w := range wants {
		if w.node == t.Node {
			expected[w.volid] = true
		}
	}
	type entry struct {
		v   VolumeInfo
		ver *semver.Version
	}
	groups := map[string][]entry{}
	for _, v := range vols {
		fam, ver, ok := own.volume(v)
		if !ok {
			continue
		}
		groups[fam] = append(groups[fam], entry{v, ver})
	}
	var out []CheckItem
	for _, fam := range sortedGroupKeys(groups) {
		es := groups[fam]
		sort.SliceStable(es, func(i, j int) bool { return newer(es[i].ver, es[j].ver, es[i].v.CTime > es[j].v.CTime) })
		for i, e := range es {
			if expected[e.v.VolID] {
				continue // compared above; it still takes its place in the keep count, as in prune
			}
			it := CheckItem{Kind: content, Node: t.Node, Storage: t.Storage, Name: e.v.VolID, Got: fmt.Sprintf("%d bytes", e.v.Size)}
			switch {
			case refd[e.v.Name()]:
				it.Status, it.Detail = CheckOK, "named by a referenced lock"
			case keep > 0 && i < keep:
				it.Status, it.Detail = CheckOK, fmt.Sprintf("not in the lock; kept by proxmox.keep=%d", keep)
			default:
				it.Status = CheckStray
				it.Detail = "made by imgpipe, named by no lock"
				it.Fix = fmt.Sprintf("pvesh delete /nodes/%s/storage/%s/content/%s", t.Node, t.Storage, e.v.VolID)
			}
			out = append(out, it)
		}
	}
	return out
}

// checkTemplates compares each profile's template (on the first node, with the
// lock's identity tags and name) and lists imgpipe templates no lock references.
// A template of the profile and release with another schematic is "different".
func checkTemplates(own ownership, cfg site.ProxmoxConfig, lock *site.Lock, referenced []*site.Lock, vms []VMInfo) []CheckItem {
	var out []CheckItem
	claimed := map[int]bool{}
	for i := range lock.Profiles {
		p := &lock.Profiles[i]
		it, vmid := compareTemplate(own, cfg, lock, p, vms)
		if vmid != 0 {
			claimed[vmid] = true
		}
		out = append(out, it)
	}
	refd := referencedNames(own, referenced)
	type entry struct {
		v   VMInfo
		ver *semver.Version
	}
	groups := map[string][]entry{}
	for _, v := range vms {
		profile, ver, ok := own.template(v)
		if !ok {
			continue
		}
		groups[profile] = append(groups[profile], entry{v, ver})
	}
	for _, profile := range sortedGroupKeys(groups) {
		es := groups[profile]
		sort.SliceStable(es, func(i, j int) bool { return newer(es[i].ver, es[j].ver, es[i].v.VMID > es[j].v.VMID) })
		for i, e := range es {
			if claimed[e.v.VMID] {
				continue
			}
			it := CheckItem{Kind: "template", Profile: profile, Node: e.v.Node, Name: e.v.Name, VMID: e.v.VMID, Got: e.v.Tags}
			switch {
			case refdTemplate(refd, e.v):
				it.Status, it.Detail = CheckOK, "named by a referenced lock"
			case cfg.Keep > 0 && i < cfg.Keep:
				it.Status, it.Detail = CheckOK, fmt.Sprintf("not in the lock; kept by proxmox.keep=%d", cfg.Keep)
			default:
				it.Status, it.Detail = CheckStray, "template made by imgpipe, named by no lock"
				it.Fix = fmt.Sprintf("pvesh delete /nodes/%s/qemu/%d --purge 1", e.v.Node, e.v.VMID)
			}
			out = append(out, it)
		}
	}
	return out
}

func refdTemplate(refd map[string]bool, v VMInfo) bool {
	for k := range refd {
		if tags, ok := strings.CutPrefix(k, "tags:"); ok && v.HasTags(strings.Split(tags, ";")...) {
			return true
		}
	}
	return false
}

// compareTemplate finds the profile's template and returns the item and the VMID it
// claimed (0 when none).
func compareTemplate(own ownership, cfg site.ProxmoxConfig, lock *site.Lock, p *site.Profile, vms []VMInfo) (CheckItem, int) {
	tags := own.templateTags(lock, p)
	it := CheckItem{Kind: "template", Profile: p.Name, Node: cfg.Nodes[0], Want: strings.Join(tags, ";")}
	fix := "imgpipe upload template --profile " + p.Name
	name, err := TemplateName(cfg.Template.NamePattern, lock, p)
	if err != nil {
		it.Status, it.Detail, it.Name = CheckDifferent, err.Error(), p.Name
		return it, 0
	}
	it.Name = name
	for _, v := range vms {
		if !bool(v.Template) || !v.HasTags(tags...) {
			continue
		}
		it.VMID, it.Node, it.Got = v.VMID, v.Node, v.Tags
		if v.Name != name {
			it.Status, it.Detail = CheckDifferent, fmt.Sprintf("named %q, the name pattern gives %q", v.Name, name)
			return it, v.VMID
		}
		it.Status = CheckOK
		return it, v.VMID
	}
	// Same profile and release, other schematic: a template left on an old schematic.
	for _, v := range vms {
		prof, ver, ok := own.template(v)
		if !ok || prof != shortProfileTag(p.Name) || ver.Original() != strings.TrimPrefix(Tag("talos", lock.Talos), "talos-") {
			continue
		}
		it.Status, it.VMID, it.Node, it.Got = CheckDifferent, v.VMID, v.Node, v.Tags
		it.Detail = fmt.Sprintf("template %d has another schematic than the lock's %s", v.VMID, shortID(p.Schematic.ID))
		it.Fix = fix
		return it, v.VMID
	}
	it.Status, it.Fix = CheckMissing, fix
	it.Detail = "no template with the lock's identity tags"
	return it, 0
}

// shortProfileTag is the profile name as its tag carries it.
func shortProfileTag(name string) string { return strings.TrimPrefix(Tag("profile", name), "profile-") }
