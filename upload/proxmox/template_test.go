package proxmox

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

func TestTemplateFromImport(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	cfg := cfgFor(MethodDownloadURL)
	cfg.Template = site.TemplateConfig{VMIDBase: 8000, Bridge: "vmbr1", Cores: 4, MemoryMiB: 4096}
	res, err := e.c.BuildTemplates(t.Context(), cfg, f.lock, RunOptions{Keep: -1})
	if err != nil {
		t.Fatalf("BuildTemplates: %v", err)
	}
	importName := volName(t, testSite, "worker", testSchematic, "v1.9.5", "raw")
	want := []Result{
		{Kind: "import", Profile: "worker", Node: "pve1", Storage: "local", Volume: "local:import/" + importName, Action: ActionUploaded, Method: MethodUpload, Bytes: int64(len(f.raw))},
		{Kind: "template", Profile: "worker", Node: "pve1", VMID: 8000, Name: "talos-v1.9.5-worker", Action: ActionCreated},
	}
	if !slices.Equal(res, want) {
		t.Fatalf("BuildTemplates() = %+v; want %+v", res, want)
	}
	vols := e.srv.Volumes()
	if len(vols) != 1 || vols[0].SHA256 != sha(f.raw) {
		t.Errorf("volumes %+v; want the decompressed raw image (sha256 %s)", vols, sha(f.raw))
	}
	vms := e.srv.VMs()
	if len(vms) != 1 || !vms[0].Template {
		t.Fatalf("VMs %+v; want one template", vms)
	}
	got := vms[0].Config
	wantCfg := map[string]string{
		"name":     "talos-v1.9.5-worker",
		"machine":  "q35",
		"bios":     "ovmf",
		"ostype":   "l26",
		"efidisk0": "local-lvm:1,efitype=4m,pre-enrolled-keys=0",
		"cpu":      "x86-64-v2-AES",
		"cores":    "4",
		"memory":   "4096",
		"scsihw":   "virtio-scsi-single",
		"scsi0":    "local-lvm:0,import-from=local:import/" + importName + ",iothread=1,discard=on,ssd=1",
		"net0":     "virtio,bridge=vmbr1,firewall=0",
		"serial0":  "socket",
		"agent":    "enabled=1",
		"boot":     "order=scsi0",
		"tags":     "imgpipe;site-lab;profile-worker;talos-v1.9.5;schematic-376567988ad3;variant-nocloud-amd64",
		"template": "1",
	}
	for k, v := range wantCfg {
		if got[k] != v {
			t.Errorf("VM config %s = %q; want %q", k, got[k], v)
		}
	}
	again, err := e.c.BuildTemplates(t.Context(), cfg, f.lock, RunOptions{Keep: -1})
	if err != nil {
		t.Fatalf("second BuildTemplates: %v", err)
	}
	for _, r := range again {
		if r.Action != ActionSkipped {
			t.Errorf("rerun %s %s: action %q; want %q", r.Kind, r.Name, r.Action, ActionSkipped)
		}
	}
	if n := len(e.srv.VMs()); n != 1 {
		t.Errorf("%d VMs after rerun; want 1", n)
	}
}

func TestTemplateISOFallbackAndNoAgent(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvetest.WithVersion("8.3.5"))
	f := newFixture(t, e.dir, "v1.9.5")
	f.lock.Profiles[0].Extensions = nil
	res, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if err != nil {
		t.Fatalf("BuildTemplates(PVE 8.3): %v", err)
	}
	if len(res) != 2 || res[0].Kind != "iso" || res[1].Warning == "" {
		t.Fatalf("BuildTemplates(PVE 8.3) = %+v; want the ISO then a template with a fallback warning", res)
	}
	cfg := e.srv.VMs()[0].Config
	iso := "local:iso/" + isoName(t, "v1.9.5")
	if cfg["ide2"] != iso+",media=cdrom" || cfg["scsi0"] != "local-lvm:10,iothread=1,discard=on,ssd=1" || cfg["boot"] != "order=scsi0;ide2" {
		t.Errorf("VM config ide2=%q scsi0=%q boot=%q; want ISO boot with an empty 10G disk", cfg["ide2"], cfg["scsi0"], cfg["boot"])
	}
	if _, ok := cfg["agent"]; ok {
		t.Errorf("VM config has agent=%q; want none without qemu-guest-agent", cfg["agent"])
	}
}

