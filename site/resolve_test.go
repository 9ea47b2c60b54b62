package site_test

import (
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"

	imgpipe "github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/extensions"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

const (
	emptyID    = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
	qgaID      = "ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515"
	longhornID = "613e1592b2da41ae5e265e8789429f22e121aab91cb4deb6bc3c0b6262961245"
)

var embedded = sync.OnceValues(func() (*compat.Matrix, error) {
	return compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
})

func embeddedMatrix(t testing.TB) *compat.Matrix {
	t.Helper()
	m, err := embedded()
	if err != nil {
		t.Fatalf("Parse(embedded matrix) = %v", err)
	}
	return m
}

// siteConfig builds a one-profile config with defaults applied (through ParseConfig's
// rules, by way of DefaultConfig's factory settings).
func siteConfig(profiles ...site.ProfileConfig) *site.Config {
	c := site.DefaultConfig()
	for i := range profiles {
		if profiles[i].Platform == "" {
			profiles[i].Platform = "nocloud"
		}
		if profiles[i].Arch == "" {
			profiles[i].Arch = "amd64"
		}
	}
	c.Profiles = profiles
	return c
}

func exts(names ...string) []site.ExtensionConfig {
	var out []site.ExtensionConfig
	for _, n := range names {
		opt := strings.HasSuffix(n, "?")
		out = append(out, site.ExtensionConfig{Name: strings.TrimSuffix(n, "?"), Optional: opt})
	}
	return out
}

func TestResolveDefaultV19(t *testing.T) {
	t.Parallel()
	lock, err := site.Resolve(embeddedMatrix(t), site.DefaultConfig(), site.ResolveOptions{Talos: "v1.9.x", MatrixName: "embedded"})
	if err != nil {
		t.Fatalf("Resolve(default site, v1.9.x) = %v; want nil", err)
	}
	if lock.Talos != "v1.9.6" || lock.Query != "v1.9.x" || lock.Schema != site.LockSchema {
		t.Errorf("Resolve(default site, v1.9.x) talos/query/schema = %s/%s/%s", lock.Talos, lock.Query, lock.Schema)
	}
	wantK8s := site.Kubernetes{Version: "1.32.4", Default: "1.32.4", Min: "1.27", MaxMinor: "1.32", Supported: true}
	if lock.Kubernetes != wantK8s {
		t.Errorf("Resolve(default site, v1.9.x).Kubernetes = %+v; want %+v", lock.Kubernetes, wantK8s)
	}
	if len(lock.Profiles) != 3 {
		t.Fatalf("Resolve(default site, v1.9.x) has %d profiles; want 3", len(lock.Profiles))
	}
	cp, _ := lock.Profile("controlplane")
	if cp.Schematic.ID != qgaID {
		t.Errorf("controlplane schematic = %s; want %s (qemu-guest-agent only)", cp.Schematic.ID, qgaID)
	}
	if cp.Installer != "factory.talos.dev/installer/"+qgaID+":v1.9.6" {
		t.Errorf("controlplane installer = %s", cp.Installer)
	}
	worker, _ := lock.Profile("worker")
	if len(worker.Omitted) != 1 || worker.Omitted[0].Name != "siderolabs/nfs-utils" || !strings.Contains(worker.Omitted[0].Reason, "v1.12.0") {
		t.Errorf("worker omitted = %+v; want siderolabs/nfs-utils with a reason naming v1.12.0", worker.Omitted)
	}
	if worker.Schematic.ID != qgaID {
		t.Errorf("worker schematic = %s; want %s (nfs-utils left out)", worker.Schematic.ID, qgaID)
	}
	gpu, _ := lock.Profile("gpu")
	want := map[string]string{
		"siderolabs/nvidia-open-gpu-kernel-modules-production": "550.144.03-v1.9.6",
		"siderolabs/nvidia-container-toolkit-production":       "550.144.03-v1.17.3",
		"siderolabs/qemu-guest-agent":                          "9.2.0",
	}
	for _, e := range gpu.Extensions {
		if w, ok := want[e.Name]; !ok || e.Version != w {
			t.Errorf("gpu extension %s = %s; want %q", e.Name, e.Version, w)
		}
		if e.Ref != "ghcr.io/"+e.Name+":"+e.Version {
			t.Errorf("gpu extension %s ref = %s", e.Name, e.Ref)
		}
		if !e.Required || e.DigestStatus != "unknown" || e.Digest != "" {
			t.Errorf("gpu extension %s = %+v; want required, digest unknown", e.Name, e)
		}
		delete(want, e.Name)
	}
	if len(want) != 0 {
		t.Errorf("gpu lacks %v", want)
	}
	if lock.Catalog != "ghcr.io/siderolabs/extensions:v1.9.6" {
		t.Errorf("catalog = %s", lock.Catalog)
	}
	roles := map[string]string{}
	for _, img := range lock.CoreImages {
		roles[img.Role] = img.Ref
	}
	if roles["installer"] != "ghcr.io/siderolabs/installer:v1.9.6" || roles["kubelet"] != "ghcr.io/siderolabs/kubelet:v1.32.4" {
		t.Errorf("core images = %+v", lock.CoreImages)
	}
}

func TestResolveDefaultV112(t *testing.T) {
	t.Parallel()
	lock, err := site.Resolve(embeddedMatrix(t), site.DefaultConfig(), site.ResolveOptions{Talos: "v1.12.x"})
	if err != nil {
		t.Fatalf("Resolve(default site, v1.12.x) = %v; want nil", err)
	}
	if lock.Talos != "v1.12.11" {
		t.Errorf("Resolve(default site, v1.12.x).Talos = %s; want v1.12.11", lock.Talos)
	}
	worker, _ := lock.Profile("worker")
	if len(worker.Omitted) != 0 {
		t.Errorf("worker omitted = %+v; want none", worker.Omitted)
	}
	found := false
	for _, e := range worker.Extensions {
		if e.Name == "siderolabs/nfs-utils" {
			found = true
			if e.Version != "v0.1.1" || e.Required || e.Tier != "contrib" {
				t.Errorf("worker nfs-utils = %+v; want v0.1.1, optional, contrib", e)
			}
		}
	}
	if !found {
		t.Errorf("worker extensions = %+v; want nfs-utils", worker.Extensions)
	}
	gpu, _ := lock.Profile("gpu")
	for _, e := range gpu.Extensions {
		if strings.Contains(e.Name, "nvidia") && !strings.HasPrefix(e.Version, "570.211.01-") {
			t.Errorf("gpu %s = %s; want the 570.211.01 production driver", e.Name, e.Version)
		}
	}
	if !strings.HasPrefix(gpu.Installer, "factory.talos.dev/nocloud-installer/") {
		t.Errorf("gpu installer = %s; want the nocloud-installer form from v1.10", gpu.Installer)
	}
}

func TestResolveErrors(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	tests := []struct {
		name  string
		cfg   *site.Config
		opts  site.ResolveOptions
		is    []error
		words []string
	}{
		{
			name:  "required extension missing",
			cfg:   siteConfig(site.ProfileConfig{Name: "nfs", Extensions: exts("qemu-guest-agent", "nfs-utils")}),
			opts:  site.ResolveOptions{Talos: "v1.9.x"},
			is:    []error{site.ErrRequiredExtension, fail.ErrPolicy},
			words: []string{"profile nfs", "nfs-utils", "v1.12.0"},
		},
		{
			name: "lts modules with production toolkit",
			cfg: siteConfig(site.ProfileConfig{Name: "gpu", Extensions: exts(
				"nvidia-open-gpu-kernel-modules-lts", "nvidia-container-toolkit-production")}),
			opts:  site.ResolveOptions{Talos: "v1.9.x"},
			is:    []error{extensions.ErrPairing, fail.ErrPolicy},
			words: []string{"tiers differ"},
		},
		{
			name: "driver constraint without a build",
			cfg: siteConfig(site.ProfileConfig{Name: "gpu", NVIDIADriver: ">=570 <580", Extensions: exts(
				"nvidia-open-gpu-kernel-modules-production", "nvidia-container-toolkit-production")}),
			opts:  site.ResolveOptions{Talos: "v1.9.x"},
			is:    []error{extensions.ErrPairing, fail.ErrPolicy},
			words: []string{"550.144.03", ">=570 <580"},
		},
		{
			name: "open and proprietary modules",
			cfg: siteConfig(site.ProfileConfig{Name: "gpu", Extensions: exts(
				"nvidia-open-gpu-kernel-modules-production", "nonfree-kmod-nvidia-production")}),
			opts: site.ResolveOptions{Talos: "v1.10.x"},
			is:   []error{extensions.ErrPairing},
		},
		{
			name: "production tier before v1.8",
			cfg: siteConfig(site.ProfileConfig{Name: "gpu", Extensions: exts(
				"nvidia-open-gpu-kernel-modules-production")}),
			opts:  site.ResolveOptions{Talos: "v1.7.x"},
			is:    []error{site.ErrRequiredExtension, fail.ErrPolicy},
			words: []string{"NVIDIA tiers"},
		},
		{
			name:  "unsupported Kubernetes",
			cfg:   site.DefaultConfig(),
			opts:  site.ResolveOptions{Talos: "v1.9.x", Kubernetes: "1.26.15"},
			is:    []error{compat.ErrKubernetesUnsupported, fail.ErrPolicy},
			words: []string{"1.27", "1.32"},
		},
		{
			name:  "unknown Talos",
			cfg:   site.DefaultConfig(),
			opts:  site.ResolveOptions{Talos: "v1.9.7"},
			is:    []error{compat.ErrNoRelease, fail.ErrPolicy},
			words: []string{"v1.9.6"},
		},
		{
			name: "unknown profile",
			cfg:  site.DefaultConfig(),
			opts: site.ResolveOptions{Talos: "v1.9.x", Profiles: []string{"storage"}},
			is:   []error{site.ErrUnknownProfile, fail.ErrUsage},
		},
		{
			name: "profile constraint",
			cfg:  siteConfig(site.ProfileConfig{Name: "new", Talos: ">=v1.10"}),
			opts: site.ResolveOptions{Talos: "v1.9.x"},
			is:   []error{site.ErrProfileConstraint, fail.ErrPolicy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			lock, err := site.Resolve(m, tt.cfg, tt.opts)
			if err == nil {
				t.Fatalf("Resolve(%s) = %+v, nil; want an error", tt.name, lock)
			}
			for _, target := range tt.is {
				if !errors.Is(err, target) {
					t.Errorf("Resolve(%s) = %v; want errors.Is(err, %v)", tt.name, err, target)
				}
			}
			for _, w := range tt.words {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Resolve(%s) = %q; want it to contain %q", tt.name, err, w)
				}
			}
		})
	}
}

