package pipeline

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/registry"
)

// Deps are the configured clients and settings the stages run with. The CLI builds
// them (secrets come from the environment there); tests build them against fakes.
// A nil client makes its stage report "not configured" instead of failing, so a site
// without registries or Proxmox still builds what it has.
type Deps struct {
	Matrix     *compat.Matrix
	MatrixName string
	Resolve    site.ResolveOptions

	Factory *factory.Client
	// Rebase maps lock URLs onto another factory (--factory); nil keeps them.
	Rebase         func(string) string
	Cache          factory.Cache
	FetchKinds     []string // nil: iso and disk
	Prewarm        bool     // request each installer so the factory builds it now
	PrewarmTimeout time.Duration

	Verify        verify.SiteOptions
	VerifyOptions []verify.Option

	Mirror     *registry.Mirrorer
	MirrorMode registry.Mode

	Proxmox       *proxmox.Client
	ProxmoxConfig site.ProxmoxConfig
	Upload        proxmox.RunOptions
}

// Skipped is the summary of a stage the site has not configured.
type Skipped struct {
	Skipped string `json:"skipped"`
}

// Stages returns the implementations of every stage over d.
func Stages(d Deps) []Stage {
	return []Stage{
		{Name: StageResolve, Run: d.resolve},
		{Name: StageSchematic, Run: d.schematic},
		{Name: StageVerify, Run: d.verify},
		{Name: StageFetch, Run: d.fetch},
		{Name: StageMirror, Run: d.mirror},
		{Name: StageUpload, Run: d.upload},
	}
}

// ResolveSummary is what the resolve stage reports.
type ResolveSummary struct {
	Talos      string            `json:"talos"`
	Kubernetes string            `json:"kubernetes"`
	Schematics map[string]string `json:"schematics"`
	// Unchanged is true when the lock already held this resolution (its recorded
	// artifacts are then kept).
	Unchanged bool `json:"unchanged"`
}

func (d Deps) resolve(_ context.Context, st *State) (any, error) {
	if d.Matrix == nil {
		return nil, errors.New("no compatibility matrix")
	}
	lock, err := site.Resolve(d.Matrix, st.Config, d.Resolve)
	if err != nil {
		return nil, err
	}
	sum := ResolveSummary{Talos: lock.Talos, Kubernetes: lock.Kubernetes.Version, Schematics: map[string]string{}}
	for _, p := range lock.Profiles {
		sum.Schematics[p.Name] = p.Schematic.ID
	}
	oldDigest, _ := lockDigest(st.Lock)
	newDigest, _ := lockDigest(lock)
	if st.Lock != nil && oldDigest == newDigest {
		sum.Unchanged = true
		st.Emit("lock unchanged: Talos " + lock.Talos)
		return sum, nil
	}
	st.Lock = lock
	st.Emit(fmt.Sprintf("resolved Talos %s, Kubernetes %s, %d profiles", lock.Talos, lock.Kubernetes.Version, len(lock.Profiles)))
	return sum, nil
}

// SchematicSummary is what the schematic stage reports.
type SchematicSummary struct {
	Schematics []factory.SchematicResult `json:"schematics"`
	Prewarmed  []factory.PrewarmResult   `json:"prewarmed,omitempty"`
}

func (d Deps) schematic(ctx context.Context, st *State) (any, error) {
	if d.Factory == nil {
		return Skipped{"no Image Factory client"}, nil
	}
	opt := factory.LockOptions{Profiles: d.Resolve.Profiles, Rebase: d.Rebase, DryRun: st.DryRun}
	res, err := d.Factory.EnsureLock(ctx, st.Lock, opt)
	sum := SchematicSummary{Schematics: res}
	if err != nil {
		return sum, err
	}
	for _, r := range res {
		st.Emit(fmt.Sprintf("%s: schematic %s %s", r.Profile, short(r.ID), r.Action))
	}
	if d.Prewarm {
		timeout := d.PrewarmTimeout
		if timeout == 0 {
			timeout = factory.DefaultBuildTimeout
		}
		pw, err := d.Factory.PrewarmLock(ctx, st.Lock, timeout, opt)
		sum.Prewarmed = pw
		if err != nil {
			return sum, err
		}
		for _, p := range pw {
			st.Emit(fmt.Sprintf("%s: installer %s ready", p.Profile, p.Ref))
		}
	}
	return sum, nil
}

func (d Deps) verify(ctx context.Context, st *State) (any, error) {
	so := d.Verify
	so.DryRun = st.DryRun
	rep, err := verify.CheckLock(ctx, st.Lock, st.Config, so, d.VerifyOptions...)
	if rep != nil {
		st.Emit(fmt.Sprintf("%d images checked", len(rep.Results)))
	}
	return rep, err
}

