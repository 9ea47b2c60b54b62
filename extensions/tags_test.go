package extensions_test

import (
	"bufio"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	imgpipe "github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/extensions"
)

func TestParseTag(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, tag string
		want      extensions.Tag
		ok        bool
	}{
		// kernel modules: <driver>-<talos tag>
		{"nvidia-open-gpu-kernel-modules-production", "550.144.03-v1.9.6", extensions.Tag{Driver: "550.144.03", Talos: "v1.9.6"}, true},
		{"siderolabs/nvidia-open-gpu-kernel-modules-lts", "535.247.01-v1.11.2", extensions.Tag{Driver: "535.247.01", Talos: "v1.11.2"}, true},
		{"nvidia-open-gpu-kernel-modules", "535.129.03-v1.7.0", extensions.Tag{Driver: "535.129.03", Talos: "v1.7.0"}, true},
		{"nonfree-kmod-nvidia-production", "595.58.03-v1.13.0-beta.1", extensions.Tag{Driver: "595.58.03", Talos: "v1.13.0-beta.1"}, true},
		{"nonfree-kmod-nvidia-lts", "580.178.04-v1.14.0-rc.1", extensions.Tag{Driver: "580.178.04", Talos: "v1.14.0-rc.1"}, true},
		{"nvidia-open-gpu-kernel-modules-lts", "550.144.03", extensions.Tag{}, false},
		{"nvidia-open-gpu-kernel-modules-lts", "v1.9.6", extensions.Tag{}, false},
		{"nvidia-open-gpu-kernel-modules-lts", "550.144.03-1.9.6", extensions.Tag{}, false},
		{"nvidia-open-gpu-kernel-modules-lts", "550-v1.9.6", extensions.Tag{}, false},
		{"nvidia-open-gpu-kernel-modules-lts", "550.144.03-v1.9", extensions.Tag{}, false},
		{"nvidia-open-gpu-kernel-modules-lts", "", extensions.Tag{}, false},
		{"nonfree-kmod-nvidia", "550.144.03-v1.9.6-", extensions.Tag{}, false},
		// container toolkit: <driver>-<toolkit version>, no Talos version
		{"nvidia-container-toolkit-production", "550.144.03-v1.17.3", extensions.Tag{Driver: "550.144.03", Toolkit: "v1.17.3"}, true},
		{"nvidia-container-toolkit", "535.129.03-v1.14.6", extensions.Tag{Driver: "535.129.03", Toolkit: "v1.14.6"}, true},
		{"nvidia-container-toolkit-lts", "550.144.03", extensions.Tag{}, false},
		{"nvidia-container-toolkit-lts", "v1.17.3", extensions.Tag{}, false},
		{"nvidia-container-toolkit-lts", "550.144.03-1.17.3", extensions.Tag{}, false},
		// fabric manager: <driver>
		{"nvidia-fabricmanager-lts", "535.247.01", extensions.Tag{Driver: "535.247.01"}, true},
		{"nvidia-fabricmanager-production", "570.172", extensions.Tag{Driver: "570.172"}, true},
		{"nvidia-fabricmanager-production", "570.172.08-v1.11.2", extensions.Tag{}, false},
		{"nvidia-fabricmanager", "v535.247.01", extensions.Tag{}, false},
		{"nvidia-fabricmanager", "", extensions.Tag{}, false},
		// everything else: opaque, but not empty
		{"qemu-guest-agent", "10.0.2", extensions.Tag{}, true},
		{"nfs-utils", "v0.1.1", extensions.Tag{}, true},
		{"glibc", "2.41", extensions.Tag{}, true},
		{"glibc", "", extensions.Tag{}, false},
	}
	for _, tt := range tests {
		got, err := extensions.ParseTag(tt.name, tt.tag)
		if tt.ok {
			if err != nil || got != tt.want {
				t.Errorf("ParseTag(%q, %q) = %+v, %v; want %+v", tt.name, tt.tag, got, err, tt.want)
			}
			continue
		}
		if !errors.Is(err, extensions.ErrBadTag) {
			t.Errorf("ParseTag(%q, %q) = %+v, %v; want ErrBadTag", tt.name, tt.tag, got, err)
		}
	}
}

// TestParseTagMatrix: every NVIDIA tag in the embedded matrix follows its grammar, and
// kernel modules name the release whose catalog lists them.
func TestParseTagMatrix(t *testing.T) {
	t.Parallel()
	m, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range m.Releases {
		for name, e := range r.Extensions {
			tag, err := extensions.ParseTag(name, e.Tag)
			if err != nil {
				t.Errorf("%s: ParseTag(%q, %q) = %v; want nil", r.Version, name, e.Tag, err)
				continue
			}
			if fam, _ := extensions.Classify(name); fam.Modules() && tag.Talos != r.Version {
				t.Errorf("%s: ParseTag(%q, %q).Talos = %q; want %q", r.Version, name, e.Tag, tag.Talos, r.Version)
			}
		}
	}
}