func TestResolveAllProfileErrors(t *testing.T) {
	t.Parallel()
	cfg := siteConfig(
		site.ProfileConfig{Name: "a", Extensions: exts("nfs-utils")},
		site.ProfileConfig{Name: "b", Extensions: exts("nvidia-container-toolkit-production")},
	)
	_, err := site.Resolve(embeddedMatrix(t), cfg, site.ResolveOptions{Talos: "v1.9.x"})
	if !errors.Is(err, site.ErrRequiredExtension) || !errors.Is(err, extensions.ErrPairing) {
		t.Errorf("Resolve(two bad profiles) = %v; want both ErrRequiredExtension and ErrPairing", err)
	}
}

func TestResolveNotes(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	// An old NVIDIA name at v1.9 means -lts, with a warning in the profile's notes.
	cfg := siteConfig(site.ProfileConfig{Name: "gpu", Extensions: exts("nvidia-open-gpu-kernel-modules", "nvidia-container-toolkit")})
	lock, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: "v1.9.6"})
	if err != nil {
		t.Fatalf("Resolve(legacy NVIDIA names, v1.9.6) = %v; want nil", err)
	}
	p := lock.Profiles[0]
	if len(p.Notes) != 2 || !strings.Contains(p.Notes[0], "warning") {
		t.Errorf("notes = %q; want two warnings", p.Notes)
	}
	if p.Extensions[0].Name != "siderolabs/nvidia-container-toolkit-lts" || p.Extensions[0].Version != "535.230.02-v1.17.3" {
		t.Errorf("extensions = %+v; want the -lts pair", p.Extensions)
	}
	// A prerelease taken by exact version is flagged.
	lock, err = site.Resolve(m, siteConfig(site.ProfileConfig{Name: "cp"}), site.ResolveOptions{Talos: "v1.14.0-rc.1"})
	if err != nil {
		t.Fatalf("Resolve(v1.14.0-rc.1) = %v; want nil", err)
	}
	if !strings.Contains(strings.Join(lock.Notes, "\n"), "prerelease") {
		t.Errorf("Resolve(v1.14.0-rc.1).Notes = %q; want a prerelease warning", lock.Notes)
	}
}

