package extensions_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/extensions"
)

const (
	openProd = "nvidia-open-gpu-kernel-modules-production"
	openLTS  = "nvidia-open-gpu-kernel-modules-lts"
	kmodProd = "nonfree-kmod-nvidia-production"
	ctkProd  = "nvidia-container-toolkit-production"
	ctkLTS   = "nvidia-container-toolkit-lts"
	fmProd   = "nvidia-fabricmanager-production"
)

func pins(kv ...string) []extensions.Pinned {
	var out []extensions.Pinned
	for i := 0; i+1 < len(kv); i += 2 {
		out = append(out, extensions.Pinned{Name: kv[i], Tag: kv[i+1]})
	}
	return out
}

func TestCheckNVIDIA(t *testing.T) {
	t.Parallel()
	qga := []string{"qemu-guest-agent", "9.2.0"}
	tests := []struct {
		name       string
		set        []extensions.Pinned
		constraint string
		want       string // substring of the error; "" means nil
	}{
		{"no NVIDIA", pins(qga...), "", ""},
		{"production pair", pins(append(qga, openProd, "550.144.03-v1.9.6", ctkProd, "550.144.03-v1.17.3")...), "", ""},
		{"lts pair", pins(openLTS, "535.230.02-v1.9.6", ctkLTS, "535.230.02-v1.17.3"), "", ""},
		{"modules alone", pins(openProd, "550.144.03-v1.9.6"), "", ""},
		{"with fabric manager", pins(openProd, "550.144.03-v1.9.6", ctkProd, "550.144.03-v1.17.3", fmProd, "550.144.03"), "", ""},
		{"proprietary pair", pins(kmodProd, "550.144.03-v1.9.6", ctkProd, "550.144.03-v1.17.3"), "", ""},
		{"tier mismatch", pins(openLTS, "535.230.02-v1.9.6", ctkProd, "550.144.03-v1.17.3"), "", "tiers differ"},
		{"driver mismatch", pins(openProd, "550.144.03-v1.9.6", ctkProd, "550.127.08-v1.17.2"), "", "drivers differ"},
		{"fabric manager driver mismatch", pins(openProd, "550.144.03-v1.9.6", fmProd, "550.127.08"), "", "drivers differ"},
		{"modules for another Talos", pins(openProd, "550.144.03-v1.9.5", ctkProd, "550.144.03-v1.17.3"), "", "built for Talos v1.9.5, not v1.9.6"},
		{"toolkit without modules", pins(ctkProd, "550.144.03-v1.17.3"), "", "without kernel modules"},
		{"open and nonfree", pins(openProd, "550.144.03-v1.9.6", kmodProd, "550.144.03-v1.9.6"), "", "more than one kernel-module"},
		{"bad tag", pins(openProd, "550.144.03"), "", "550.144.03"},
		{"constraint in", pins(openProd, "550.144.03-v1.9.6", ctkProd, "550.144.03-v1.17.3"), "550.x", ""},
		{"constraint range in", pins(openProd, "570.172.08-v1.9.6", ctkProd, "570.172.08-v1.17.8"), ">=570 <580", ""},
		{"constraint out", pins(openProd, "550.144.03-v1.9.6", ctkProd, "550.144.03-v1.17.3"), ">=570 <580", "outside the profile's constraint"},
		{"constraint range upper bound", pins(openLTS, "580.105.08-v1.9.6"), ">=570 <580", "outside"},
		{"constraint without NVIDIA", pins(qga...), "550.x", "no NVIDIA extensions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dc, err := extensions.ParseDriverConstraint(tt.constraint)
			if err != nil {
				t.Fatalf("ParseDriverConstraint(%q) = %v", tt.constraint, err)
			}
			err = extensions.CheckNVIDIA("v1.9.6", tt.set, dc)
			if tt.want == "" {
				if err != nil {
					t.Errorf("CheckNVIDIA(v1.9.6, %v, %q) = %v; want nil", tt.set, tt.constraint, err)
				}
				return
			}
			if !errors.Is(err, extensions.ErrPairing) {
				t.Errorf("CheckNVIDIA(v1.9.6, %v, %q) = %v; want ErrPairing", tt.set, tt.constraint, err)
			}
			if err != nil && !strings.Contains(err.Error(), tt.want) {
				t.Errorf("CheckNVIDIA(v1.9.6, %v, %q) = %q; want it to contain %q", tt.set, tt.constraint, err, tt.want)
			}
		})
	}
}

func TestCheckNVIDIABadTagIsBadTag(t *testing.T) {
	t.Parallel()
	err := extensions.CheckNVIDIA("v1.9.6", pins(ctkProd, "v1.17.3"), nil)
	if !errors.Is(err, extensions.ErrPairing) || !errors.Is(err, extensions.ErrBadTag) {
		t.Errorf("CheckNVIDIA(bad toolkit tag) = %v; want ErrPairing and ErrBadTag", err)
	}
}

func TestDriverConstraint(t *testing.T) {
	t.Parallel()
	tests := []struct {
		constraint, driver string
		want               bool
	}{
		{"550.x", "550.144.03", true},
		{"550.x", "550.90.07", true},
		{"550.x", "570.124.06", false},
		{"550.x", "535.230.02", false},
		{">=570 <580", "570.172.08", true},
		{">=570 <580", "570.124.06", true},
		{">=570 <580", "580.105.08", false},
		{">=570 <580", "550.144.03", false},
		{"~580.126", "580.126.20", true},
		{"~580.126", "580.159.03", false},
		{"550.x", "not-a-driver", false},
		{"", "anything", true},
	}
	for _, tt := range tests {
		dc, err := extensions.ParseDriverConstraint(tt.constraint)
		if err != nil {
			t.Fatalf("ParseDriverConstraint(%q) = %v; want nil", tt.constraint, err)
		}
		if got := dc.Allows(tt.driver); got != tt.want {
			t.Errorf("ParseDriverConstraint(%q).Allows(%q) = %v; want %v", tt.constraint, tt.driver, got, tt.want)
		}
	}
	if dc, err := extensions.ParseDriverConstraint("  "); dc != nil || err != nil {
		t.Errorf("ParseDriverConstraint(%q) = %v, %v; want nil, nil", "  ", dc, err)
	}
	if dc, _ := extensions.ParseDriverConstraint(" 550.x "); dc.String() != "550.x" {
		t.Errorf("ParseDriverConstraint(%q).String() = %q; want %q", " 550.x ", dc.String(), "550.x")
	}
	for _, bad := range []string{"banana", ">=570 <<580", "550.x.y.z"} {
		if _, err := extensions.ParseDriverConstraint(bad); err == nil {
			t.Errorf("ParseDriverConstraint(%q) = nil error; want an error", bad)
		}
	}
}
