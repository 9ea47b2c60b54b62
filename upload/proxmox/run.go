package proxmox

import (
	"context"
	"errors"
	"fmt"
	"io"
	"regexp"

	"strings"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Defaults for unset proxmox settings.
const (
	DefaultStorage     = "local"
	DefaultVMIDBase    = 9000
	DefaultNamePattern = "talos-{version}-{profile}"
	DefaultDiskStorage = "local-lvm"
	DefaultBridge      = "vmbr0"
	DefaultCores       = 2
	DefaultMemoryMiB   = 2048
	DefaultDiskSizeGiB = 10
	// vmidBlock is how many VMIDs each profile owns: profile i (in lock order)
	// uses vmidBase+i*100 .. vmidBase+i*100+99, one per kept Talos version.
	vmidBlock = 100
)

// RunOptions narrows and shapes a run.
type RunOptions struct {
	// Profiles limits the run to these lock profiles (all when empty).
	Profiles []string
	DryRun   bool
	// Keep overrides proxmox.keep when >= 0.
	Keep int
}

// withDefaults fills unset settings.
func withDefaults(cfg site.ProxmoxConfig) (site.ProxmoxConfig, error) {
	if len(cfg.Nodes) == 0 {
		return cfg, fail.Usage(errors.New("proxmox.nodes is empty: name the node(s) to upload to"))
	}
	if cfg.Storage == "" {
		cfg.Storage = DefaultStorage
	}
	switch cfg.ISOMethod {
	case "":
		cfg.ISOMethod = MethodDownloadURL
	case MethodDownloadURL, MethodUpload:
	default:
		return cfg, fail.Usage(fmt.Errorf("proxmox.isoMethod %q: use download-url or upload", cfg.ISOMethod))
	}
	t := &cfg.Template
	if t.VMIDBase == 0 {
		t.VMIDBase = DefaultVMIDBase
	}
	if t.VMIDBase < 100 {
		return cfg, fail.Usage(fmt.Errorf("proxmox.template.vmidBase %d: PVE VMIDs start at 100", t.VMIDBase))
	}
	if t.NamePattern == "" {
		t.NamePattern = DefaultNamePattern
	}
	if t.DiskStorage == "" {
		t.DiskStorage = DefaultDiskStorage
	}
	if t.Bridge == "" {
		t.Bridge = DefaultBridge
	}
	if t.Cores == 0 {
		t.Cores = DefaultCores
	}
	if t.MemoryMiB == 0 {
		t.MemoryMiB = DefaultMemoryMiB
	}
	if t.DiskSizeGiB == 0 {
		t.DiskSizeGiB = DefaultDiskSizeGiB
	}
	if cfg.Keep < 0 {
		return cfg, fail.Usage(fmt.Errorf("proxmox.keep %d: must be 0 (keep all) or more", cfg.Keep))
	}
	if cfg.Site != "" {
		if err := CheckSite(cfg.Site); err != nil {
			return cfg, err
		}
	}
	return cfg, nil
}

// Validate checks a Proxmox config and the --keep override (-1: none) without
// talking to PVE, so that a command can refuse bad settings before anything runs.
func Validate(cfg site.ProxmoxConfig, keep int) error {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return err
	}
	if keep < 0 {
		keep = cfg.Keep
	}
	if cfg.Timeout < 0 || cfg.StallTimeout < 0 {
		return fail.Usage(fmt.Errorf("proxmox.timeout %s, proxmox.stallTimeout %s: use a positive duration such as 30s (or leave unset)", cfg.Timeout, cfg.StallTimeout))
	}
	return RequireSite(cfg.Site, keep)
}

// prepare fills defaults, picks the profiles and the effective keep, and refuses
// pruning without proxmox.site, all before anything is sent to PVE.
func prepare(cfg site.ProxmoxConfig, lock *site.Lock, opt RunOptions) (site.ProxmoxConfig, []selected, int, error) {
	cfg, err := withDefaults(cfg)
	if err != nil {
		return cfg, nil, 0, err
	}
	profiles, err := selectProfiles(lock, opt.Profiles)
	if err != nil {
		return cfg, nil, 0, err
	}
	keep := cfg.Keep
	if opt.Keep >= 0 {
		keep = opt.Keep
	}
	if err := RequireSite(cfg.Site, keep); err != nil {
		return cfg, nil, 0, err
	}
	return cfg, profiles, keep, nil
}

