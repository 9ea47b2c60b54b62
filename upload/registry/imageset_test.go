package registry

import (
	"errors"
	"reflect"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

var (
	dA = "sha256:" + "a" + hex64[1:]
	dB = "sha256:" + "b" + hex64[1:]
)

func talosLock() *site.Lock {
	return &site.Lock{
		Schema: site.LockSchema, Talos: "v1.9.5",
		Kubernetes: site.Kubernetes{Version: "1.32.2"},
		Catalog:    "ghcr.io/siderolabs/extensions:v1.9.5",
		CoreImages: []site.Image{
			{Role: "installer-base", Ref: "ghcr.io/siderolabs/installer-base:v1.9.5"},
			{Role: "kubelet", Ref: "ghcr.io/siderolabs/kubelet:v1.32.2", Digest: dA},
			{Role: "kube-apiserver", Ref: "registry.k8s.io/kube-apiserver:v1.32.2"},
			{Role: "etcd", Ref: "gcr.io/etcd-development/etcd:v3.5.16"},
			{Role: "pause", Ref: "registry.k8s.io/pause:3.10"},
		},
		Profiles: []site.Profile{
			{Name: "worker", Installer: "factory.talos.dev/nocloud-installer/abc:v1.9.5", Extensions: []site.Extension{
				{Name: "siderolabs/qemu-guest-agent", Ref: "ghcr.io/siderolabs/qemu-guest-agent:9.2.0", Digest: dB},
			}},
			{Name: "gpu", Installer: "factory.talos.dev/nocloud-installer/def:v1.9.5", Extensions: []site.Extension{
				{Name: "siderolabs/qemu-guest-agent", Ref: "ghcr.io/siderolabs/qemu-guest-agent:9.2.0", Digest: dB},
				{Name: "siderolabs/nvidia-open-gpu-kernel-modules-production", Ref: "ghcr.io/siderolabs/nvidia-open-gpu-kernel-modules-production:570.124.06-v1.9.5"},
			}},
		},
	}
}

func TestImageSet(t *testing.T) {
	t.Parallel()
	got, err := ImageSet(talosLock(), []string{"reg.kyverno.io/kyverno/kyverno:v1.13.4", "nginx:1.27", "ghcr.io/siderolabs/kubelet:v1.32.2"})
	if err != nil {
		t.Fatalf("ImageSet = %v", err)
	}
	want := []Image{
		{Role: "installer-base", Ref: "ghcr.io/siderolabs/installer-base:v1.9.5", Source: SourceCore},
		{Role: "kubelet", Ref: "ghcr.io/siderolabs/kubelet:v1.32.2", Digest: dA, Source: SourceCore},
		{Role: "kube-apiserver", Ref: "registry.k8s.io/kube-apiserver:v1.32.2", Source: SourceCore},
		{Role: "etcd", Ref: "gcr.io/etcd-development/etcd:v3.5.16", Source: SourceCore},
		{Role: "pause", Ref: "registry.k8s.io/pause:3.10", Source: SourceCore},
		{Role: "extension", Ref: "ghcr.io/siderolabs/qemu-guest-agent:9.2.0", Digest: dB, Source: SourceExtension, Profiles: []string{"worker", "gpu"}},
		{Role: "extension", Ref: "ghcr.io/siderolabs/nvidia-open-gpu-kernel-modules-production:570.124.06-v1.9.5", Source: SourceExtension, Profiles: []string{"gpu"}},
		{Role: "installer", Ref: "factory.talos.dev/nocloud-installer/abc:v1.9.5", Source: SourceInstaller, Profiles: []string{"worker"}},
		{Role: "installer", Ref: "factory.talos.dev/nocloud-installer/def:v1.9.5", Source: SourceInstaller, Profiles: []string{"gpu"}},
		{Role: "extensions-catalog", Ref: "ghcr.io/siderolabs/extensions:v1.9.5", Source: SourceCatalog},
		{Role: "extra", Ref: "reg.kyverno.io/kyverno/kyverno:v1.13.4", Source: SourceExtra},
		{Role: "extra", Ref: "docker.io/library/nginx:1.27", Source: SourceExtra},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("ImageSet =\n%+v\nwant\n%+v", got, want)
	}
	if p := got[1].Pinned(); p != "ghcr.io/siderolabs/kubelet:v1.32.2@"+dA {
		t.Errorf("Pinned() = %q; want ref@digest", p)
	}
	if p := got[0].Pinned(); p != "ghcr.io/siderolabs/installer-base:v1.9.5" {
		t.Errorf("Pinned() without digest = %q; want the tagged ref", p)
	}
}

func TestImageSetErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		lock   *site.Lock
		extras []string
	}{
		{"bad extra", &site.Lock{}, []string{"Not A Ref"}},
		{"digests disagree", &site.Lock{CoreImages: []site.Image{
			{Ref: "ghcr.io/a/b:1", Digest: dA}, {Ref: "ghcr.io/a/b:1", Digest: dB}}}, nil},
		{"ref and digest disagree", &site.Lock{CoreImages: []site.Image{{Ref: "ghcr.io/a/b:1@" + dA, Digest: dB}}}, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := ImageSet(tc.lock, tc.extras); !errors.Is(err, fail.ErrUsage) {
				t.Errorf("ImageSet(%s) = %v; want a usage error", tc.name, err)
			}
		})
	}
}