func TestResolveURLs(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	const f = "https://factory.talos.dev/image/" + emptyID + "/v1.7.5/"
	tests := []struct {
		talos   string
		profile site.ProfileConfig
		iso     string
		disk    string
		inst    string
	}{
		{"v1.7.5", site.ProfileConfig{Name: "metal", Platform: "metal"},
			f + "metal-amd64.iso", f + "metal-amd64.raw.xz", "factory.talos.dev/installer/" + emptyID + ":v1.7.5"},
		{"v1.7.5", site.ProfileConfig{Name: "sb", Platform: "metal", SecureBoot: &site.SecureBootConfig{Enabled: true}},
			f + "metal-amd64-secureboot.iso", f + "metal-amd64-secureboot.raw.xz", "factory.talos.dev/installer-secureboot/" + emptyID + ":v1.7.5"},
		{"v1.7.5", site.ProfileConfig{Name: "vm"},
			f + "nocloud-amd64.iso", f + "nocloud-amd64.raw.xz", "factory.talos.dev/installer/" + emptyID + ":v1.7.5"},
		{"v1.8.0", site.ProfileConfig{Name: "vm"},
			"https://factory.talos.dev/image/" + emptyID + "/v1.8.0/nocloud-amd64.iso",
			"https://factory.talos.dev/image/" + emptyID + "/v1.8.0/nocloud-amd64.raw.zst",
			"factory.talos.dev/installer/" + emptyID + ":v1.8.0"},
		{"v1.9.6", site.ProfileConfig{Name: "arm", Platform: "metal", Arch: "arm64"},
			"https://factory.talos.dev/image/" + emptyID + "/v1.9.6/metal-arm64.iso",
			"https://factory.talos.dev/image/" + emptyID + "/v1.9.6/metal-arm64.raw.zst",
			"factory.talos.dev/installer/" + emptyID + ":v1.9.6"},
		{"v1.10.0", site.ProfileConfig{Name: "metal", Platform: "metal"},
			"https://factory.talos.dev/image/" + emptyID + "/v1.10.0/metal-amd64.iso",
			"https://factory.talos.dev/image/" + emptyID + "/v1.10.0/metal-amd64.raw.zst",
			"factory.talos.dev/metal-installer/" + emptyID + ":v1.10.0"},
		{"v1.13.9", site.ProfileConfig{Name: "sb", SecureBoot: &site.SecureBootConfig{Enabled: true}},
			"https://factory.talos.dev/image/" + emptyID + "/v1.13.9/nocloud-amd64-secureboot.iso",
			"https://factory.talos.dev/image/" + emptyID + "/v1.13.9/nocloud-amd64-secureboot.raw.zst",
			"factory.talos.dev/nocloud-installer-secureboot/" + emptyID + ":v1.13.9"},
	}
	for _, tt := range tests {
		lock, err := site.Resolve(m, siteConfig(tt.profile), site.ResolveOptions{Talos: tt.talos})
		if err != nil {
			t.Errorf("Resolve(%s, %s) = %v", tt.talos, tt.profile.Name, err)
			continue
		}
		p := lock.Profiles[0]
		if p.Schematic.ID != emptyID {
			t.Errorf("Resolve(%s, %s) schematic = %s; want %s", tt.talos, tt.profile.Name, p.Schematic.ID, emptyID)
		}
		if p.ISO != tt.iso {
			t.Errorf("Resolve(%s, %s).ISO = %s; want %s", tt.talos, tt.profile.Name, p.ISO, tt.iso)
		}
		if p.DiskImage != tt.disk {
			t.Errorf("Resolve(%s, %s).DiskImage = %s; want %s", tt.talos, tt.profile.Name, p.DiskImage, tt.disk)
		}
		if p.Installer != tt.inst {
			t.Errorf("Resolve(%s, %s).Installer = %s; want %s", tt.talos, tt.profile.Name, p.Installer, tt.inst)
		}
	}
}