func (d Deps) fetch(ctx context.Context, st *State) (any, error) {
	if d.Factory == nil {
		return Skipped{"no Image Factory client"}, nil
	}
	steps := map[string]int64{}
	res, err := d.Factory.FetchLock(ctx, st.Lock, d.Cache, factory.LockOptions{
		Profiles: d.Resolve.Profiles, Kinds: d.FetchKinds, Rebase: d.Rebase, DryRun: st.DryRun,
		Progress: func(profile, kind string, p factory.Progress) {
			// A line every quarter: enough to see it move in a CI log.
			if p.Total <= 0 {
				return
			}
			key := profile + " " + kind
			if q := p.Done * 4 / p.Total; q > steps[key] || p.Done == 0 && steps[key] == 0 {
				steps[key] = q + 1
				st.Emit(fmt.Sprintf("%s %s %s: %d%%", p.Phase, profile, kind, p.Done*100/p.Total))
			}
		},
	})
	for _, r := range res {
		st.Emit(fmt.Sprintf("%s %s: %s (%d bytes transferred)", r.Profile, r.Kind, r.Action, r.Transferred))
	}
	return res, err
}

func (d Deps) mirror(ctx context.Context, st *State) (any, error) {
	if d.Mirror == nil {
		return Skipped{"no registry mirrorer"}, nil
	}
	placements, err := registry.PlanLock(st.Lock, st.Config, d.MirrorMode)
	if errors.Is(err, registry.ErrNothingToMirror) {
		st.Emit("no registries configured: nothing to mirror")
		return Skipped{"no registries configured (registries.host or registries.mirrors)"}, nil
	}
	if err != nil {
		return nil, err
	}
	for _, p := range placements {
		if p.Unmirrored {
			st.Emit(fmt.Sprintf("warning: %s: no mirror configured for its upstream; reported, not mirrored", p.Ref))
		}
	}
	rep, err := d.Mirror.Run(ctx, placements)
	return rep, err
}

// UploadSummary is what the upload stage reports.
type UploadSummary struct {
	ISOs      []proxmox.Result `json:"isos"`
	Templates []proxmox.Result `json:"templates"`
	// Unfetched lists, in a dry run, the profiles whose ISO and disk image are not
	// fetched yet, so their upload cannot be planned in detail.
	Unfetched []string `json:"unfetched,omitempty"`
}

func (d Deps) upload(ctx context.Context, st *State) (any, error) {
	if d.Proxmox == nil {
		st.Emit("no Proxmox target configured: nothing to upload")
		return Skipped{"no Proxmox target (proxmox.url)"}, nil
	}
	// The lock names artifacts by digest only; this runner's cache has the files.
	d.Cache.Locate(st.Lock)
	opt := d.Upload
	opt.DryRun = st.DryRun
	if opt.Profiles == nil {
		opt.Profiles = d.Resolve.Profiles
	}
	var sum UploadSummary
	var err error
	if st.DryRun {
		// A dry run of a whole build plans fetch without downloading, so the lock has
		// no checksums yet: the upload of those profiles is named, not planned in
		// detail (the real upload refuses artifacts without a checksum).
		var fetched []string
		for _, p := range st.Lock.Profiles {
			if len(opt.Profiles) > 0 && !slices.Contains(opt.Profiles, p.Name) {
				continue
			}
			if hasArtifacts(p) {
				fetched = append(fetched, p.Name)
			} else {
				sum.Unfetched = append(sum.Unfetched, p.Name)
				st.Emit(fmt.Sprintf("%s: ISO and disk image not fetched yet: would upload them after fetch", p.Name))
			}
		}
		if len(fetched) == 0 {
			return sum, nil
		}
		opt.Profiles = fetched
	}
	sum.ISOs, err = d.Proxmox.UploadISOs(ctx, d.ProxmoxConfig, st.Lock, opt)
	for _, r := range sum.ISOs {
		st.Emit(fmt.Sprintf("iso %s on %s/%s: %s", r.Volume, r.Node, r.Storage, r.Action))
	}
	if err != nil {
		return sum, err
	}
	sum.Templates, err = d.Proxmox.BuildTemplates(ctx, d.ProxmoxConfig, st.Lock, opt)
	for _, r := range sum.Templates {
		st.Emit(fmt.Sprintf("%s %s (vmid %d) on %s: %s", r.Kind, r.Name, r.VMID, r.Node, r.Action))
	}
	return sum, err
}

// hasArtifacts reports whether fetch recorded the profile's ISO and disk image.
func hasArtifacts(p site.Profile) bool {
	var iso, disk bool
	for _, a := range p.Artifacts {
		iso = iso || a.Kind == "iso" && a.SHA256 != ""
		disk = disk || a.Kind == "disk" && a.SHA256 != ""
	}
	return iso && disk
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
