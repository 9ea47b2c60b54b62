package proxmox

import (
	"errors"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

func removedOf(res []Result) []string {
	var out []string
	for _, r := range res {
		if r.Action == ActionRemoved {
			out = append(out, r.Volume+r.Name)
		}
	}
	slices.Sort(out)
	return out
}

// Item 15: --profile worker --keep 1 prunes only this site's worker ISOs, those
// of a schematic the profile no longer uses included, and nothing else.
func TestPruneISOsScopedToSiteAndProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5", "worker", "gpu")
	const oldSchematic = "aaaaaaaaaaaa0000"
	iso := func(siteName, profile, schematic, version string) string {
		return "local:iso/" + volName(t, siteName, profile, schematic, version, "iso")
	}
	pruned := []string{
		iso(testSite, "worker", testSchematic, "v1.9.3"),
		iso(testSite, "worker", testSchematic, "v1.9.4"),
		iso(testSite, "worker", oldSchematic, "v1.9.5"), // the schematic changed
	}
	kept := []string{
		iso(testSite, "gpu", testSchematic, "v1.9.3"),           // another profile
		iso("edge", "worker", testSchematic, "v1.9.3"),          // another site
		"local:iso/talos-376567988ad3-v1.9.3-nocloud-amd64.iso", // legacy name: no owner
		"local:iso/ubuntu-24.04.iso",
	}
	for i, v := range append(slices.Clone(pruned), kept...) {
		e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: v, Content: "iso", Format: "iso", Size: 1, CTime: int64(1000 + i)})
	}
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Profiles: []string{"worker"}, Keep: 1})
	if err != nil {
		t.Fatalf("UploadISOs(--profile worker --keep 1): %v", err)
	}
	if got := removedOf(res); !slices.Equal(got, pruned) {
		t.Errorf("removed %v; want %v", got, pruned)
	}
	var left []string
	for _, v := range e.srv.Volumes() {
		left = append(left, v.VolID)
	}
	for _, v := range append(kept, "local:iso/"+isoName(t, "v1.9.5")) {
		if !slices.Contains(left, v) {
			t.Errorf("%s was removed; want it kept", v)
		}
	}
	// The other site's own run prunes its own old ISO and nothing of this site's.
	cfg := cfgFor(MethodUpload)
	cfg.Site = "edge"
	res, err = e.c.UploadISOs(t.Context(), cfg, f.lock, RunOptions{Keep: 1})
	if err != nil {
		t.Fatalf("UploadISOs(site edge, --keep 1): %v", err)
	}
	if got, want := removedOf(res), []string{iso("edge", "worker", testSchematic, "v1.9.3")}; !slices.Equal(got, want) {
		t.Errorf("site edge removed %v; want %v", got, want)
	}
}

// Item 15: templates and import volumes are pruned per site and profile too.
func TestPruneTemplatesScopedToSiteAndProfile(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5", "worker", "gpu")
	tags := func(siteName, profile, version string) string {
		return strings.Join([]string{TagImgpipe, Tag("site", siteName), Tag("profile", profile), Tag("talos", version),
			Tag("schematic", testSchematic[:12]), Tag("variant", "nocloud-amd64")}, ";")
	}
	for _, vm := range []pvetest.VM{
		{Node: "pve1", VMID: 9001, Name: "lab-worker-old", Template: true, Tags: tags(testSite, "worker", "v1.9.3")},
		{Node: "pve1", VMID: 9002, Name: "lab-worker-mid", Template: true, Tags: tags(testSite, "worker", "v1.9.4")},
		{Node: "pve1", VMID: 9101, Name: "lab-gpu-old", Template: true, Tags: tags(testSite, "gpu", "v1.9.3")},
		{Node: "pve1", VMID: 7001, Name: "edge-worker-old", Template: true, Tags: tags("edge", "worker", "v1.9.3")},
		{Node: "pve1", VMID: 7002, Name: "legacy-worker", Template: true, Tags: "imgpipe;talos-v1.9.2;schematic-376567988ad3;profile-worker"},
		{Node: "pve1", VMID: 7003, Name: "running-vm", Template: false, Tags: tags(testSite, "worker", "v1.9.0")},
		{Node: "pve1", VMID: 7004, Name: "hand-made", Template: true, Tags: "site-lab;profile-worker;talos-v1.9.0"},
	} {
		e.srv.AddVM(vm)
	}
	imp := func(siteName, profile, version string) string {
		return "local:import/" + volName(t, siteName, profile, testSchematic, version, "raw")
	}
	for _, v := range []string{imp(testSite, "worker", "v1.9.3"), imp(testSite, "gpu", "v1.9.3"), imp("edge", "worker", "v1.9.3")} {
		e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: v, Content: "import", Format: "raw", Size: 1})
	}
	res, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Profiles: []string{"worker"}, Keep: 1})
	if err != nil {
		t.Fatalf("BuildTemplates(--profile worker --keep 1): %v", err)
	}
	want := []string{"lab-worker-mid", "lab-worker-old", imp(testSite, "worker", "v1.9.3")}
	if got := removedOf(res); !slices.Equal(got, want) {
		t.Errorf("removed %v; want %v", got, want)
	}
	var names []string
	for _, vm := range e.srv.VMs() {
		names = append(names, vm.Name)
	}
	for _, n := range []string{"lab-gpu-old", "edge-worker-old", "legacy-worker", "running-vm", "hand-made", "talos-v1.9.5-worker"} {
		if !slices.Contains(names, n) {
			t.Errorf("VM %s was removed; want it kept (VMs: %v)", n, names)
		}
	}
}

