package site_test

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/testutil"

	"github.com/siderolabs/image-factory/pkg/schematic"
	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/extensions"
	"github.com/imgpipe/imgpipe/site"
)

type vector struct {
	Name string `yaml:"name"`
	ID   string `yaml:"id"`
	YAML string `yaml:"yaml"`
}

func loadVectors(t testing.TB, path string) []vector {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var doc any
	if err := yaml.Unmarshal(data, &doc); err != nil {
		t.Fatal(err)
	}
	var vs []vector
	if m, ok := doc.(map[string]any); ok { // talos-data.yaml: under schematic_vectors
		raw, _ := yaml.Marshal(m["schematic_vectors"])
		data = raw
	}
	if err := yaml.Unmarshal(data, &vs); err != nil {
		t.Fatal(err)
	}
	return vs
}

// vectorMatrix is a one-release matrix whose catalog lists every extension the
// vectors name, so that Resolve can build their schematics. v1.8.4 keeps the
// pre-v1.9 names (amdgpu-firmware) as they are.
func vectorMatrix(t testing.TB, vs []vector) *compat.Matrix {
	t.Helper()
	rel := compat.Release{Version: "v1.8.4", Kubernetes: "1.31.4", Extensions: map[string]compat.ExtensionTag{}}
	for _, v := range vs {
		sc, err := schematic.Unmarshal([]byte(v.YAML))
		if err != nil {
			t.Fatalf("schematic.Unmarshal(%s) = %v", v.Name, err)
		}
		for _, e := range sc.Customization.SystemExtensions.OfficialExtensions {
			rel.Extensions[extensions.Short(e)] = compat.ExtensionTag{Tag: "1.0.0", Digest: compat.DigestUnknown}
		}
	}
	data, err := compat.Marshal(&compat.Matrix{SchemaVersion: compat.SchemaVersion, Releases: []compat.Release{rel}})
	if err != nil {
		t.Fatal(err)
	}
	m, err := compat.Parse("vectors.yaml", data)
	if err != nil {
		t.Fatalf("Parse(vector matrix) = %v", err)
	}
	return m
}

// profileFor expresses a schematic as an imgpipe.yaml profile, listing the
// extensions in shuffled order (Resolve sorts them, as the factory UI does). A list
// that is not sorted cannot come from a sorted profile: that one adopts the schematic
// through a schematicFile written to dir.
func profileFor(t *testing.T, sc *schematic.Schematic, raw, dir string) site.ProfileConfig {
	t.Helper()
	c := sc.Customization
	if sc.Owner != "" || c.EmbeddedMachineConfiguration != "" {
		t.Fatalf("vector uses a field imgpipe.yaml does not offer: %+v", sc)
	}
	p := site.ProfileConfig{Name: "vector", ExtraKernelArgs: c.ExtraKernelArgs}
	if !slices.IsSorted(c.SystemExtensions.OfficialExtensions) {
		file := filepath.Join(dir, "adopted.yaml")
		if err := os.WriteFile(file, []byte(raw), 0o644); err != nil {
			t.Fatal(err)
		}
		return site.ProfileConfig{Name: "vector", SchematicFile: file}
	}
	for _, e := range shuffled(c.SystemExtensions.OfficialExtensions) {
		p.Extensions = append(p.Extensions, site.ExtensionConfig{Name: e})
	}
	for _, m := range c.Meta {
		p.Meta = append(p.Meta, site.MetaConfig{Key: m.Key, Value: m.Value})
	}
	if sc.Overlay.Image != "" || sc.Overlay.Name != "" {
		p.Overlay = &site.OverlayConfig{Image: sc.Overlay.Image, Name: sc.Overlay.Name, Options: sc.Overlay.Options}
		p.Arch = "arm64"
	}
	if c.Bootloader != 0 {
		p.Bootloader = c.Bootloader.String()
	}
	if c.SecureBoot != (schematic.SecureBootCustomization{}) {
		p.SecureBoot = &site.SecureBootConfig{Enabled: true, EnrollKeys: c.SecureBoot.EnrollKeys,
			IncludeWellKnownCertificates: c.SecureBoot.IncludeWellKnownCertificates}
	}
	if c.DiskImage != (schematic.DiskImageCustomization{}) {
		p.DiskImage = &site.DiskImageConfig{SectorSize: c.DiskImage.SectorSize}
	}
	return p
}