func TestClassify(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		fam  extensions.Family
		tier extensions.Tier
	}{
		{"nvidia-open-gpu-kernel-modules", extensions.FamilyOpenModules, extensions.TierLegacy},
		{"nvidia-open-gpu-kernel-modules-lts", extensions.FamilyOpenModules, extensions.TierLTS},
		{"siderolabs/nvidia-open-gpu-kernel-modules-production", extensions.FamilyOpenModules, extensions.TierProduction},
		{"nonfree-kmod-nvidia-lts", extensions.FamilyNonfreeModules, extensions.TierLTS},
		{"nvidia-container-toolkit-production", extensions.FamilyToolkit, extensions.TierProduction},
		{"nvidia-fabricmanager", extensions.FamilyFabricManager, extensions.TierLegacy},
		{"nvidia-fabricmanager-lts", extensions.FamilyFabricManager, extensions.TierLTS},
		{"nvidia-open-gpu-kernel-modules-beta", extensions.FamilyOther, extensions.TierNone},
		{"qemu-guest-agent", extensions.FamilyOther, extensions.TierNone},
		{"glibc", extensions.FamilyOther, extensions.TierNone},
	}
	for _, tt := range tests {
		fam, tier := extensions.Classify(tt.name)
		if fam != tt.fam || tier != tt.tier {
			t.Errorf("Classify(%q) = %v, %q; want %v, %q", tt.name, fam, tier, tt.fam, tt.tier)
		}
	}
	if !extensions.FamilyOpenModules.Modules() || !extensions.FamilyNonfreeModules.Modules() || extensions.FamilyToolkit.Modules() {
		t.Error("Family.Modules() is wrong")
	}
}

func TestShortFull(t *testing.T) {
	t.Parallel()
	for in, want := range map[string][2]string{
		"glibc":               {"glibc", "siderolabs/glibc"},
		"siderolabs/glibc":    {"glibc", "siderolabs/glibc"},
		" siderolabs/glibc  ": {"glibc", "siderolabs/glibc"},
	} {
		if got := extensions.Short(in); got != want[0] {
			t.Errorf("Short(%q) = %q; want %q", in, got, want[0])
		}
		if got := extensions.Full(in); got != want[1] {
			t.Errorf("Full(%q) = %q; want %q", in, got, want[1])
		}
	}
}

// FuzzParseTag is seeded with every name:tag of the testdata catalogs. An accepted
// NVIDIA tag must render back to itself.
func FuzzParseTag(f *testing.F) {
	files, err := filepath.Glob("testdata/*.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, file := range files {
		fh, err := os.Open(file)
		if err != nil {
			f.Fatal(err)
		}
		sc := bufio.NewScanner(fh)
		for sc.Scan() {
			ref, _, _ := strings.Cut(sc.Text(), "@")
			i := strings.LastIndex(ref, ":")
			if i < 0 {
				continue
			}
			f.Add(ref[strings.LastIndex(ref[:i], "/")+1:i], ref[i+1:])
		}
		fh.Close()
	}
	f.Fuzz(func(t *testing.T, name, tag string) {
		got, err := extensions.ParseTag(name, tag)
		if err != nil {
			if !errors.Is(err, extensions.ErrBadTag) {
				t.Fatalf("ParseTag(%q, %q) = %v; want ErrBadTag", name, tag, err)
			}
			return
		}
		var back string
		switch fam, _ := extensions.Classify(name); fam {
		case extensions.FamilyOpenModules, extensions.FamilyNonfreeModules:
			back = got.Driver + "-" + got.Talos
		case extensions.FamilyToolkit:
			back = got.Driver + "-" + got.Toolkit
		case extensions.FamilyFabricManager:
			back = got.Driver
		default:
			if got != (extensions.Tag{}) {
				t.Fatalf("ParseTag(%q, %q) = %+v; want a zero Tag for a non-NVIDIA extension", name, tag, got)
			}
			return
		}
		if back != tag {
			t.Fatalf("ParseTag(%q, %q) = %+v, which renders as %q", name, tag, got, back)
		}
	})
}

func TestFamilyString(t *testing.T) {
	t.Parallel()
	for f, want := range map[extensions.Family]string{
		extensions.FamilyOpenModules: "NVIDIA open kernel modules", extensions.FamilyNonfreeModules: "NVIDIA proprietary kernel modules",
		extensions.FamilyToolkit: "NVIDIA container toolkit", extensions.FamilyFabricManager: "NVIDIA fabric manager",
		extensions.FamilyOther: "extension",
	} {
		if got := f.String(); got != want {
			t.Errorf("Family(%d).String() = %q; want %q", f, got, want)
		}
	}
}
