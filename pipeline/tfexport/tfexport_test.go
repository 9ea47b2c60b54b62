package tfexport

import (
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
)

func testLock() (*site.Config, *site.Lock) {
	cfg := &site.Config{
		Profiles: []site.ProfileConfig{{Name: "cp", Role: "controlplane"}, {Name: "w", Role: "worker"}},
		Proxmox:  site.ProxmoxConfig{Nodes: []string{"pve1", "pve2"}, Storage: "cephfs"},
	}
	id := strings.Repeat("ab", 32)
	lock := &site.Lock{Talos: "v1.12.11", Kubernetes: site.Kubernetes{Version: "1.35.4"}, Profiles: []site.Profile{
		{Name: "cp", Platform: "nocloud", Arch: "amd64", Schematic: site.Schematic{ID: id}, Installer: "f/nocloud-installer/" + id + ":v1.12.11"},
		{Name: "w", Platform: "metal", Arch: "arm64", Schematic: site.Schematic{ID: id}, Installer: "f/metal-installer/" + id + ":v1.12.11"},
	}}
	return cfg, lock
}

func TestBuild(t *testing.T) {
	t.Parallel()
	cfg, lock := testLock()
	v, err := Build(cfg, lock, Options{
		Patches: map[string][]string{"cp": {"p/cp.patch.yaml"}},
		Uploaded: []proxmox.Result{
			{Kind: "template", Profile: "cp", Node: "pve2", VMID: 9000, Name: "talos-v1.12.11-cp", Action: "skipped"},
			{Kind: "template", Profile: "w", Node: "pve1", VMID: 9100, Name: "talos-v1.12.11-w", Action: "would-create"}, // a plan, not a template
			{Kind: "template", Profile: "w", Node: "pve1", VMID: 9101, Name: "talos-v1.11.0-w", Action: "created"},       // another release
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	cp, w := v.Profiles["cp"], v.Profiles["w"]
	if got := cp.ISOVolumeIDs["pve2"]; got != "cephfs:iso/talos_default_cp_v1.12.11_abababababab_nocloud-amd64.iso" {
		t.Errorf("Build: cp iso on pve2 = %q", got)
	}
	if tpl := cp.Templates["pve2"]; tpl.VMID == nil || *tpl.VMID != 9000 || tpl.Name != "talos-v1.12.11-cp" {
		t.Errorf("Build: cp templates = %+v; want pve2 -> 9000", cp.Templates)
	}
	if tpl, ok := w.Templates["pve1"]; !ok || tpl.VMID != nil || tpl.Name != "talos-v1.12.11-w" || len(w.Templates) != 1 {
		t.Errorf("Build: w templates = %+v; want pve1 -> {talos-v1.12.11-w, null}", w.Templates)
	}
	if cp.Role != "controlplane" || w.Role != "worker" || len(cp.MachineConfigPatches) != 1 || w.MachineConfigPatches == nil {
		t.Errorf("Build: roles/patches = %+v / %+v", cp, w)
	}
	if _, err := Build(cfg, lock, Options{Profiles: []string{"nope"}}); err == nil {
		t.Error("Build(profile nope) = nil; want an error")
	}
}
