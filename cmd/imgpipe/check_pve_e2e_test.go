package main

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"

	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

// pveCheckSite is a three-node fake PVE filled by imgpipe fetch + upload iso + upload
// template from the fake factory.
type pveCheckSite struct {
	*checkSite
	factory *factorytest.Factory
	pve     *pvetest.Server
	api     *proxmox.Client
	env     map[string]string
}

func newPVECheckSite(t *testing.T) *pveCheckSite {
	t.Helper()
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		t.Fatal(err)
	}
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog(), ImageSize: 64 << 10,
		Content: func(id, version, path string) []byte {
			if strings.HasSuffix(path, ".raw.zst") {
				return enc.EncodeAll(bytes.Repeat([]byte(id[:16]), 8<<10), nil)
			}
			return nil
		}})
	pve := pvetest.New(pvetest.WithTaskPolls(0), pvetest.WithNodes("pve1", "pve2", "pve3"))
	t.Cleanup(pve.Close)
	dir := t.TempDir()
	ca := filepath.Join(dir, "pve-ca.pem")
	writeFileT(t, ca, pve.CertPEM())
	cfg := fmt.Sprintf("version: 1\ntalos: v1.12.x\nfactory:\n  url: %s\n", f.URL()) + checkProfiles +
		fmt.Sprintf("proxmox:\n  site: lab\n  url: %s\n  caFile: %s\n  nodes: [pve1, pve2, pve3]\n  storage: local\n  isoMethod: download-url\n", pve.URL, ca)
	s := &pveCheckSite{checkSite: newCheckSite(t, cfg), factory: f, pve: pve,
		env: map[string]string{proxmox.TokenEnv: pve.Token(), "HOME": dir, "XDG_CACHE_HOME": filepath.Join(dir, "xdg")}}
	s.run(t, "schematic", "push")
	s.run(t, "fetch") // into the default cache ($XDG_CACHE_HOME/imgpipe), where upload and check look
	s.run(t, "upload", "iso")
	s.run(t, "upload", "template")
	s.lock = readLockT(t, s.lockPath)
	tok, err := proxmox.ParseToken(pve.Token())
	if err != nil {
		t.Fatal(err)
	}
	hc, err := proxmox.NewHTTPClient(proxmox.TLSOptions{CAFile: ca})
	if err != nil {
		t.Fatal(err)
	}
	if s.api, err = proxmox.New(pve.URL, tok, hc, proxmox.WithPollInterval(0)); err != nil {
		t.Fatal(err)
	}
	return s
}

func (s *pveCheckSite) run(t *testing.T, args ...string) {
	t.Helper()
	args = append(args, "--config", s.config, "--lock", s.lockPath)
	if _, stderr, code := runImgpipe(t, s.env, args...); code != 0 {
		t.Fatalf("imgpipe %s = exit %d\n%s", strings.Join(args, " "), code, stderr)
	}
}

func (s *pveCheckSite) check(t *testing.T) (check.Report, int, string) {
	t.Helper()
	return checkRun(t, s.env, "--config", s.config, "--lock", s.lockPath, "--checks", "proxmox")
}

// addForeign puts on PVE what imgpipe did not make and must never call stray: other
// ISOs and import images (one with Talos's own naming), a VM cloned from an imgpipe
// template (it inherits the tags but is no template), a template without the imgpipe
// tag, an imgpipe-tagged template of someone else's making that lacks the
// profile/version tags, and another site's and pre-site imgpipe images.
func (s *pveCheckSite) addForeign() {
	for _, n := range []string{"pve1", "pve2", "pve3"} {
		s.pve.AddVolume(pvetest.Volume{Node: n, Storage: "local", VolID: "local:iso/debian-12.7.0-amd64-netinst.iso", Content: "iso", Format: "iso", Size: 600})
		s.pve.AddVolume(pvetest.Volume{Node: n, Storage: "local", VolID: "local:iso/metal-amd64.iso", Content: "iso", Format: "iso", Size: 700})
	}
	s.pve.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:import/talos-v1.11.5-nocloud-amd64.raw", Content: "import", Format: "raw", Size: 800})
	s.pve.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:import/ubuntu-24.04.qcow2", Content: "import", Format: "qcow2", Size: 900})
	cloneTags := ""
	for _, v := range s.pve.VMs() {
		if v.Template {
			cloneTags = v.Tags
		}
	}
	s.pve.AddVM(pvetest.VM{Node: "pve2", VMID: 120, Name: "talos-worker-1", Tags: cloneTags})
	s.pve.AddVM(pvetest.VM{Node: "pve1", VMID: 8000, Name: "debian-template", Template: true, Tags: "golden;linux"})
	s.pve.AddVM(pvetest.VM{Node: "pve3", VMID: 8001, Name: "someone-elses", Template: true, Tags: "imgpipe"})
	// Another config's imgpipe images on the same cluster (site "dev"), and imgpipe's
	// names from before sites existed (no owner): made by imgpipe, but not this site's.
	w, _ := s.lock.Profile("worker")
	other := *s.lock
	other.Talos = "v1.11.5"
	devISO, _ := proxmox.VolumeName("dev", &other, w, "iso")
	s.pve.AddVolume(pvetest.Volume{Node: "pve2", Storage: "local", VolID: "local:iso/" + devISO, Content: "iso", Format: "iso", Size: 900})
	s.pve.AddVolume(pvetest.Volume{Node: "pve2", Storage: "local", VolID: "local:iso/talos-" + w.Schematic.ID[:12] + "-v1.11.5-nocloud-amd64.iso", Content: "iso", Format: "iso", Size: 901})
	s.pve.AddVM(pvetest.VM{Node: "pve1", VMID: 8002, Name: "talos-v1.11.5-worker", Template: true,
		Tags: strings.Join(proxmox.TemplateTags("dev", &other, w), ";")})
	s.pve.AddVM(pvetest.VM{Node: "pve1", VMID: 8003, Name: "talos-v1.10.0-worker", Template: true,
		Tags: "imgpipe;talos-v1.10.0;schematic-" + w.Schematic.ID[:12] + ";profile-worker"})
}