// scopeOf is what a run may prune: this site's images of the selected profiles.
func scopeOf(cfg site.ProxmoxConfig, profiles []selected) Scope {
	sc := Scope{Site: cfg.Site}
	for _, sp := range profiles {
		sc.Profiles = append(sc.Profiles, sp.p.Name)
	}
	return sc
}

type selected struct {
	index int
	p     *site.Profile
}

func selectProfiles(lock *site.Lock, names []string) ([]selected, error) {
	var out []selected
	for i := range lock.Profiles {
		p := &lock.Profiles[i]
		if len(names) == 0 || containsString(names, p.Name) {
			out = append(out, selected{i, p})
		}
	}
	for _, n := range names {
		if _, ok := lock.Profile(n); !ok {
			return nil, fail.Usage(fmt.Errorf("--profile %s: the lock has no such profile", n))
		}
	}
	return out, nil
}

func containsString(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

// targets returns the storages to place content on: every configured node, or
// only the first when the storage is shared (all nodes see one copy).
func (c *Client) targets(ctx context.Context, cfg site.ProxmoxConfig, content string) ([]Target, error) {
	var out []Target
	for i, n := range cfg.Nodes {
		info, err := c.StorageStatus(ctx, n, cfg.Storage)
		if err != nil {
			return nil, err
		}
		if !info.Has(content) {
			return nil, fail.Usage(fmt.Errorf("proxmox.storage %s on %s does not hold %s content (it holds %s): enable it in Datacenter > Storage", cfg.Storage, n, content, strings.Join(info.Content, ",")))
		}
		out = append(out, Target{Node: n, Storage: cfg.Storage})
		if i == 0 && (cfg.Shared || info.Shared) {
			c.log.Info("shared storage: uploading once", "storage", cfg.Storage, "node", n)
			break
		}
	}
	return out, nil
}

// ISOArtifact describes a profile's ISO for PVE. download-url needs the lock's
// checksum (filled by `imgpipe fetch`) so that PVE verifies what it pulls from the
// factory; without one imgpipe refuses rather than store an unverified image.
func ISOArtifact(siteName string, lock *site.Lock, p *site.Profile, method string) (Artifact, error) {
	name, err := VolumeName(siteName, lock, p, "iso")
	if err != nil {
		return Artifact{}, err
	}
	art, ok := artifact(p, "iso")
	a := Artifact{Content: "iso", Filename: name, URL: p.ISO}
	if ok {
		if art.URL != "" {
			a.URL = art.URL
		}
		a.Size = art.Size
		switch {
		case art.SHA256 != "":
			a.Checksum, a.Algorithm = checksumHex(art.SHA256), "sha256"
		case art.SHA512 != "":
			a.Checksum, a.Algorithm = checksumHex(art.SHA512), "sha512"
		}
	}
	if a.Checksum == "" {
		return Artifact{}, fail.Usage(fmt.Errorf("profile %s: %w for the ISO: run `imgpipe fetch` first, so PVE can verify the file", p.Name, ErrNoChecksum))
	}
	switch method {
	case MethodDownloadURL:
		if a.URL == "" {
			return Artifact{}, fail.Usage(fmt.Errorf("profile %s: the lock has no ISO URL: re-run `imgpipe resolve`", p.Name))
		}
	case MethodUpload:
		if art.File == "" {
			return Artifact{}, fail.Usage(fmt.Errorf("profile %s: the lock has no local ISO file: run `imgpipe fetch` first", p.Name))
		}
		file, size := art.File, art.Size
		a.Open = func() (io.ReadCloser, error) { return openSized(file, size) }
	}
	return a, nil
}

// checksumHex returns a lock checksum as PVE takes it, bare hex: `imgpipe fetch`
// records "sha256:<hex>" and "sha512:<hex>", a hand-written lock may hold bare hex.
func checksumHex(s string) string {
	if _, h, ok := strings.Cut(s, ":"); ok {
		return h
	}
	return s
}

// UploadISOs places each selected profile's ISO on every target storage and then,
// when keep is set, prunes this site's older ISOs of the selected profiles.
func (c *Client) UploadISOs(ctx context.Context, cfg site.ProxmoxConfig, lock *site.Lock, opt RunOptions) ([]Result, error) {
	cfg, profiles, keep, err := prepare(cfg, lock, opt)
	if err != nil {
		return nil, err
	}
	targets, err := c.targets(ctx, cfg, "iso")
	if err != nil {
		return nil, err
	}
	var out []Result
	protect := map[string]bool{}
	for _, sp := range profiles {
		a, err := ISOArtifact(cfg.Site, lock, sp.p, cfg.ISOMethod)
		if err != nil {
			return out, err
		}
		for _, t := range targets {
			r, err := c.EnsureVolume(ctx, t, a, cfg.ISOMethod, opt.DryRun)
			r.Profile = sp.p.Name
			if err != nil {
				return out, fmt.Errorf("profile %s: %w", sp.p.Name, err)
			}
			protect[r.Volume] = true
			out = append(out, r)
		}
	}
	for _, t := range targets {
		pr, err := c.PruneVolumes(ctx, t, "iso", scopeOf(cfg, profiles), keep, protect, opt.DryRun)
		out = append(out, pr...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

var dnsNameRE = regexp.MustCompile(`^(?:[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?\.)*[a-zA-Z0-9](?:[a-zA-Z0-9\-]*[a-zA-Z0-9])?$`)

// TemplateName expands proxmox.template.namePattern: {profile} {version}
// {schematic} (12 chars) {platform} {arch}.
func TemplateName(pattern string, lock *site.Lock, p *site.Profile) (string, error) {
	sch := p.Schematic.ID
	if len(sch) > 12 {
		sch = sch[:12]
	}
	name := strings.NewReplacer("{profile}", p.Name, "{version}", lock.Talos, "{schematic}", sch,
		"{platform}", p.Platform, "{arch}", p.Arch).Replace(pattern)
	if !dnsNameRE.MatchString(name) {
		return "", fail.Usage(fmt.Errorf("proxmox.template.namePattern %q gives %q, which is not a valid DNS name (PVE requires one)", pattern, name))
	}
	return name, nil
}

func hasAgent(p *site.Profile) bool {
	for _, e := range p.Extensions {
		if e.Name == "siderolabs/qemu-guest-agent" {
			return true
		}
	}
	return false
}

// BuildTemplates makes one VM template per selected profile on the first node:
// the nocloud disk image imported as scsi0 where PVE has import content (>= 8.4),
// else an empty disk booting the ISO. Then it prunes older imgpipe templates and
// import images when keep is set.
func (c *Client) BuildTemplates(ctx context.Context, cfg site.ProxmoxConfig, lock *site.Lock, opt RunOptions) ([]Result, error) {
	cfg, profiles, keep, err := prepare(cfg, lock, opt)
	if err != nil {
		return nil, err
	}
	tr, err := c.newTemplateRun(ctx, cfg, lock, opt)
	if err != nil {
		return nil, err
	}
	var out []Result
	for _, sp := range profiles {
		res, err := c.buildTemplate(ctx, tr, sp)
		out = append(out, res...)
		if err != nil {
			return out, err
		}
	}
	pr, err := c.PruneTemplates(ctx, scopeOf(cfg, profiles), keep, tr.protectVMs, tr.planned, opt.DryRun)
	out = append(out, pr...)
	if err != nil {
		return out, err
	}
	if tr.useImport {
		pv, err := c.PruneVolumes(ctx, tr.target, "import", scopeOf(cfg, profiles), keep, tr.protectVols, opt.DryRun)
		out = append(out, pv...)
		if err != nil {
			return out, err
		}
	}
	return out, nil
}

// templateRun is what BuildTemplates learns once and each profile's build uses.
type templateRun struct {
	cfg       site.ProxmoxConfig
	lock      *site.Lock
	dryRun    bool
	ver       Version
	target    Target
	useImport bool
	// vms is the cluster's VMs plus those this run made or would make.
	vms         []VMInfo
	planned     []VMInfo
	protectVols map[string]bool
	protectVMs  map[int]bool
}

func (c *Client) newTemplateRun(ctx context.Context, cfg site.ProxmoxConfig, lock *site.Lock, opt RunOptions) (*templateRun, error) {
	node := cfg.Nodes[0]
	ver, err := c.Version(ctx)
	if err != nil {
		return nil, err
	}
	st, err := c.StorageStatus(ctx, node, cfg.Storage)
	if err != nil {
		return nil, err
	}
	tr := &templateRun{cfg: cfg, lock: lock, dryRun: opt.DryRun, ver: ver, target: Target{Node: node, Storage: cfg.Storage},
		useImport: ver.AtLeast(8, 4) && st.Has("import"), protectVols: map[string]bool{}, protectVMs: map[int]bool{}}
	if !tr.useImport {
		c.log.Warn("no import content: templates boot the ISO instead", "pve", ver.Full, "storage", cfg.Storage)
	}
	if tr.vms, err = c.VMs(ctx); err != nil {
		return nil, err
	}
	return tr, nil
}

// buildTemplate places one profile's disk (or ISO) and makes its template.
func (c *Client) buildTemplate(ctx context.Context, tr *templateRun, sp selected) ([]Result, error) {
	cfg, lock, p := tr.cfg, tr.lock, sp.p
	spec := TemplateSpec{Node: tr.target.Node, DiskStorage: cfg.Template.DiskStorage, Bridge: cfg.Template.Bridge,
		Cores: cfg.Template.Cores, MemoryMiB: cfg.Template.MemoryMiB, DiskSizeGiB: cfg.Template.DiskSizeGiB,
		Agent: hasAgent(p), Tags: TemplateTags(cfg.Site, lock, p)}
	var err error
	if spec.Name, err = TemplateName(cfg.Template.NamePattern, lock, p); err != nil {
		return nil, err
	}
	vr, err := c.placeBootImage(ctx, tr, p)
	if err != nil {
		return nil, err
	}
	tr.protectVols[vr.Volume] = true
	if tr.useImport {
		spec.ImportFrom = vr.Volume
	} else {
		spec.ISO = vr.Volume
	}
	spec.Description = fmt.Sprintf("Talos %s, site %s, profile %s, schematic %s, %s, from %s. Made by imgpipe.",
		lock.Talos, siteOrDefault(cfg.Site), p.Name, p.Schematic.ID, VariantOf(p), vr.Volume)
	first := cfg.Template.VMIDBase + sp.index*vmidBlock
	if spec.VMID = chooseVMID(tr.vms, first, spec.Tags); spec.VMID == 0 {
		return []Result{vr}, fail.Usage(fmt.Errorf("profile %s: no free VMID in %d..%d: lower proxmox.keep or move proxmox.template.vmidBase", p.Name,
			first, first+vmidBlock-1))
	}
	res, err := c.EnsureTemplate(ctx, spec, tr.vms, tr.dryRun)
	res.Profile = p.Name
	if !tr.useImport {
		res.Warning = "PVE " + tr.ver.Full + " or storage " + cfg.Storage + " has no import content: the template boots the ISO"
	}
	if err != nil {
		return []Result{vr}, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	if res.Action == ActionCreated || res.Action == ActionWouldCreate {
		vi := VMInfo{VMID: spec.VMID, Name: spec.Name, Node: tr.target.Node, Template: true, Tags: strings.Join(spec.Tags, ";")}
		tr.vms = append(tr.vms, vi)
		if res.Action == ActionWouldCreate {
			tr.planned = append(tr.planned, vi)
		}
	}
	tr.protectVMs[res.VMID] = true
	return []Result{vr, res}, nil
}

// placeBootImage ensures the import volume (or, without import content, the ISO)
// a profile's template boots from.
func (c *Client) placeBootImage(ctx context.Context, tr *templateRun, p *site.Profile) (Result, error) {
	var a Artifact
	method := tr.cfg.ISOMethod
	var err error
	if tr.useImport {
		a, method, err = ImportArtifact(ctx, tr.cfg.Site, tr.lock, p, tr.cfg.ISOMethod)
	} else {
		a, err = ISOArtifact(tr.cfg.Site, tr.lock, p, tr.cfg.ISOMethod)
	}
	if err != nil {
		return Result{}, err
	}
	vr, err := c.EnsureVolume(ctx, tr.target, a, method, tr.dryRun)
	vr.Profile = p.Name
	if err != nil {
		return vr, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	return vr, nil
}

// chooseVMID returns the VMID of an existing VM with these tags (a finished
// template to skip, or a half-made one to replace), else the first free VMID of
// the profile's block, else 0.
func chooseVMID(vms []VMInfo, start int, tags []string) int {
	used := map[int]bool{}
	for _, v := range vms {
		if v.HasTags(tags...) {
			return v.VMID
		}
		used[v.VMID] = true
	}
	for id := start; id < start+vmidBlock; id++ {
		if !used[id] {
			return id
		}
	}
	return 0
}

func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

func siteOrDefault(s string) string {
	if s == "" {
		return DefaultSite
	}
	return s
}
