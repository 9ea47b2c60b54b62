package compat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
)

// supportedTable is talos-data.md §1.1 "k8s in code (min..max minor)".
var supportedTable = []struct {
	talos    string
	min, max string
}{
	{"v1.7.0", "1.25", "1.30"},
	{"v1.7.7", "1.25", "1.30"},
	{"v1.8.4", "1.26", "1.31"},
	{"v1.9.0", "1.27", "1.32"},
	{"v1.9.6", "1.27", "1.32"},
	{"v1.10.9", "1.28", "1.33"},
	{"v1.11.6", "1.29", "1.34"},
	{"v1.12.11", "1.30", "1.35"},
	{"v1.13.9", "1.31", "1.36"},
	{"v1.14.0-rc.1", "1.32", "1.37"},
	{"v1.14.0", "1.32", "1.37"},
}

func TestSupportedKubernetes(t *testing.T) {
	t.Parallel()
	for _, tt := range supportedTable {
		got := compat.SupportedKubernetes(tt.talos)
		want := compat.KubernetesRange{MinMinor: tt.min, MaxMinor: tt.max}
		if got != want {
			t.Errorf("SupportedKubernetes(%q) = %+v; want %+v", tt.talos, got, want)
		}
	}
	if got := compat.SupportedKubernetes("not-a-version"); got != (compat.KubernetesRange{}) {
		t.Errorf("SupportedKubernetes(%q) = %+v; want zero", "not-a-version", got)
	}
}

func TestKubernetesSupported(t *testing.T) {
	t.Parallel()
	tests := []struct {
		talos, k8s string
		ok         bool
	}{
		{"v1.9.6", "1.32.4", true},
		{"v1.9.6", "v1.32.4", true},
		{"v1.9.6", "1.27.0", true},
		{"v1.9.6", "1.32.99", false},
		{"v1.9.6", "1.26.15", false},
		{"v1.9.6", "1.33.0", false},
		{"v1.7.7", "1.31.0", false},
		{"v1.13.9", "1.36.3", true},
		{"v1.13.9", "1.30.14", false},
		{"v1.14.0-rc.1", "1.37.0-rc.0", true},
	}
	for _, tt := range tests {
		err := compat.KubernetesSupported(tt.talos, tt.k8s)
		if tt.ok {
			if err != nil {
				t.Errorf("KubernetesSupported(%q, %q) = %v; want nil", tt.talos, tt.k8s, err)
			}
			continue
		}
		if !errors.Is(err, compat.ErrKubernetesUnsupported) || !errors.Is(err, fail.ErrPolicy) {
			t.Errorf("KubernetesSupported(%q, %q) = %v; want ErrKubernetesUnsupported and fail.ErrPolicy", tt.talos, tt.k8s, err)
		}
	}
	if err := compat.KubernetesSupported("v1.9.6", "one.two"); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("KubernetesSupported(%q, %q) = %v; want fail.ErrUsage", "v1.9.6", "one.two", err)
	}
}

func TestUpgradeableFrom(t *testing.T) {
	t.Parallel()
	tests := []struct {
		from, to string
		ok       bool
	}{
		{"v1.8.4", "v1.9.6", true},
		{"v1.9.5", "v1.9.6", true},
		{"v1.7.7", "v1.9.6", false},   // host too old: v1.9 needs >= 1.8.0
		{"v1.11.6", "v1.13.9", true},  // the code allows the skip; docs recommend each minor
		{"v1.8.4", "v1.10.9", true},   // likewise
		{"v1.10.9", "v1.13.9", false}, // v1.13 needs >= 1.11.0
		{"v1.11.6", "v1.9.6", false},  // downgrade blocked: host >= 1.11.0
		{"v1.13.9", "v1.10.9", false}, // downgrade blocked: host >= 1.12.0
		{"v1.10.9", "v1.9.6", true},   // one-minor downgrade is allowed
		{"v1.13.9", "v1.14.0-rc.1", true},
	}
	for _, tt := range tests {
		err := compat.UpgradeableFrom(tt.to, tt.from)
		if tt.ok {
			if err != nil {
				t.Errorf("UpgradeableFrom(%q, %q) = %v; want nil", tt.to, tt.from, err)
			}
			continue
		}
		if !errors.Is(err, compat.ErrUpgradeBlocked) || !errors.Is(err, fail.ErrPolicy) {
			t.Errorf("UpgradeableFrom(%q, %q) = %v; want ErrUpgradeBlocked and fail.ErrPolicy", tt.to, tt.from, err)
		}
	}
}