// TestCheckProxmoxEndToEnd: after fetch + upload, every ISO (3 nodes), import disk
// and template is ok and nothing foreign is flagged; an ISO deleted on one node, an
// imgpipe file of an old release, a template on an old schematic and a resized ISO
// are each reported as exactly that item, and gone once put right.
func TestCheckProxmoxEndToEnd(t *testing.T) {
	t.Parallel()
	s := newPVECheckSite(t)
	s.addForeign()
	rep, code, stderr := s.check(t)
	wantClean(t, "after upload, with foreign volumes and VMs", rep, code, stderr, check.CheckProxmox)
	for _, it := range rep.Items {
		if it.Kind == "import" && it.Detail != "" {
			t.Errorf("import disk %s: %q; want its raw size measured from the fetched .raw.zst and checked", it.Name, it.Detail)
		}
	}
	if n := len(rep.Items); n != 2*3+2+2 {
		t.Errorf("%d proxmox items; want 10 (2 ISOs on 3 nodes, 2 import disks, 2 templates): %v", n, rep.Items)
	}
	worker, _ := s.lock.Profile("worker")
	iso, err := proxmox.VolumeName("lab", s.lock, worker, "iso")
	if err != nil {
		t.Fatal(err)
	}
	isoVol := "local:iso/" + iso

	// 1. Someone deletes an ISO on one node.
	if err := s.api.DeleteVolume(t.Context(), "pve2", "local", isoVol); err != nil {
		t.Fatal(err)
	}
	rep, code, stderr = s.check(t)
	wantDrift(t, "ISO deleted on pve2", rep, code, stderr, "proxmox/iso "+isoVol+" @pve2: missing")
	s.run(t, "upload", "iso")
	rep, code, stderr = s.check(t)
	wantClean(t, "ISO uploaded again", rep, code, stderr, check.CheckProxmox)

	// 2. An imgpipe ISO of an older release that no lock names: stray, until removed.
	old := "local:iso/" + strings.Replace(iso, s.lock.Talos, "v1.11.5", 1)
	s.pve.AddVolume(pvetest.Volume{Node: "pve3", Storage: "local", VolID: old, Content: "iso", Format: "iso", Size: 123})
	rep, code, stderr = s.check(t)
	wantDrift(t, "old imgpipe ISO left on pve3", rep, code, stderr, "proxmox/iso "+old+" @pve3: stray")
	if err := s.api.DeleteVolume(t.Context(), "pve3", "local", old); err != nil {
		t.Fatal(err)
	}
	rep, code, stderr = s.check(t)
	wantClean(t, "old ISO removed", rep, code, stderr, check.CheckProxmox)

	// 3. The worker template is rebuilt by hand on an old schematic.
	var tmpl pvetest.VM
	for _, v := range s.pve.VMs() {
		if v.Template && strings.Contains(v.Tags, "profile-worker") {
			tmpl = v
		}
	}
	if err := s.api.DeleteVM(t.Context(), tmpl.Node, tmpl.VMID); err != nil {
		t.Fatal(err)
	}
	tmpl.Tags = strings.Replace(tmpl.Tags, proxmox.Tag("schematic", worker.Schematic.ID[:12]), "schematic-0123456789ab", 1)
	s.pve.AddVM(tmpl)
	rep, code, stderr = s.check(t)
	wantDrift(t, "template on an old schematic", rep, code, stderr,
		fmt.Sprintf("proxmox/template %s @%s/%d: different", tmpl.Name, tmpl.Node, tmpl.VMID))
	if err := s.api.DeleteVM(t.Context(), tmpl.Node, tmpl.VMID); err != nil {
		t.Fatal(err)
	}
	s.run(t, "upload", "template")
	rep, code, stderr = s.check(t)
	wantClean(t, "template rebuilt", rep, code, stderr, check.CheckProxmox)

	// 4. An imgpipe template of an older release that no lock names: stray, until destroyed.
	oldTmpl := pvetest.VM{Node: "pve2", VMID: 9101, Name: "talos-v1.11.5-worker", Template: true,
		Tags: "imgpipe;site-lab;talos-v1.11.5;" + proxmox.Tag("schematic", worker.Schematic.ID[:12]) + ";profile-worker;variant-nocloud-amd64"}
	s.pve.AddVM(oldTmpl)
	rep, code, stderr = s.check(t)
	wantDrift(t, "old imgpipe template", rep, code, stderr, "proxmox/template talos-v1.11.5-worker @pve2/9101: stray")
	if err := s.api.DeleteVM(t.Context(), "pve2", 9101); err != nil {
		t.Fatal(err)
	}
	rep, code, stderr = s.check(t)
	wantClean(t, "old template destroyed", rep, code, stderr, check.CheckProxmox)

	// 5. An ISO of the wrong size under the right name.
	s.pve.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: isoVol, Content: "iso", Format: "iso", Size: 5})
	rep, code, stderr = s.check(t)
	wantDrift(t, "ISO truncated on pve1", rep, code, stderr, "proxmox/iso "+isoVol+" @pve1: different")
}

func writeFileT(t *testing.T, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