func TestPlaceReportsUnmirrored(t *testing.T) {
	t.Parallel()
	set, err := ImageSet(talosLock(), nil)
	if err != nil {
		t.Fatal(err)
	}
	m, err := NewEndpointMap(site.RegistryConfig{Host: "10.0.0.5"})
	if err != nil {
		t.Fatal(err)
	}
	ps, err := Place(set, m)
	if err != nil {
		t.Fatal(err)
	}
	if len(ps) != len(set) {
		t.Fatalf("Place kept %d of %d images; want all, unmirrored included", len(ps), len(set))
	}
	var unmirrored []string
	for _, p := range ps {
		if p.Unmirrored {
			unmirrored = append(unmirrored, p.Ref)
		} else if p.Mirror == "" {
			t.Errorf("Place(%q): no mirror and not marked unmirrored", p.Ref)
		}
	}
	want := []string{"gcr.io/etcd-development/etcd:v3.5.16", "factory.talos.dev/nocloud-installer/abc:v1.9.5", "factory.talos.dev/nocloud-installer/def:v1.9.5"}
	if !reflect.DeepEqual(unmirrored, want) {
		t.Errorf("unmirrored = %v; want %v", unmirrored, want)
	}
}

func TestPinDigests(t *testing.T) {
	t.Parallel()
	lock := talosLock()
	rep := &Report{Images: []ImageReport{
		{Ref: "ghcr.io/siderolabs/installer-base:v1.9.5", Digest: dA, DigestSource: "upstream", Verified: true},
		{Ref: "registry.k8s.io/kube-apiserver:v1.32.2", Digest: dA, DigestSource: "upstream", Verified: false}, // not verified: left alone
		{Ref: "ghcr.io/siderolabs/kubelet:v1.32.2", Digest: dB, DigestSource: "upstream", Verified: true},      // lock has one: kept
		{Ref: "ghcr.io/siderolabs/nvidia-open-gpu-kernel-modules-production:570.124.06-v1.9.5", Digest: dB, DigestSource: "upstream", Verified: true},
	}}
	if n := PinDigests(lock, rep); n != 2 {
		t.Errorf("PinDigests = %d; want 2", n)
	}
	if got := lock.CoreImages[0].Digest; got != dA {
		t.Errorf("installer-base digest = %q; want %q", got, dA)
	}
	if got := lock.CoreImages[1].Digest; got != dA {
		t.Errorf("kubelet digest = %q; want the lock's %q kept", got, dA)
	}
	if got := lock.CoreImages[2].Digest; got != "" {
		t.Errorf("unverified kube-apiserver digest = %q; want none", got)
	}
	if e := lock.Profiles[1].Extensions[1]; e.Digest != dB || e.DigestStatus != "pinned" {
		t.Errorf("nvidia extension = %q/%q; want %q pinned", e.Digest, e.DigestStatus, dB)
	}
}