// shuffled returns a deterministic permutation of a that differs from a when a has
// two or more distinct elements (reversed, then rotated by one).
func shuffled(a []string) []string {
	out := slices.Clone(a)
	slices.Reverse(out)
	if len(out) > 2 {
		out = append(out[1:], out[0])
	}
	return out
}

// resolveVector writes the profile into imgpipe.yaml text, parses it as imgpipe does
// (paths, schematic files) and resolves it.
func resolveVector(t *testing.T, m *compat.Matrix, pc site.ProfileConfig, talos, dir string) (*site.Lock, error) {
	t.Helper()
	cfg := site.DefaultConfig()
	cfg.Profiles = []site.ProfileConfig{pc}
	text, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := site.ParseConfig("imgpipe.yaml", text)
	if err != nil {
		return nil, fmt.Errorf("ParseConfig = %w\n%s", err, text)
	}
	parsed.ResolvePaths(dir)
	if err := parsed.LoadSchematics("imgpipe.yaml", os.ReadFile); err != nil {
		return nil, err
	}
	return site.Resolve(m, parsed, site.ResolveOptions{Talos: talos})
}

// TestSchematicVectors builds every published (YAML, ID) pair through imgpipe.yaml
// text, ParseConfig and Resolve - extensions in shuffled order, the unsorted one by
// adopting its file - and compares the ID and canonical YAML. Every vector is also
// adopted as a schematicFile, which must give the same ID.
func TestSchematicVectors(t *testing.T) {
	t.Parallel()
	vs := loadVectors(t, "testdata/schematic_vectors.yaml")
	m := vectorMatrix(t, vs)
	kinds := map[string]int{}
	for _, v := range vs {
		sc, err := schematic.Unmarshal([]byte(v.YAML))
		if err != nil {
			t.Fatalf("schematic.Unmarshal(%s) = %v", v.Name, err)
		}
		dir := t.TempDir()
		for _, pc := range []site.ProfileConfig{profileFor(t, sc, v.YAML, dir), {Name: "adopted", SchematicFile: "adopted-" + v.ID[:8] + ".yaml"}} {
			if pc.Name == "adopted" {
				if err := os.WriteFile(filepath.Join(dir, pc.SchematicFile), []byte(v.YAML), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			lock, err := resolveVector(t, m, pc, "v1.8.4", dir)
			if err != nil {
				t.Errorf("%s (%s): Resolve = %v", v.Name, pc.Name, err)
				continue
			}
			got := lock.Profiles[0].Schematic
			if got.ID != v.ID {
				t.Errorf("%s (%s): schematic ID = %s; want %s", v.Name, pc.Name, got.ID, v.ID)
			}
			if got.YAML != v.YAML {
				t.Errorf("%s (%s): schematic YAML = %q; want %q", v.Name, pc.Name, got.YAML, v.YAML)
			}
		}
		c := sc.Customization
		for kind, has := range map[string]bool{"overlay": sc.Overlay.Name != "", "meta": len(c.Meta) > 0,
			"kernel args": len(c.ExtraKernelArgs) > 0, "diskImage": c.DiskImage.SectorSize != 0, "secureboot": c.SecureBoot.IncludeWellKnownCertificates,
			"unsorted extensions": !slices.IsSorted(c.SystemExtensions.OfficialExtensions), "extensions": len(c.SystemExtensions.OfficialExtensions) > 1} {
			if has {
				kinds[kind]++
			}
		}
	}
	for _, kind := range []string{"overlay", "meta", "kernel args", "diskImage", "secureboot", "unsorted extensions", "extensions"} {
		if kinds[kind] == 0 {
			t.Errorf("no %s vector was built", kind)
		}
	}
	if len(vs) < 30 {
		t.Errorf("built %d vectors; want all 30", len(vs))
	}
}

// TestSchematicComputed covers what no published vector has: bootloaders, kernel
// arguments with quoted spaces, overlay options, sector size with extensions. The ID
// must be image-factory's own for the equivalent schematic.
func TestSchematicComputed(t *testing.T) {
	t.Parallel()
	m := vectorMatrix(t, []vector{{Name: "x", YAML: "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/iscsi-tools\n            - siderolabs/util-linux-tools\n"}})
	tests := []struct {
		name string
		pc   site.ProfileConfig
		want string // the schematic as the factory would be sent it
	}{
		{"bootloader sd-boot", site.ProfileConfig{Name: "p", Bootloader: "sd-boot"}, "customization:\n  bootloader: sd-boot\n"},
		{"bootloader grub", site.ProfileConfig{Name: "p", Bootloader: "grub"}, "customization:\n  bootloader: grub\n"},
		{"bootloader dual-boot", site.ProfileConfig{Name: "p", Bootloader: "dual-boot"}, "customization:\n  bootloader: dual-boot\n"},
		{"quoted kernel args", site.ProfileConfig{Name: "p", ExtraKernelArgs: []string{`console="ttyS0 115200"`, `"a b"`, "net.ifnames=0"}},
			"customization:\n  extraKernelArgs:\n    - 'console=\"ttyS0 115200\"'\n    - '\"a b\"'\n    - net.ifnames=0\n"},
		{"overlay options", site.ProfileConfig{Name: "p", Arch: "arm64", Overlay: &site.OverlayConfig{Image: "siderolabs/sbc-rockchip", Name: "rock64",
			Options: map[string]any{"configTxtAppend": "dtoverlay=x", "n": 3}}},
			"overlay:\n  image: siderolabs/sbc-rockchip\n  name: rock64\n  options:\n    n: 3\n    configTxtAppend: dtoverlay=x\n"},
		{"sector size and extensions", site.ProfileConfig{Name: "p", DiskImage: &site.DiskImageConfig{SectorSize: 4096}, Extensions: exts("util-linux-tools", "iscsi-tools")},
			"customization:\n  diskImage: {sectorSize: 4096}\n  systemExtensions:\n    officialExtensions: [siderolabs/iscsi-tools, siderolabs/util-linux-tools]\n"},
	}
	for _, tt := range tests {
		want, err := schematic.Unmarshal([]byte(tt.want))
		if err != nil {
			t.Fatalf("%s: schematic.Unmarshal = %v", tt.name, err)
		}
		wantID, _ := want.ID()
		lock, err := resolveVector(t, m, tt.pc, "v1.8.4", t.TempDir())
		if err != nil {
			t.Errorf("%s: Resolve = %v", tt.name, err)
			continue
		}
		if got := lock.Profiles[0].Schematic.ID; got != wantID {
			t.Errorf("%s: schematic ID = %s; want %s\n%s", tt.name, got, wantID, lock.Profiles[0].Schematic.YAML)
		}
	}
}

// TestOverlayByName: a profile names the board only; the image comes from the
// release's overlay catalog, and the lock records the overlay image's ref.
func TestOverlayByName(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	const rpiVanilla = "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9" // published: overlay rpi_generic
	lock, err := site.Resolve(m, siteConfig(site.ProfileConfig{Name: "rpi", Arch: "arm64", Overlay: &site.OverlayConfig{Name: "rpi_generic"}}), site.ResolveOptions{Talos: "v1.11.2"})
	if err != nil {
		t.Fatalf("Resolve(rpi_generic) = %v", err)
	}
	p := lock.Profiles[0]
	if p.Schematic.ID != rpiVanilla {
		t.Errorf("Resolve(rpi_generic) schematic = %s; want %s", p.Schematic.ID, rpiVanilla)
	}
	if p.Overlay == nil || p.Overlay.Ref != "ghcr.io/siderolabs/sbc-raspberrypi:v0.1.5" || p.Overlay.Image != "siderolabs/sbc-raspberrypi" {
		t.Errorf("Resolve(rpi_generic) overlay = %+v; want sbc-raspberrypi:v0.1.5 (v1.11.2's)", p.Overlay)
	}
	_, err = site.Resolve(m, siteConfig(site.ProfileConfig{Name: "rpi", Overlay: &site.OverlayConfig{Name: "rpi_generik"}}), site.ResolveOptions{Talos: "v1.11.2"})
	if !errors.Is(err, site.ErrUnknownOverlay) || !strings.Contains(err.Error(), "did you mean rpi_generic") {
		t.Errorf("Resolve(rpi_generik) = %v; want ErrUnknownOverlay suggesting rpi_generic", err)
	}
}

// TestSchematicKnownIDs pins the three IDs the acceptance criteria name, resolved
// from the embedded matrix.
func TestSchematicKnownIDs(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	tests := []struct {
		exts []string
		want string
	}{
		{nil, emptyID},
		{[]string{"qemu-guest-agent"}, qgaID},
		{[]string{"siderolabs/qemu-guest-agent"}, qgaID},
		{[]string{"iscsi-tools", "util-linux-tools"}, longhornID},
		{[]string{"util-linux-tools", "iscsi-tools"}, longhornID},
	}
	for _, talos := range []string{"v1.7.5", "v1.9.6", "v1.13.9"} {
		for _, tt := range tests {
			lock, err := site.Resolve(m, siteConfig(site.ProfileConfig{Name: "p", Extensions: exts(tt.exts...)}), site.ResolveOptions{Talos: talos})
			if err != nil {
				t.Errorf("Resolve(%s, %v) = %v", talos, tt.exts, err)
				continue
			}
			if got := lock.Profiles[0].Schematic.ID; got != tt.want {
				t.Errorf("Resolve(%s, %v) schematic = %s; want %s", talos, tt.exts, got, tt.want)
			}
		}
	}
}

// TestSchematicPermutations: the order of extensions in the config never changes the ID.
func TestSchematicPermutations(t *testing.T) {
	t.Parallel()
	names := []string{"iscsi-tools", "multipath-tools", "nvme-cli", "util-linux-tools"}
	const want = "4f50d1375e1c91b2bcac34a8a99ccc83ab9220f7f1ab65172ccff510bb926b4b" // dell powerstore vector
	m := vectorMatrix(t, []vector{{Name: "dell", YAML: "customization:\n    systemExtensions:\n        officialExtensions:\n" +
		"            - siderolabs/iscsi-tools\n            - siderolabs/multipath-tools\n            - siderolabs/nvme-cli\n            - siderolabs/util-linux-tools\n"}})
	n := 0
	permute(names, 0, func(p []string) {
		n++
		lock, err := site.Resolve(m, siteConfig(site.ProfileConfig{Name: "p", Extensions: exts(p...)}), site.ResolveOptions{Talos: "v1.8.4"})
		if err != nil {
			t.Errorf("Resolve(%v) = %v", p, err)
			return
		}
		if got := lock.Profiles[0].Schematic.ID; got != want {
			t.Errorf("Resolve(%v) schematic = %s; want %s", p, got, want)
		}
	})
	if n != 24 {
		t.Errorf("tried %d permutations; want 24", n)
	}
}

func permute(a []string, k int, visit func([]string)) {
	if k == len(a) {
		visit(slices.Clone(a))
		return
	}
	for i := k; i < len(a); i++ {
		a[k], a[i] = a[i], a[k]
		permute(a, k+1, visit)
		a[k], a[i] = a[i], a[k]
	}
}

// TestSchematicVectorsMatchReference keeps testdata/schematic_vectors.yaml equal to
// the reference's list (the module's testdata/reference copy).
func TestSchematicVectorsMatchReference(t *testing.T) {
	t.Parallel()
	ref := loadVectors(t, testutil.ReferencePath(t, "talos-data.yaml"))
	local := loadVectors(t, "testdata/schematic_vectors.yaml")
	if !slices.Equal(ref, local) {
		t.Errorf("testdata/schematic_vectors.yaml (%d vectors) differs from talos-data.yaml schematic_vectors (%d vectors): copy it again", len(local), len(ref))
	}
}
