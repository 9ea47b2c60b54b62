package verify

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// TestItem3PolicyMatchingIsCanonical is issue 12 item 3: spellings of a registry host
// that reach the same registry (upper case, the default port, Docker Hub's aliases)
// fall under the same policy instead of escaping it as "skipped".
func TestItem3PolicyMatchingIsCanonical(t *testing.T) {
	t.Parallel()
	docker := Policy{Name: "hub", Match: []string{"docker.io/library/*"}, AllowUnsigned: true}
	index := Policy{Name: "index", Match: []string{"INDEX.docker.io:443/library/*"}, AllowUnsigned: true}
	sidero := SideroPolicy()
	v, err := New([]Policy{sidero, docker})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		ref, role string
		want      string // policy name
	}{
		{"GHCR.IO/siderolabs/installer:v1.9.5", "installer", PolicySidero},
		{"ghcr.io:443/siderolabs/kubelet:v1.32.3", "kubelet", PolicySidero},
		{"Ghcr.Io:443/siderolabs/qemu-guest-agent:9.2.0", RoleExtension, PolicySidero},
		{"index.docker.io/library/nginx:1", "core", "hub"},
		{"registry-1.docker.io/library/nginx:1", "core", "hub"},
		{"nginx:1", "core", "hub"},
	}
	for _, tt := range tests {
		rep := v.Plan([]Image{{Ref: tt.ref, Role: tt.role}})
		if got := rep.Results[0]; got.Verdict == Skipped || got.Verdict == Failed || got.Policy != tt.want {
			t.Errorf("Plan(%q) = %s under %q (%s); want it under %q", tt.ref, got.Verdict, got.Policy, got.Reason, tt.want)
		}
	}
	ref, err := canonicalReference("docker.io/library/nginx:1")
	if err != nil {
		t.Fatal(err)
	}
	if !index.Matches(ref) {
		t.Errorf("Policy{Match: %q}.Matches(docker.io/library/nginx:1) = false; want true (patterns are canonical too)", index.Match[0])
	}
}

// TestItem2LockDigestConflicts is issue 12 item 2: a reference whose @digest disagrees
// with its digest field, and a tag pinned to two digests, are usage errors for verify,
// as they are for images and mirror (one shared rule, site.ImagePins), even for a lock
// that never went through site.ParseLock.
func TestItem2LockDigestConflicts(t *testing.T) {
	t.Parallel()
	const (
		a = "sha256:aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
		b = "sha256:bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	)
	ext := func(ref, digest string) site.Extension {
		return site.Extension{Name: "siderolabs/qemu-guest-agent", Ref: ref, Digest: digest, DigestStatus: "pinned"}
	}
	tests := []struct {
		name    string
		profile [][]site.Extension
		want    string
	}{
		{"ref digest disagrees with digest field",
			[][]site.Extension{{ext("ghcr.io/siderolabs/qemu-guest-agent:9.2.0@"+a, b)}}, "names digest"},
		{"one tag pinned to two digests",
			[][]site.Extension{{ext("ghcr.io/siderolabs/qemu-guest-agent:9.2.0", a)}, {ext("GHCR.IO/siderolabs/qemu-guest-agent:9.2.0", b)}}, "pinned to"},
	}
	for _, tt := range tests {
		l := &site.Lock{Schema: site.LockSchema, Talos: "v1.9.5"}
		for i, exts := range tt.profile {
			l.Profiles = append(l.Profiles, site.Profile{Name: string(rune('a' + i)), Extensions: exts})
		}
		if imgs, err := ImagesFromLock(l); !errors.Is(err, fail.ErrUsage) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("ImagesFromLock(%s) = %+v, %v; want a usage error containing %q", tt.name, imgs, err, tt.want)
		}
		rep, err := CheckLock(context.Background(), l, &site.Config{}, SiteOptions{DryRun: true})
		if !errors.Is(err, fail.ErrUsage) || rep != nil {
			t.Errorf("CheckLock(%s) = %v, %v; want no report and a usage error", tt.name, rep, err)
		}
	}
}