func TestTemplateFailureRemovesHalfMadeVM(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		fault pvetest.Fault
	}{
		{"create task fails", pvetest.Fault{Kind: pvetest.FaultTaskFail, Method: "POST", Path: "/qemu", Message: "unable to create VM"}},
		{"template task fails", pvetest.Fault{Kind: pvetest.FaultTaskFail, Path: "/template", Message: "lock timeout"}},
		{"template 500", pvetest.Fault{Kind: pvetest.Fault500, Path: "/template"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			f := newFixture(t, e.dir, "v1.9.5")
			e.srv.Inject(tt.fault)
			_, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
			if err == nil {
				t.Fatalf("BuildTemplates() = nil; want an error")
			}
			if tt.fault.Kind == pvetest.FaultTaskFail && (!errors.Is(err, ErrTaskFailed) || !strings.Contains(err.Error(), tt.fault.Message)) {
				t.Errorf("BuildTemplates() = %v; want ErrTaskFailed with %q", err, tt.fault.Message)
			}
			if vms := e.srv.VMs(); len(vms) != 0 {
				t.Errorf("VMs after failure %+v; want none", vms)
			}
			res, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
			if err != nil || res[len(res)-1].Action != ActionCreated {
				t.Errorf("rerun = %+v, %v; want the template created", res, err)
			}
		})
	}
}

func TestTemplateVMIDs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5", "controlplane", "worker")
	e.srv.AddVM(pvetest.VM{Node: "pve1", VMID: 9000, Name: "someones-vm"})
	res, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: 1})
	if err != nil {
		t.Fatalf("BuildTemplates: %v", err)
	}
	var ids []int
	for _, r := range res {
		if r.Kind == "template" {
			ids = append(ids, r.VMID)
		}
	}
	if want := []int{9001, 9100}; !slices.Equal(ids, want) {
		t.Errorf("template VMIDs %v; want %v (9000 is taken)", ids, want)
	}
	if vms := e.srv.VMs(); vms[0].VMID != 9000 || vms[0].Name != "someones-vm" {
		t.Errorf("VM 9000 = %+v; want it untouched", vms[0])
	}
}

func TestKeepPrunesOnlyImgpipeTemplates(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	tags := func(v, p string) string {
		return strings.Join([]string{TagImgpipe, Tag("site", testSite), Tag("talos", v), Tag("schematic", testSchematic[:12]), Tag("profile", p)}, ";")
	}
	seed := []pvetest.VM{
		{Node: "pve1", VMID: 9001, Name: "old-1", Template: true, Tags: tags("v1.9.3", "worker")},
		{Node: "pve1", VMID: 9002, Name: "old-2", Template: true, Tags: tags("v1.9.4", "worker")},
		{Node: "pve1", VMID: 9003, Name: "other-profile", Template: true, Tags: tags("v1.9.1", "gpu")},
		{Node: "pve1", VMID: 9004, Name: "hand-made", Template: true, Tags: "talos-v1.9.0;profile-worker"},
		{Node: "pve1", VMID: 9005, Name: "running-vm", Template: false, Tags: tags("v1.9.0", "worker")},
	}
	for _, vm := range seed {
		e.srv.AddVM(vm)
	}
	old := volName(t, testSite, "worker", testSchematic, "v1.9.3", "raw")
	mid := volName(t, testSite, "worker", testSchematic, "v1.9.4", "raw")
	e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:import/" + old, Content: "import", Format: "raw", Size: 1})
	e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:import/" + mid, Content: "import", Format: "raw", Size: 1})
	e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:import/debian-12.qcow2", Content: "import", Format: "qcow2", Size: 1})
	res, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: 2})
	if err != nil {
		t.Fatalf("BuildTemplates(keep 2): %v", err)
	}
	var removed []string
	for _, r := range res {
		if r.Action == ActionRemoved {
			removed = append(removed, r.Name+r.Volume)
		}
	}
	want := []string{"local:import/" + old, "old-1"}
	slices.Sort(removed)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v; want %v", removed, want)
	}
	var names []string
	for _, vm := range e.srv.VMs() {
		names = append(names, vm.Name)
	}
	for _, n := range []string{"old-2", "other-profile", "hand-made", "running-vm", "talos-v1.9.5-worker"} {
		if !slices.Contains(names, n) {
			t.Errorf("VM %s was removed; want it kept", n)
		}
	}
}

