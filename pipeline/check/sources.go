package check

import (
	"context"
	"fmt"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/registry"
)

// Registry checks every placed image at its mirror.
func Registry(m *registry.Mirrorer, placements []registry.Placement, o registry.CheckOptions) Source {
	return Source{Name: CheckRegistry, Run: func(ctx context.Context) ([]Item, []string, error) {
		rep, err := m.Check(ctx, placements, o)
		if rep == nil {
			return nil, nil, err
		}
		var items []Item
		for _, ic := range rep.Images {
			items = append(items, imageItem(ic))
			if ic.Signature != nil {
				items = append(items, signatureItem(ic))
			}
		}
		return items, rep.Notes, err
	}}
}

func imageItem(ic registry.ImageCheck) Item {
	it := Item{Kind: "image", Name: ic.Ref, Where: ic.Mirror, Status: Status(ic.Status), Want: ic.Digest, Detail: ic.Detail}
	if ic.Mode != "" {
		it.Detail = string(ic.Mode) + ": " + it.Detail
	}
	switch it.Status {
	case Different:
		it.Got = ic.TagDigest
		it.Fix = "imgpipe mirror"
	case Missing:
		if len(ic.Absent) > 0 {
			it.Got = fmt.Sprintf("absent: %v", ic.Absent)
		}
		it.Fix = "imgpipe mirror"
	}
	return it
}

func signatureItem(ic registry.ImageCheck) Item {
	sc := ic.Signature
	it := Item{Kind: "signature", Name: ic.Ref, Where: ic.Mirror, Status: Status(sc.Status), Want: "signature of " + ic.Digest, Detail: sc.Detail}
	if len(sc.Tags) > 0 {
		it.Got = fmt.Sprint(sc.Tags)
	}
	if it.Status == Missing {
		it.Fix = "imgpipe mirror"
	}
	return it
}

// SignedByPolicy says which images must be signed at their mirror: those whose first
// matching policy (site policies, then the built-in Sidero and factory ones) names a
// key or an identity and does not allow them unsigned.
func SignedByPolicy(policies []verify.Policy) func(registry.Image) bool {
	return func(im registry.Image) bool {
		ref, err := name.ParseReference(im.Ref)
		if err != nil {
			return false
		}
		for i := range policies {
			if p := &policies[i]; p.Matches(ref) {
				return !p.AllowUnsigned && (len(p.Keys) > 0 || len(p.Identities) > 0)
			}
		}
		return false
	}
}

// Proxmox checks the lock's ISOs, import disks and templates, and lists strays.
func Proxmox(c *proxmox.Client, cfg site.ProxmoxConfig, lock *site.Lock, o proxmox.CheckOptions) Source {
	return Source{Name: CheckProxmox, Run: func(ctx context.Context) ([]Item, []string, error) {
		res, err := c.Check(ctx, cfg, lock, o)
		if err != nil {
			return nil, nil, err
		}
		items := make([]Item, 0, len(res))
		for _, r := range res {
			where := r.Node
			if r.VMID != 0 {
				where = fmt.Sprintf("%s/%d", r.Node, r.VMID)
			}
			items = append(items, Item{Kind: r.Kind, Name: r.Name, Where: where, Profile: r.Profile, Status: Status(r.Status),
				Want: r.Want, Got: r.Got, Detail: r.Detail, Fix: r.Fix})
		}
		notes := []string{"stray: this site's imgpipe volumes (talos_<site>_<profile>_...) and templates (tags imgpipe, site-<site>, profile-*, talos-*) that no lock names; nothing else is ever called stray"}
		if cfg.Site == "" {
			notes = []string{"stray detection is off: set proxmox.site, so this config can tell its images from another config's on the cluster"}
		}
		return items, notes, nil
	}}
}

// Factory checks that every profile's schematic resolves on the factory.
func Factory(fc *factory.Client, lock *site.Lock) Source {
	return Source{Name: CheckFactory, Run: func(ctx context.Context) ([]Item, []string, error) {
		items := make([]Item, len(lock.Profiles))
		var wg sync.WaitGroup
		for i, p := range lock.Profiles {
			wg.Add(1)
			go func() {
				defer wg.Done()
				sc := fc.CheckSchematic(ctx, p.Schematic.ID)
				it := Item{Kind: "schematic", Name: sc.ID, Where: fc.BaseURL(), Profile: p.Name, Status: Status(sc.Status),
					Got: sc.Got, Detail: sc.Detail}
				if it.Status.Drift() {
					it.Fix = "imgpipe schematic push --profile " + p.Name
				}
				items[i] = it
			}()
		}
		wg.Wait()
		return items, nil, ctx.Err()
	}}
}