// Item 15: without proxmox.site a config cannot tell its images from another
// config's, so pruning is refused before anything is sent; without pruning the
// default site name is used.
func TestKeepNeedsSite(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	cfg := cfgFor(MethodUpload)
	cfg.Site = ""
	for _, run := range []func() ([]Result, error){
		func() ([]Result, error) {
			return e.c.UploadISOs(t.Context(), cfg, f.lock, RunOptions{Keep: 2})
		},
		func() ([]Result, error) {
			c := cfg
			c.Keep = 1
			return e.c.BuildTemplates(t.Context(), c, f.lock, RunOptions{Keep: -1})
		},
	} {
		_, err := run()
		if !errors.Is(err, ErrNoSite) || !errors.Is(err, fail.ErrUsage) || !strings.Contains(err.Error(), "proxmox.site") {
			t.Errorf("run without proxmox.site and keep > 0 = %v; want a usage error naming proxmox.site", err)
		}
	}
	if r := e.srv.Requests(); len(r) != 0 {
		t.Errorf("requests %v; want none before the refusal", r)
	}
	res, err := e.c.UploadISOs(t.Context(), cfg, f.lock, RunOptions{Keep: 0})
	if err != nil || res[0].Volume != "local:iso/talos_default_worker_v1.9.5_376567988ad3_nocloud-amd64.iso" {
		t.Errorf("UploadISOs(no site, keep 0) = %+v, %v; want the default site's name", res, err)
	}
	bad := cfgFor(MethodUpload)
	bad.Site = "Lab_1"
	if _, err := e.c.UploadISOs(t.Context(), bad, f.lock, RunOptions{Keep: -1}); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("UploadISOs(site %q) = %v; want a usage error", bad.Site, err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	base := cfgFor(MethodUpload)
	with := func(f func(c *site.ProxmoxConfig)) site.ProxmoxConfig {
		c := base
		f(&c)
		return c
	}
	tests := []struct {
		name    string
		cfg     site.ProxmoxConfig
		keep    int
		wantErr error
	}{
		{"site and keep", base, 2, nil},
		{"no site, no keep", with(func(c *site.ProxmoxConfig) { c.Site = "" }), -1, nil},
		{"no site, --keep", with(func(c *site.ProxmoxConfig) { c.Site = "" }), 1, ErrNoSite},
		{"no site, proxmox.keep", with(func(c *site.ProxmoxConfig) { c.Site, c.Keep = "", 3 }), -1, ErrNoSite},
		{"no site, proxmox.keep, --keep 0", with(func(c *site.ProxmoxConfig) { c.Site, c.Keep = "", 3 }), 0, nil},
		{"bad site", with(func(c *site.ProxmoxConfig) { c.Site = "My Site" }), -1, fail.ErrUsage},
		{"negative timeout", with(func(c *site.ProxmoxConfig) { c.Timeout = -time.Second }), -1, fail.ErrUsage},
	}
	for _, tt := range tests {
		err := Validate(tt.cfg, tt.keep)
		if (tt.wantErr == nil) != (err == nil) || (tt.wantErr != nil && !errors.Is(err, tt.wantErr)) {
			t.Errorf("Validate(%s, keep %d) = %v; want %v", tt.name, tt.keep, err, tt.wantErr)
		}
		if err != nil && !errors.Is(err, fail.ErrUsage) {
			t.Errorf("Validate(%s) = %v; want a usage error", tt.name, err)
		}
	}
}