func TestInstallerRef(t *testing.T) {
	t.Parallel()
	tests := []struct {
		talos, platform string
		sb              bool
		want            string
	}{
		{"v1.9.6", "nocloud", false, "factory.talos.dev/installer/ID:v1.9.6"},
		{"v1.9.6", "metal", true, "factory.talos.dev/installer-secureboot/ID:v1.9.6"},
		{"v1.10.0-alpha.2", "metal", false, "factory.talos.dev/metal-installer/ID:v1.10.0-alpha.2"},
		{"v1.10.0", "metal", false, "factory.talos.dev/metal-installer/ID:v1.10.0"},
		{"v1.10.9", "nocloud", true, "factory.talos.dev/nocloud-installer-secureboot/ID:v1.10.9"},
		{"v1.14.0", "nocloud", false, "factory.talos.dev/nocloud-installer/ID:v1.14.0"},
	}
	for _, tt := range tests {
		if got := site.InstallerRef("factory.talos.dev", "ID", tt.talos, tt.platform, tt.sb); got != tt.want {
			t.Errorf("InstallerRef(%q, %q, %v) = %q; want %q", tt.talos, tt.platform, tt.sb, got, tt.want)
		}
	}
}

func TestDiskImageSuffix(t *testing.T) {
	t.Parallel()
	for talos, want := range map[string]string{
		"v1.7.0": ".raw.xz", "v1.7.7": ".raw.xz", "v1.8.0-alpha.1": ".raw.zst", "v1.8.0": ".raw.zst", "v1.13.9": ".raw.zst",
	} {
		if got := site.DiskImageSuffix(talos); got != want {
			t.Errorf("DiskImageSuffix(%q) = %q; want %q", talos, got, want)
		}
	}
}

