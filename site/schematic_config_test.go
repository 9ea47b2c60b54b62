package site_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

func TestSchematicFieldErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, profile string
		want          []string
	}{
		{"unquoted space", "    extraKernelArgs: [\"console=ttyS0 115200\"]\n", []string{"imgpipe.yaml:4:", "extraKernelArgs[0]", "unquoted whitespace"}},
		{"unbalanced quote", "    extraKernelArgs: ['a=\"b c']\n", []string{"extraKernelArgs[0]", "unbalanced"}},
		{"empty arg", "    extraKernelArgs: ['']\n", []string{"extraKernelArgs[0]", "empty"}},
		{"sector size", "    diskImage: {sectorSize: 1000}\n", []string{"imgpipe.yaml:4:", "diskImage.sectorSize", "power of two"}},
		{"overlay without name", "    overlay: {image: siderolabs/sbc-rockchip}\n", []string{"overlay.name", "needs a name"}},
		{"schematicFile with extensions", "    schematicFile: s.yaml\n    extensions: [{name: zfs}]\n", []string{"profiles[0].extensions", "schematicFile"}},
	}
	for _, tt := range tests {
		data := "version: 1\nprofiles:\n  - name: p\n" + tt.profile
		_, err := site.ParseConfig("imgpipe.yaml", []byte(data))
		if !errors.Is(err, fail.ErrUsage) {
			t.Errorf("%s: ParseConfig = %v; want a usage error", tt.name, err)
			continue
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: ParseConfig = %q; want it to contain %q", tt.name, err, w)
			}
		}
	}
	// Accepted: quoted spaces, 4096-byte sectors, a board name alone.
	ok := "version: 1\nprofiles:\n  - name: p\n    extraKernelArgs: ['console=\"ttyS0 115200\"', '\"a b\"', nomodeset]\n    diskImage: {sectorSize: 4096}\n    overlay: {name: rpi_generic}\n"
	if _, err := site.ParseConfig("imgpipe.yaml", []byte(ok)); err != nil {
		t.Errorf("ParseConfig(quoted args, 4096, overlay by name) = %v; want nil", err)
	}
}

func TestLoadSchematicsErrors(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "bad.yaml"), []byte("customization:\n  extensionz: []\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	for file, want := range map[string]string{"bad.yaml": "is not a schematic", "missing.yaml": "missing.yaml"} {
		cfg, err := site.ParseConfig("imgpipe.yaml", []byte("version: 1\nprofiles:\n  - name: p\n    schematicFile: "+file+"\n"))
		if err != nil {
			t.Fatal(err)
		}
		cfg.ResolvePaths(dir)
		err = cfg.LoadSchematics("imgpipe.yaml", os.ReadFile)
		if !errors.Is(err, fail.ErrUsage) || !strings.Contains(err.Error(), "profiles[0].schematicFile") || !strings.Contains(err.Error(), want) {
			t.Errorf("LoadSchematics(%s) = %v; want a usage error naming the field and %q", file, err, want)
		}
	}
}

func TestParseSchematicFields(t *testing.T) {
	t.Parallel()
	data, err := os.ReadFile("testdata/schematic-fields.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c, err := site.ParseConfig("schematic-fields.yaml", data)
	if err != nil {
		t.Fatalf("ParseConfig = %v", err)
	}
	p := c.Profiles[0]
	if p.Overlay.Name != "rpi_generic" || p.Overlay.Image != "" || p.DiskImage.SectorSize != 4096 || p.ExtraKernelArgs[0] != `console="ttyS0 115200"` {
		t.Errorf("profile rpi = %+v; want the overlay by name, 4096-byte sectors, the quoted argument", p)
	}
	c.ResolvePaths("/site")
	if got := c.Profiles[1].SchematicFile; got != "/site/schematics/existing.yaml" {
		t.Errorf("schematicFile after ResolvePaths = %q; want it relative to the config's directory", got)
	}
}

// TestSchematicFileNotLoaded: a profile whose schematicFile was never read is refused,
// not resolved as an empty schematic.
func TestSchematicFileNotLoaded(t *testing.T) {
	t.Parallel()
	cfg := siteConfig(site.ProfileConfig{Name: "p", SchematicFile: "/nowhere/s.yaml"})
	if _, err := site.Resolve(embeddedMatrix(t), cfg, site.ResolveOptions{Talos: "v1.12.x"}); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("Resolve(schematicFile not loaded) = %v; want a usage error", err)
	}
}