func TestResolveKubernetes(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	rel, _ := m.Release("v1.9.6")
	tests := []struct {
		query, want string
	}{
		{"", "1.32.4"},
		{"1.31.2", "1.31.2"},
		{"v1.31.2", "1.31.2"},
		{"1.31", "1.31.4"},
		{"1.31.x", "1.31.4"},
		{"~1.32", "1.32.4"},
		{"v1.30", "1.30.5"},
	}
	for _, tt := range tests {
		got, err := m.ResolveKubernetes(tt.query, rel)
		if err != nil || got != tt.want {
			t.Errorf("ResolveKubernetes(%q) = %q, %v; want %q", tt.query, got, err, tt.want)
		}
	}
	if _, err := m.ResolveKubernetes("1.99", rel); !errors.Is(err, fail.ErrPolicy) {
		t.Errorf("ResolveKubernetes(%q) = %v; want fail.ErrPolicy", "1.99", err)
	}
	if _, err := m.ResolveKubernetes("banana", rel); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("ResolveKubernetes(%q) = %v; want fail.ErrUsage", "banana", err)
	}
	// Without a recorded default: the newest known version machinery supports there.
	for _, v := range []string{"v1.14.0", "v1.14.0-beta.1", "v1.14.0-alpha.0"} {
		nodefault, _ := m.Release(v)
		got, err := m.ResolveKubernetes("", nodefault)
		if err != nil || got != "1.36.3" {
			t.Errorf("ResolveKubernetes(\"\", %s without a default) = %q, %v; want 1.36.3 (v1.13.9's, the newest known)", v, got, err)
			continue
		}
		if err := compat.KubernetesSupported(v, got); err != nil {
			t.Errorf("KubernetesSupported(%s, %s) = %v", v, got, err)
		}
	}
	// None known in range: the error says which range and what to pass.
	old := &compat.Matrix{Releases: []compat.Release{{Version: "v1.14.0-beta.1"}, {Version: "v1.7.0", Kubernetes: "1.30.0"}}}
	_, err := old.ResolveKubernetes("", &old.Releases[0])
	if !errors.Is(err, fail.ErrUsage) || !strings.Contains(err.Error(), "pass --kubernetes 1.") {
		t.Errorf("ResolveKubernetes(\"\", nothing known in range) = %v; want a usage error naming the range", err)
	}
}

func TestParseKubernetes(t *testing.T) {
	t.Parallel()
	for _, s := range []string{"1.32.4", "v1.32.4"} {
		if v, err := compat.ParseKubernetes(s); err != nil || v.String() != "1.32.4" {
			t.Errorf("ParseKubernetes(%q) = %v, %v; want 1.32.4", s, v, err)
		}
	}
	for _, s := range []string{"1.32", "", "x"} {
		if _, err := compat.ParseKubernetes(s); !errors.Is(err, fail.ErrUsage) {
			t.Errorf("ParseKubernetes(%q) = %v; want fail.ErrUsage", s, err)
		}
	}
}

// TestMalformedTalosVersion: a bad version from the user is a usage error (exit 2), not an operational one.
func TestMalformedTalosVersion(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"banana", "", "v1.x.y"} {
		if err := compat.UpgradeableFrom(v, "v1.9.6"); !errors.Is(err, fail.ErrUsage) {
			t.Errorf("UpgradeableFrom(%q, v1.9.6) = %v; want fail.ErrUsage", v, err)
		}
		if err := compat.UpgradeableFrom("v1.9.6", v); !errors.Is(err, fail.ErrUsage) {
			t.Errorf("UpgradeableFrom(v1.9.6, %q) = %v; want fail.ErrUsage", v, err)
		}
		if err := compat.KubernetesSupported(v, "1.32.4"); !errors.Is(err, fail.ErrUsage) {
			t.Errorf("KubernetesSupported(%q, 1.32.4) = %v; want fail.ErrUsage", v, err)
		}
	}
}

// TestHandBuiltMatrix: a Matrix built in code (not parsed) still answers lookups and queries.
func TestHandBuiltMatrix(t *testing.T) {
	t.Parallel()
	m := &compat.Matrix{SchemaVersion: 1, Releases: []compat.Release{
		{Version: "v1.9.5", Kubernetes: "1.32.3"}, {Version: "v1.9.6", Kubernetes: "1.32.4"},
	}}
	if r, ok := m.Release("v1.9.5"); !ok || r.Semver() == nil || r.Semver().String() != "1.9.5" {
		t.Errorf("Release(v1.9.5) = %v, %v; want it with its semver", r, ok)
	}
	if r, err := m.Resolve("v1.9.x", compat.ResolveOptions{}); err != nil || r.Version != "v1.9.6" {
		t.Errorf("Resolve(v1.9.x) = %v, %v; want v1.9.6", r, err)
	}
}