func TestImportArtifactFormats(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	raw := pattern(1<<20, 3)
	writeFile(t, filepath.Join(dir, "a.qcow2"), raw)
	writeFile(t, filepath.Join(dir, "a.raw.zst"), zstdBytes(t, raw))
	tests := []struct {
		file, url  string
		sum        string
		method     string
		wantMethod string
		wantName   string
		wantErr    error
	}{
		{file: filepath.Join(dir, "a.qcow2"), url: "https://f/x.qcow2", sum: sha(raw), method: MethodDownloadURL, wantMethod: MethodDownloadURL, wantName: ".qcow2"},
		{file: filepath.Join(dir, "a.qcow2"), url: "https://f/x.qcow2", sum: sha(raw), method: MethodUpload, wantMethod: MethodUpload, wantName: ".qcow2"},
		{file: filepath.Join(dir, "a.raw.zst"), url: "https://f/x.raw.zst", sum: "", method: MethodDownloadURL, wantMethod: MethodUpload, wantName: ".raw"},
		{file: filepath.Join(dir, "a.raw.zst"), url: "https://f/x.raw.zst", sum: strings.Repeat("0", 64), method: MethodUpload, wantErr: ErrChecksumMismatch},
		{file: "", url: "https://f/x.raw.xz", method: MethodDownloadURL, wantErr: fail.ErrUsage},
	}
	for _, tt := range tests {
		lock := &site.Lock{Talos: "v1.9.5"}
		p := &site.Profile{Name: "w", Platform: "nocloud", Arch: "amd64", Schematic: site.Schematic{ID: testSchematic},
			Artifacts: []site.Artifact{{Kind: "disk", File: tt.file, URL: tt.url, SHA256: tt.sum, Size: fileSize(tt.file)}}}
		a, m, err := ImportArtifact(t.Context(), testSite, lock, p, tt.method)
		if tt.wantErr != nil {
			if !errors.Is(err, tt.wantErr) {
				t.Errorf("ImportArtifact(%q) = %v; want %v", tt.url, err, tt.wantErr)
			}
			continue
		}
		if err != nil || m != tt.wantMethod || !strings.HasSuffix(a.Filename, tt.wantName) || a.Size != int64(len(raw)) || a.Checksum != sha(raw) {
			t.Errorf("ImportArtifact(%q, %s) = %s size %d sum %s via %s, %v; want *%s size %d via %s", tt.url, tt.method, a.Filename, a.Size, a.Checksum, m, err, tt.wantName, len(raw), tt.wantMethod)
		}
	}
}

func fileSize(p string) int64 {
	if st, err := os.Stat(p); err == nil {
		return st.Size()
	}
	return 0
}

func TestParseToken(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in     string
		wantID string
		ok     bool
	}{
		{"PVEAPIToken=imgpipe@pve!ci=5f0c1a52-7a4e", "imgpipe@pve!ci", true},
		{"root@pam!build=abc\n", "root@pam!build", true},
		{"root@pam=abc", "", false},
		{"root@pam!ci=", "", false},
		{"nonsense", "", false},
		{"root@pam!ci=has blank", "", false},
	}
	for _, tt := range tests {
		tok, err := ParseToken(tt.in)
		if (err == nil) != tt.ok || tok.ID() != tt.wantID {
			t.Errorf("ParseToken(%q) = %q, %v; want %q (ok %v)", tt.in, tok.ID(), err, tt.wantID, tt.ok)
		}
		if err != nil && !errors.Is(err, fail.ErrUsage) {
			t.Errorf("ParseToken(%q) error %v is not a usage error", tt.in, err)
		}
	}
	tok, _ := ParseToken("u@pve!t=s3cr3t")
	if s := tok.String(); strings.Contains(s, "s3cr3t") {
		t.Errorf("Token.String() = %q; want the secret redacted", s)
	}
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, "tok"), []byte("u@pve!t=fromfile\n"))
	env := map[string]string{}
	getenv := func(k string) string { return env[k] }
	if tok, err := LoadToken(getenv, filepath.Join(dir, "tok")); err != nil || tok.secret != "fromfile" {
		t.Errorf("LoadToken(file) = %v, %v; want the file's token", tok, err)
	}
	env[TokenEnv] = "u@pve!t=fromenv"
	if tok, err := LoadToken(getenv, filepath.Join(dir, "tok")); err != nil || tok.secret != "fromenv" {
		t.Errorf("LoadToken(env and file) = %v, %v; want the env token", tok, err)
	}
	delete(env, TokenEnv)
	if _, err := LoadToken(getenv, ""); !errors.Is(err, ErrNoToken) {
		t.Errorf("LoadToken(nothing) = %v; want ErrNoToken", err)
	}
}

func TestParseUPID(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in string
		ok bool
	}{
		{"UPID:pve1:0001A2B4:000B72EC:6B04E43F:imgcopy::imgpipe@pve!ci:", true},
		{"UPID:pve1:0001A2B4:1000B72EC:6B04E43F:download:talos.iso:root@pam:", true},
		{"UPID:pve1:0001A2B4:000B72EC:6B04E43F:imgcopy::root@pam", false},
		{"UPID:pve1:0001A2B4:000B72EC:imgcopy:x:root@pam:", false},
		{"", false},
	}
	for _, tt := range tests {
		if _, err := ParseUPID(tt.in); (err == nil) != tt.ok {
			t.Errorf("ParseUPID(%q) = %v; want ok %v", tt.in, err, tt.ok)
		}
	}
}
