package proxmox

import (
	"bufio"
	"errors"
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

func TestVolumeName(t *testing.T) {
	t.Parallel()
	prof := func(name, platform, arch string, sb bool) *site.Profile {
		return &site.Profile{Name: name, Platform: platform, Arch: arch, SecureBoot: sb, Schematic: site.Schematic{ID: testSchematic}}
	}
	tests := []struct {
		site    string
		ver     string
		p       *site.Profile
		ext     string
		want    string
		wantErr bool
	}{
		{"lab", "v1.9.5", prof("worker", "nocloud", "amd64", false), "iso", "talos_lab_worker_v1.9.5_376567988ad3_nocloud-amd64.iso", false},
		{"lab", "v1.9.5", prof("gpu", "metal", "amd64", true), "iso", "talos_lab_gpu_v1.9.5_376567988ad3_metal-amd64-secureboot.iso", false},
		{"lab", "1.10.0", prof("rpi", "metal", "arm64", false), "raw", "talos_lab_rpi_v1.10.0_376567988ad3_metal-arm64.raw", false},
		{"edge-2", "v1.14.0-rc.1", prof("cp", "nocloud", "amd64", false), "qcow2", "talos_edge-2_cp_v1.14.0-rc.1_376567988ad3_nocloud-amd64.qcow2", false},
		{"", "v1.9.5", prof("worker", "nocloud", "amd64", false), "iso", "talos_default_worker_v1.9.5_376567988ad3_nocloud-amd64.iso", false},
		{"Lab_1", "v1.9.5", prof("worker", "nocloud", "amd64", false), "iso", "", true},
		{"lab", "v1.9.5", prof("worker", "no/cloud", "amd64", false), "iso", "", true},
		{"lab", "v1.9.5", prof("worker", "nocloud", "amd64", false), "vmdk", "", true},
		{"lab", "v1.9.5", &site.Profile{Name: "w", Platform: "nocloud", Arch: "amd64", Schematic: site.Schematic{ID: "abc"}}, "iso", "", true},
	}
	for _, tt := range tests {
		got, err := VolumeName(tt.site, &site.Lock{Talos: tt.ver}, tt.p, tt.ext)
		if (err != nil) != tt.wantErr || got != tt.want {
			t.Errorf("VolumeName(%q, %q, %+v, %q) = %q, %v; want %q (error %v)", tt.site, tt.ver, tt.p, tt.ext, got, err, tt.want, tt.wantErr)
		}
		if err != nil && !errors.Is(err, fail.ErrUsage) {
			t.Errorf("VolumeName(%q) error %v is not a usage error", tt.site, err)
		}
		if err != nil {
			continue
		}
		n, ok := ParseImageName("local:iso/" + got)
		if !ok || n.String() != got || !n.OwnedBy(siteOrDefault(tt.site), tt.p.Name) || n.OwnedBy("other", "") || n.Variant.SecureBoot != tt.p.SecureBoot {
			t.Errorf("ParseImageName(%q) = %+v, %v; want it to round-trip and name its owner", got, n, ok)
		}
	}
}

// Item 12: a secure-boot and a plain profile with one schematic must not share
// a volume; each gets its own image, and a rerun skips both.
func TestSecureBootVariantGetsItsOwnVolume(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5", "worker", "secure")
	sb := &f.lock.Profiles[1]
	sb.SecureBoot = true
	sbISO := pattern(3<<20+99, 7)
	sbFile := e.dir + "/sb.iso"
	writeFile(t, sbFile, sbISO)
	sb.Artifacts[0] = site.Artifact{Kind: "iso", URL: strings.Replace(sb.ISO, "amd64.iso", "amd64-secureboot.iso", 1),
		File: sbFile, Size: int64(len(sbISO)), SHA256: sha(sbISO)}
	if f.lock.Profiles[0].Schematic.ID != sb.Schematic.ID {
		t.Fatal("fixture: the profiles must share a schematic")
	}
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if err != nil {
		t.Fatalf("UploadISOs: %v", err)
	}
	if len(res) != 2 || res[0].Volume == res[1].Volume || res[0].Action != ActionUploaded || res[1].Action != ActionUploaded {
		t.Fatalf("UploadISOs() = %+v; want two uploads to two volumes", res)
	}
	want := map[string]string{
		"local:iso/" + isoName(t, "v1.9.5"):                                           sha(f.iso),
		"local:iso/talos_lab_secure_v1.9.5_376567988ad3_nocloud-amd64-secureboot.iso": sha(sbISO),
	}
	for _, v := range e.srv.Volumes() {
		if want[v.VolID] != v.SHA256 {
			t.Errorf("volume %s has sha256 %s; want %s", v.VolID, v.SHA256, want[v.VolID])
		}
		delete(want, v.VolID)
	}
	if len(want) != 0 {
		t.Errorf("volumes missing: %v", want)
	}
	again, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if err != nil || len(again) != 2 || again[0].Action != ActionSkipped || again[1].Action != ActionSkipped {
		t.Errorf("rerun = %+v, %v; want both skipped", again, err)
	}
	// The disk images differ by variant too.
	plain, _, err1 := ImportArtifact(t.Context(), testSite, f.lock, &f.lock.Profiles[0], MethodUpload)
	secure, _, err2 := ImportArtifact(t.Context(), testSite, f.lock, sb, MethodUpload)
	if err1 != nil || err2 != nil || plain.Filename == secure.Filename || !strings.Contains(secure.Filename, "-secureboot.raw") {
		t.Errorf("import names %q, %q (%v, %v); want distinct, the second -secureboot", plain.Filename, secure.Filename, err1, err2)
	}
}

// Templates of two variants of one profile and schematic are told apart by tag.
func TestTemplateTagsCarryVariantAndSite(t *testing.T) {
	t.Parallel()
	lock := &site.Lock{Talos: "v1.9.5"}
	p := &site.Profile{Name: "gpu", Platform: "metal", Arch: "amd64", Schematic: site.Schematic{ID: testSchematic}}
	plain := TemplateTags("lab", lock, p)
	p.SecureBoot = true
	secure := TemplateTags("lab", lock, p)
	other := TemplateTags("edge", lock, p)
	if slices.Equal(plain, secure) || slices.Equal(secure, other) {
		t.Errorf("TemplateTags: plain %v, secure %v, other site %v; want all distinct", plain, secure, other)
	}
	vm := VMInfo{VMID: 9000, Template: true, Tags: strings.Join(secure, ";")}
	if s, prof, talos, ok := TemplateOwner(vm); !ok || s != "lab" || prof != "gpu" || talos != "v1.9.5" {
		t.Errorf("TemplateOwner(%q) = %q, %q, %q, %v; want lab, gpu, v1.9.5", vm.Tags, s, prof, talos, ok)
	}
	if !vm.OwnedBy("lab", "gpu") || vm.OwnedBy("edge", "") || vm.OwnedBy("lab", "worker") {
		t.Errorf("OwnedBy(%q) is wrong", vm.Tags)
	}
	legacy := VMInfo{VMID: 9001, Template: true, Tags: "imgpipe;talos-v1.9.5;schematic-376567988ad3;profile-gpu"}
	if _, _, _, ok := TemplateOwner(legacy); ok {
		t.Errorf("TemplateOwner(%q) = ok; want a pre-site template to have no owner", legacy.Tags)
	}
}

func TestParseImageNameRejects(t *testing.T) {
	t.Parallel()
	for _, s := range []string{
		"talos-376567988ad3-v1.9.5-nocloud-amd64.iso",
		"talos__worker_v1.9.5_376567988ad3_nocloud-amd64.iso",
		"talos_lab_Worker_v1.9.5_376567988ad3_nocloud-amd64.iso",
		"talos_lab_worker_v1.9.5_376567988ad3_nocloud-amd64.img",
		"talos_a-very-long-site-name-over-32-chars_w_v1.9.5_376567988ad3_nocloud-amd64.iso",
		"ubuntu-24.04.iso",
	} {
		if n, ok := ParseImageName(s); ok {
			t.Errorf("ParseImageName(%q) = %+v; want not imgpipe's", s, n)
		}
	}
	if !IsLegacyName("local:iso/talos-376567988ad3-v1.9.5-nocloud-amd64.iso") || IsLegacyName("talos_lab_worker_v1.9.5_376567988ad3_nocloud-amd64.iso") {
		t.Errorf("IsLegacyName does not tell the old scheme from the new one")
	}
}

func FuzzParseImageName(f *testing.F) {
	file, err := os.Open("testdata/volume-names.txt")
	if err != nil {
		f.Fatal(err)
	}
	defer file.Close()
	sc := bufio.NewScanner(file)
	for sc.Scan() {
		f.Add(sc.Text())
	}
	f.Fuzz(func(t *testing.T, s string) {
		n, ok := ParseImageName(s)
		if !ok {
			return
		}
		again, ok := ParseImageName(n.String())
		if !ok || again != n || !strings.HasSuffix(s, n.String()) {
			t.Errorf("ParseImageName(%q) = %+v; its String %q does not round-trip", s, n, n.String())
		}
		if IsLegacyName(s) {
			t.Errorf("ParseImageName(%q) accepted a legacy name", s)
		}
	})
}

func TestNewRefusesCredentialsInURL(t *testing.T) {
	t.Parallel()
	tok, err := ParseToken("imgpipe@pve!ci=secret-token")
	if err != nil {
		t.Fatal(err)
	}
	_, err = New("https://root:hunter2@pve.example:8006", tok, nil)
	if !errors.Is(err, fail.ErrUsage) || strings.Contains(err.Error(), "hunter2") {
		t.Errorf("New(URL with a password) = %v; want a usage error without the password", err)
	}
}

func TestImportExt(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct{ url, want string }{
		{"https://f/image/x/v1.9.5/nocloud-amd64.raw.zst", "raw"},
		{"https://f/image/x/v1.9.5/nocloud-amd64.qcow2", "qcow2"},
		{"https://f/image/x/v1.7.0/nocloud-amd64.raw.xz", ""},
	} {
		got, err := ImportExt(&site.Profile{Name: "w", DiskImage: tt.url})
		if got != tt.want || (tt.want == "") != errors.Is(err, fail.ErrUsage) {
			t.Errorf("ImportExt(%q) = %q, %v; want %q", tt.url, got, err, tt.want)
		}
	}
}
