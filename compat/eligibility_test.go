package compat_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/compat"
)

const soakMatrix = `schemaVersion: 1
extensions: {}
releases:
  - version: v1.13.8
    extensions: {}
  - version: v1.13.9
    firstSeen: "2026-11-20T05:17:00Z"
    extensions: {}
  - version: v1.13.10
    firstSeen: "2026-12-01T05:17:00Z"
    extensions: {}
  - version: v1.13.11
    unverified: true
    extensions: {}
  - version: v1.13.12
    broken: true
    extensions: {}
  - version: v1.14.0-beta.1
    prerelease: true
    extensions: {}
`

// TestResolveEligibility: a listed release is eligible unless broken, prerelease,
// unverified or still soaking; resolve names every newer release it passed over.
func TestResolveEligibility(t *testing.T) {
	t.Parallel()
	m, err := compat.Parse("soak.yaml", []byte(soakMatrix))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Date(2026, 12, 2, 5, 17, 0, 0, time.UTC)
	tests := []struct {
		query  string
		opts   compat.ResolveOptions
		want   string
		passed []string
	}{
		{"v1.13.x", compat.ResolveOptions{}, "v1.13.10", []string{"v1.13.12", "v1.13.11"}},
		{"v1.13.x", compat.ResolveOptions{MinReleaseAge: 72 * time.Hour, Now: now}, "v1.13.9", []string{"v1.13.12", "v1.13.11", "v1.13.10"}},
		{"v1.13.x", compat.ResolveOptions{MinReleaseAge: 24 * time.Hour, Now: now}, "v1.13.10", []string{"v1.13.12", "v1.13.11"}},
		// v1.13.8 has no firstSeen: recorded before refresh tracked it, so it has soaked.
		{"v1.13.x", compat.ResolveOptions{MinReleaseAge: 30 * 24 * time.Hour, Now: now}, "v1.13.8", []string{"v1.13.12", "v1.13.11", "v1.13.10", "v1.13.9"}},
		// --pre admits prereleases, never an unverified release (issue 13: only by exact version).
		{"v1.13.x", compat.ResolveOptions{Pre: true}, "v1.13.10", []string{"v1.13.12", "v1.13.11"}},
		{"v1.13.11", compat.ResolveOptions{}, "v1.13.11", nil},
		{"v1.13.10", compat.ResolveOptions{MinReleaseAge: 72 * time.Hour, Now: now}, "v1.13.10", nil}, // exact: asked for
		{"latest", compat.ResolveOptions{}, "v1.13.10", []string{"v1.14.0-beta.1", "v1.13.12", "v1.13.11"}},
	}
	for _, tt := range tests {
		res, err := m.ResolveDetail(tt.query, tt.opts)
		if err != nil {
			t.Errorf("ResolveDetail(%q, %+v) error = %v", tt.query, tt.opts, err)
			continue
		}
		var passed []string
		for _, p := range res.PassedOver {
			passed = append(passed, p.Version)
		}
		if res.Release.Version != tt.want || !slices.Equal(passed, tt.passed) {
			t.Errorf("ResolveDetail(%q, soak %s) = %s passing over %v; want %s passing over %v", tt.query, tt.opts.MinReleaseAge, res.Release.Version, passed, tt.want, tt.passed)
		}
	}
	res, _ := m.ResolveDetail("v1.13.x", compat.ResolveOptions{MinReleaseAge: 72 * time.Hour, Now: now})
	if why := res.PassedOver[2].Reason; !strings.Contains(why, "soaking") || !strings.Contains(why, "2026-12-04T05:17:00Z") {
		t.Errorf("reason for v1.13.10 = %q; want soaking until 2026-12-04T05:17:00Z", why)
	}
	if why := res.PassedOver[0].Reason; why != "broken" {
		t.Errorf("reason for v1.13.12 = %q; want broken", why)
	}
}

func TestFirstSeenMustBeRFC3339(t *testing.T) {
	t.Parallel()
	src := strings.Replace(soakMatrix, `"2026-11-20T05:17:00Z"`, `"2026-11-20"`, 1)
	_, err := compat.Parse("soak.yaml", []byte(src))
	if err == nil || !strings.Contains(err.Error(), "firstSeen") || !strings.Contains(err.Error(), "soak.yaml:") {
		t.Errorf("Parse(firstSeen 2026-11-20) error = %v; want one naming soak.yaml and firstSeen", err)
	}
}
