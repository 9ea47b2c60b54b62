package site_test

import (
	"github.com/imgpipe/imgpipe/internal/testutil"
	"os"
	"slices"
	"testing"

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

// profileFor expresses a schematic as an imgpipe.yaml profile, or reports that it
// cannot: imgpipe has no diskImage/owner/embedded config fields, and it always sorts
// extensions (as the factory UI does), so an unsorted list is not expressible.
func profileFor(sc *schematic.Schematic) (site.ProfileConfig, bool) {
	c := sc.Customization
	if sc.Owner != "" || c.EmbeddedMachineConfiguration != "" || c.DiskImage != (schematic.DiskImageCustomization{}) {
		return site.ProfileConfig{}, false
	}
	if !slices.IsSorted(c.SystemExtensions.OfficialExtensions) {
		return site.ProfileConfig{}, false
	}
	p := site.ProfileConfig{Name: "vector", ExtraKernelArgs: c.ExtraKernelArgs}
	for _, e := range c.SystemExtensions.OfficialExtensions {
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
	return p, true
}

// TestSchematicVectors builds every published (YAML, ID) pair that imgpipe.yaml can
// express through ParseConfig and Resolve, and compares the ID and canonical YAML.
func TestSchematicVectors(t *testing.T) {
	t.Parallel()
	vs := loadVectors(t, "testdata/schematic_vectors.yaml")
	m := vectorMatrix(t, vs)
	var skipped []string
	built := 0
	for _, v := range vs {
		sc, err := schematic.Unmarshal([]byte(v.YAML))
		if err != nil {
			t.Fatalf("schematic.Unmarshal(%s) = %v", v.Name, err)
		}
		pc, ok := profileFor(sc)
		if !ok {
			skipped = append(skipped, v.Name)
			continue
		}
		built++
		// Go through imgpipe.yaml text, as a user would.
		cfg := site.DefaultConfig()
		cfg.Profiles = []site.ProfileConfig{pc}
		text, err := yaml.Marshal(cfg)
		if err != nil {
			t.Fatal(err)
		}
		parsed, err := site.ParseConfig("imgpipe.yaml", text)
		if err != nil {
			t.Errorf("%s: ParseConfig = %v\n%s", v.Name, err, text)
			continue
		}
		lock, err := site.Resolve(m, parsed, site.ResolveOptions{Talos: "v1.8.4"})
		if err != nil {
			t.Errorf("%s: Resolve = %v", v.Name, err)
			continue
		}
		got := lock.Profiles[0].Schematic
		if got.ID != v.ID {
			t.Errorf("%s: schematic ID = %s; want %s", v.Name, got.ID, v.ID)
		}
		if got.YAML != v.YAML {
			t.Errorf("%s: schematic YAML = %q; want %q", v.Name, got.YAML, v.YAML)
		}
	}
	// Only the vectors outside imgpipe.yaml's vocabulary may be skipped.
	want := []string{"diskImage sectorSize 4096", "extensions amd-ucode,gvisor,gasket-driver (NOT sorted)"}
	if !slices.Equal(skipped, want) {
		t.Errorf("skipped vectors = %q; want %q", skipped, want)
	}
	if built < 25 {
		t.Errorf("built %d vectors; want at least 25", built)
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
