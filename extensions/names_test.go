package extensions_test

import (
	"strings"
	"testing"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/extensions"
)

func TestNormalize(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, talos string
		want        string
		note        string // substring of the note; "" means no note
	}{
		// Old NVIDIA names from v1.8 mean the LTS tier, with a warning.
		{"nvidia-open-gpu-kernel-modules", "v1.9.6", "nvidia-open-gpu-kernel-modules-lts", "warning"},
		{"siderolabs/nvidia-container-toolkit", "v1.8.0", "nvidia-container-toolkit-lts", "warning"},
		{"nonfree-kmod-nvidia", "v1.13.9", "nonfree-kmod-nvidia-lts", "nonfree-kmod-nvidia-production"},
		{"nvidia-fabricmanager", "v1.10.0", "nvidia-fabricmanager-lts", "LTS tier"},
		{"nvidia-container-toolkit", "v1.8.0-alpha.1", "nvidia-container-toolkit-lts", "warning"},
		// -lts before v1.8 is the unsuffixed name.
		{"nvidia-open-gpu-kernel-modules-lts", "v1.7.5", "nvidia-open-gpu-kernel-modules", "predates"},
		{"nvidia-container-toolkit-lts", "v1.7.0", "nvidia-container-toolkit", "535"},
		// Unchanged.
		{"nvidia-open-gpu-kernel-modules", "v1.7.7", "nvidia-open-gpu-kernel-modules", ""},
		{"nvidia-open-gpu-kernel-modules-production", "v1.9.6", "nvidia-open-gpu-kernel-modules-production", ""},
		{"nvidia-open-gpu-kernel-modules-production", "v1.7.7", "nvidia-open-gpu-kernel-modules-production", ""},
		{"qemu-guest-agent", "v1.9.6", "qemu-guest-agent", ""},
		{"siderolabs/qemu-guest-agent", "v1.9.6", "qemu-guest-agent", ""},
		// Factory aliases.
		{"i915-ucode", "v1.9.0", "i915", "renamed"},
		{"i915-ucode", "v1.12.1", "i915", "i915"},
		{"i915-ucode", "v1.8.4", "i915-ucode", ""},
		{"amdgpu-firmware", "v1.9.6", "amdgpu", "renamed"},
		{"amdgpu-firmware", "v1.8.4", "amdgpu-firmware", ""},
		{"xe-guest-utilities", "v1.7.0", "xen-guest-agent", "renamed"},
		{"talos-vmtoolsd", "v1.9.6", "vmtoolsd-guest-agent", "renamed"},
	}
	for _, tt := range tests {
		v := semver.MustParse(tt.talos)
		got, note := extensions.Normalize(tt.name, v)
		if got != tt.want {
			t.Errorf("Normalize(%q, %s) = %q; want %q", tt.name, tt.talos, got, tt.want)
		}
		switch {
		case tt.note == "" && note != "":
			t.Errorf("Normalize(%q, %s) note = %q; want none", tt.name, tt.talos, note)
		case tt.note != "" && !strings.Contains(note, tt.note):
			t.Errorf("Normalize(%q, %s) note = %q; want it to contain %q", tt.name, tt.talos, note, tt.note)
		}
	}
}

func TestUnavailableReason(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, talos, since, until string
		want                      string
	}{
		{"nfs-utils", "v1.9.6", "v1.12.0", "", "nfs-utils exists from v1.12.0"},
		{"nvidia-container-toolkit-production", "v1.7.7", "v1.8.0", "", "NVIDIA tiers"},
		{"nvidia-container-toolkit", "v1.9.6", "v1.7.0", "v1.7.7", "last published for v1.7.7"},
		{"frobnicator", "v1.9.6", "", "", "not a known extension"},
		{"glibc", "v1.9.6", "v1.9.0", "", "not in the Talos v1.9.6 catalog"},
	}
	for _, tt := range tests {
		if got := extensions.UnavailableReason(tt.name, tt.talos, tt.since, tt.until); !strings.Contains(got, tt.want) {
			t.Errorf("UnavailableReason(%q, %q, %q, %q) = %q; want it to contain %q", tt.name, tt.talos, tt.since, tt.until, got, tt.want)
		}
	}
}
