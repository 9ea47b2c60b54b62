package compat_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
)

func TestResolve(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	tests := []struct {
		query string
		pre   bool
		want  string
	}{
		{"v1.9.x", false, "v1.9.6"},
		{"1.9.x", false, "v1.9.6"},
		{"~1.9", false, "v1.9.6"},
		{"1.9", false, "v1.9.6"},
		{"v1.9", false, "v1.9.6"},
		{">=1.9.3 <1.10", false, "v1.9.6"},
		{">=v1.9.3 <v1.10", false, "v1.9.6"},
		{"v1.9.5", false, "v1.9.5"},
		{"1.9.5", false, "v1.9.5"},
		{"=v1.9.5", false, "v1.9.5"},
		{" v1.9.5 ", false, "v1.9.5"},
		{"v1.7.x", false, "v1.7.7"},
		{"v1.12.x", false, "v1.12.11"},
		{"latest", false, "v1.13.9"},
		{"^1.13", false, "v1.13.9"},
		{">=1.13", false, "v1.13.9"},
		// An exact version is taken even when it is a prerelease or unverified.
		{"v1.14.0-rc.1", false, "v1.14.0-rc.1"},
		{"v1.14.0", false, "v1.14.0"},
		// --pre lets ranges pick prereleases, never the unverified (predicted) v1.14.0.
		{"latest", true, "v1.14.0-rc.1"},
		{"v1.14.x", true, "v1.14.0-rc.1"},
		{"v1.9.x", true, "v1.9.6"},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			t.Parallel()
			r, err := m.Resolve(tt.query, compat.ResolveOptions{Pre: tt.pre})
			if err != nil {
				t.Fatalf("Resolve(%q, pre=%v) = %v; want %s", tt.query, tt.pre, err, tt.want)
			}
			if r.Version != tt.want {
				t.Errorf("Resolve(%q, pre=%v) = %s; want %s", tt.query, tt.pre, r.Version, tt.want)
			}
		})
	}
}

// TestResolveFixture uses a small matrix where v1.9.6 is broken and v1.10 exists only as a prerelease.
func TestResolveFixture(t *testing.T) {
	t.Parallel()
	m := loadMatrix(t, "small.yaml")
	tests := []struct {
		query string
		pre   bool
		want  string // empty: ErrNoRelease
	}{
		{"v1.9.x", false, "v1.9.5"},
		{"~1.9", false, "v1.9.5"},
		{">=1.9.5", false, "v1.9.5"},
		{"latest", false, "v1.9.5"},
		{"v1.9.x", true, "v1.9.5"},  // broken stays out even with --pre
		{"v1.9.6", false, "v1.9.6"}, // exact: taken, the caller shows the note
		{"v1.10.x", false, ""},
		{"v1.10.x", true, "v1.10.0-rc.1"},
		{"latest", true, "v1.10.0-rc.1"},
		{">=1.9.6 <1.10", false, ""},
	}
	for _, tt := range tests {
		r, err := m.Resolve(tt.query, compat.ResolveOptions{Pre: tt.pre})
		if tt.want == "" {
			if !errors.Is(err, compat.ErrNoRelease) || !errors.Is(err, fail.ErrPolicy) {
				t.Errorf("Resolve(%q, pre=%v) = %v, %v; want ErrNoRelease and fail.ErrPolicy", tt.query, tt.pre, r, err)
			}
			continue
		}
		if err != nil || r.Version != tt.want {
			t.Errorf("Resolve(%q, pre=%v) = %v, %v; want %s", tt.query, tt.pre, r, err, tt.want)
		}
	}
	// The refusal says what it skipped and why.
	_, err := m.Resolve(">=1.9.6 <1.10", compat.ResolveOptions{})
	if err == nil || !strings.Contains(err.Error(), "v1.9.6 (broken)") {
		t.Errorf("Resolve(%q) = %v; want it to name v1.9.6 (broken)", ">=1.9.6 <1.10", err)
	}
	_, err = m.Resolve("v1.10.x", compat.ResolveOptions{})
	if err == nil || !strings.Contains(err.Error(), "--pre") {
		t.Errorf("Resolve(%q) = %v; want it to suggest --pre", "v1.10.x", err)
	}
}

func TestResolveUnknown(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	tests := []struct {
		query   string
		suggest string
	}{
		{"v1.9.7", "v1.9.6"},
		{"1.9.7", "v1.9.6"},
		{"v1.13.42", "v1.13.9"},
		{"v1.6.3", "v1.7."},
		{"v1.99.0", "v1.1"},
	}
	for _, tt := range tests {
		_, err := m.Resolve(tt.query, compat.ResolveOptions{})
		if !errors.Is(err, compat.ErrNoRelease) {
			t.Errorf("Resolve(%q) = %v; want errors.Is(err, compat.ErrNoRelease)", tt.query, err)
		}
		if !errors.Is(err, fail.ErrPolicy) {
			t.Errorf("Resolve(%q) = %v; want errors.Is(err, fail.ErrPolicy)", tt.query, err)
		}
		if err != nil && !strings.Contains(err.Error(), tt.suggest) {
			t.Errorf("Resolve(%q) = %q; want the suggestion %s in it", tt.query, err, tt.suggest)
		}
	}
	// Ranges that match nothing are policy failures too.
	for _, q := range []string{"v1.6.x", ">=2.0", "~1.99"} {
		_, err := m.Resolve(q, compat.ResolveOptions{})
		if !errors.Is(err, compat.ErrNoRelease) || !errors.Is(err, fail.ErrPolicy) {
			t.Errorf("Resolve(%q) = %v; want ErrNoRelease and fail.ErrPolicy", q, err)
		}
	}
}

func TestResolveMalformed(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	for _, q := range []string{"", "   ", "banana", "v1.9.foo", ">>1.9", "1.9.x.y", "newest", "v1..9"} {
		r, err := m.Resolve(q, compat.ResolveOptions{})
		if !errors.Is(err, fail.ErrUsage) {
			t.Errorf("Resolve(%q) = %v, %v; want errors.Is(err, fail.ErrUsage)", q, r, err)
		}
		if errors.Is(err, compat.ErrNoRelease) {
			t.Errorf("Resolve(%q) = %v; a malformed query is not ErrNoRelease", q, err)
		}
	}
}

func TestStableAndLatestPatch(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	for _, r := range m.Stable() {
		if r.Prerelease || r.Broken || r.Unverified {
			t.Errorf("Stable() includes %s (prerelease=%v broken=%v unverified=%v)", r.Version, r.Prerelease, r.Broken, r.Unverified)
		}
	}
	want := map[string]string{"v1.7.0": "v1.7.7", "v1.8.0": "v1.8.4", "v1.9.0": "v1.9.6", "v1.10.0": "v1.10.9",
		"v1.11.0": "v1.11.6", "v1.12.0": "v1.12.11", "v1.13.0": "v1.13.9"}
	for minor, w := range want {
		r, _ := m.Release(minor)
		got, ok := m.LatestPatch(r.Semver())
		if !ok || got.Version != w {
			t.Errorf("LatestPatch(%s) = %v, %v; want %s", minor, got, ok, w)
		}
	}
	rc, _ := m.Release("v1.14.0-rc.1")
	if got, ok := m.LatestPatch(rc.Semver()); ok {
		t.Errorf("LatestPatch(v1.14) = %s; want none (no stable v1.14 release)", got.Version)
	}
}