func TestImageURL(t *testing.T) {
	t.Parallel()
	got := site.ImageURL("https://factory.talos.dev", emptyID, "v1.7.5", "metal", "amd64", true, ".iso")
	if want := "https://factory.talos.dev/image/" + emptyID + "/v1.7.5/metal-amd64-secureboot.iso"; got != want {
		t.Errorf("ImageURL(secureboot iso) = %q; want %q", got, want)
	}
}

// TestResolveFullExample resolves testdata/imgpipe.yaml: every profile option and a
// self-hosted factory with its own registry host.
func TestResolveFullExample(t *testing.T) {
	t.Parallel()
	cfg, err := site.ParseConfig("imgpipe.yaml", readTestdata(t, "imgpipe.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := site.Resolve(embeddedMatrix(t), cfg, site.ResolveOptions{})
	if err != nil {
		t.Fatalf("Resolve(testdata/imgpipe.yaml) = %v; want nil", err)
	}
	if lock.Talos != "v1.9.6" || lock.Kubernetes.Version != "1.32.4" || lock.Factory != "https://factory.example.internal" {
		t.Errorf("Resolve(testdata/imgpipe.yaml) = talos %s, kubernetes %s, factory %s", lock.Talos, lock.Kubernetes.Version, lock.Factory)
	}
	gpu, _ := lock.Profile("gpu")
	if !gpu.SecureBoot || !strings.HasPrefix(gpu.Installer, "factory.example.internal:8443/installer-secureboot/") ||
		!strings.HasPrefix(gpu.ISO, "https://factory.example.internal/image/") || !strings.HasSuffix(gpu.ISO, "/v1.9.6/metal-amd64-secureboot.iso") {
		t.Errorf("gpu = installer %s, iso %s", gpu.Installer, gpu.ISO)
	}
	for _, want := range []string{"bootloader: sd-boot", "enrollKeys: if-safe", "includeWellKnownCertificates: true"} {
		if !strings.Contains(gpu.Schematic.YAML, want) {
			t.Errorf("gpu schematic = %q; want it to contain %q", gpu.Schematic.YAML, want)
		}
	}
	worker, _ := lock.Profile("worker")
	if len(worker.Omitted) != 1 || len(worker.Extensions) != 3 {
		t.Errorf("worker = %d extensions, omitted %+v; want 3 and nfs-utils", len(worker.Extensions), worker.Omitted)
	}
	for _, want := range []string{"- net.ifnames=0", "key: 10", "value: '{\"externalIPs\":[\"1.2.3.4\"]}'"} {
		if !strings.Contains(worker.Schematic.YAML, want) {
			t.Errorf("worker schematic = %q; want it to contain %q", worker.Schematic.YAML, want)
		}
	}
	rpi, _ := lock.Profile("rpi")
	if !strings.HasPrefix(rpi.Schematic.YAML, "overlay:\n    image: siderolabs/sbc-raspberrypi\n    name: rpi_generic\n    options:\n") ||
		!strings.HasSuffix(rpi.ISO, "/metal-arm64.iso") {
		t.Errorf("rpi = schematic %q, iso %s", rpi.Schematic.YAML, rpi.ISO)
	}
	// Selecting profiles keeps only those, in the order asked.
	lock, err = site.Resolve(embeddedMatrix(t), cfg, site.ResolveOptions{Profiles: []string{"rpi", "controlplane"}})
	if err != nil || len(lock.Profiles) != 2 || lock.Profiles[0].Name != "rpi" {
		t.Errorf("Resolve(profiles rpi, controlplane) = %v; want those two", err)
	}
}

// TestResolveSameExtensionTwice: two configured names that mean the same extension at
// the resolved release (an alias and its new name, a legacy NVIDIA name and -lts) must
// not put the extension into the schematic twice.
func TestResolveSameExtensionTwice(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	tests := []struct {
		talos string
		names []string
	}{
		{"v1.9.6", []string{"nvidia-container-toolkit", "nvidia-container-toolkit-lts", "nvidia-open-gpu-kernel-modules-lts"}},
		{"v1.7.7", []string{"nvidia-open-gpu-kernel-modules", "nvidia-open-gpu-kernel-modules-lts"}},
	}
	for _, tt := range tests {
		lock, err := site.Resolve(m, siteConfig(site.ProfileConfig{Name: "p", Extensions: exts(tt.names...)}), site.ResolveOptions{Talos: tt.talos})
		if err == nil {
			t.Errorf("Resolve(%s, %v) = schematic %q; want an error naming the duplicate", tt.talos, tt.names, lock.Profiles[0].Schematic.YAML)
			continue
		}
		if !errors.Is(err, fail.ErrUsage) || !strings.Contains(err.Error(), "same extension") {
			t.Errorf("Resolve(%s, %v) = %v; want fail.ErrUsage naming the same extension", tt.talos, tt.names, err)
		}
	}
}

// TestResolveLegacyNVIDIA: before v1.8 the -lts names resolve to the unsuffixed 535 builds.
func TestResolveLegacyNVIDIA(t *testing.T) {
	t.Parallel()
	cfg := siteConfig(site.ProfileConfig{Name: "gpu", Extensions: exts("nvidia-open-gpu-kernel-modules-lts", "nvidia-container-toolkit-lts")})
	lock, err := site.Resolve(embeddedMatrix(t), cfg, site.ResolveOptions{Talos: "v1.7.x"})
	if err != nil {
		t.Fatalf("Resolve(-lts names, v1.7.x) = %v; want nil", err)
	}
	got := map[string]string{}
	for _, e := range lock.Profiles[0].Extensions {
		got[e.Name] = e.Version
	}
	want := map[string]string{
		"siderolabs/nvidia-container-toolkit":       "535.129.03-v1.14.6",
		"siderolabs/nvidia-open-gpu-kernel-modules": "535.129.03-v1.7.7",
	}
	if len(got) != 2 || got["siderolabs/nvidia-container-toolkit"] != want["siderolabs/nvidia-container-toolkit"] ||
		got["siderolabs/nvidia-open-gpu-kernel-modules"] != want["siderolabs/nvidia-open-gpu-kernel-modules"] {
		t.Errorf("Resolve(-lts names, v1.7.x) extensions = %v; want %v", got, want)
	}
	if len(lock.Profiles[0].Notes) != 2 {
		t.Errorf("notes = %q; want one per renamed extension", lock.Profiles[0].Notes)
	}
}

// TestResolveEveryRelease resolves the default site and an LTS GPU profile at every
// release of the embedded matrix: the NVIDIA pairs in the data must hold everywhere
// they exist, and the gaps must fail for the documented reasons.
func TestResolveEveryRelease(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	lts := siteConfig(site.ProfileConfig{Name: "gpu-lts", Extensions: exts(
		"nvidia-open-gpu-kernel-modules-lts", "nvidia-container-toolkit-lts", "nvidia-fabricmanager-lts?", "glibc?")})
	for _, r := range m.Releases {
		for _, cfg := range []*site.Config{site.DefaultConfig(), lts} {
			lock, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: r.Version})
			switch {
			case r.Semver().Minor() == 7 && cfg != lts:
				// The default gpu profile asks for the production tier, which starts with v1.8.
				if !errors.Is(err, site.ErrRequiredExtension) {
					t.Errorf("Resolve(%s, default) = %v; want ErrRequiredExtension", r.Version, err)
				}
			case r.Partial:
				if !errors.Is(err, site.ErrRequiredExtension) {
					t.Errorf("Resolve(%s, %s) = %v; want ErrRequiredExtension (partial catalog)", r.Version, cfg.Profiles[0].Name, err)
				}
			case err != nil:
				t.Errorf("Resolve(%s, %s) = %v; want nil", r.Version, cfg.Profiles[0].Name, err)
			case r.Kubernetes == "" && !slices.ContainsFunc(lock.Notes, func(n string) bool { return strings.Contains(n, "no default Kubernetes") }):
				// Known from its catalog only: machinery's range picks the version, and the lock says so.
				t.Errorf("Resolve(%s) notes = %q; want one about the missing default Kubernetes", r.Version, lock.Notes)
			}
		}
	}
}
