package registry

import (
	"errors"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

func ptr[T any](v T) *T { return &v }

func TestMirrorRef(t *testing.T) {
	t.Parallel()
	site5 := site.RegistryConfig{Host: "10.0.0.5", Insecure: true}
	tests := []struct {
		name    string
		cfg     site.RegistryConfig
		ref     string
		want    string
		wantEP  Endpoint
		wantErr error
	}{
		{"ghcr default port", site5, "ghcr.io/siderolabs/kubelet:v1.32.2",
			"10.0.0.5:5010/siderolabs/kubelet:v1.32.2", Endpoint{Upstream: "ghcr.io", Host: "10.0.0.5:5010", Mode: ModeAuto, Insecure: true}, nil},
		{"docker hub short name gets library/", site5, "nginx:1.27",
			"10.0.0.5:5000/library/nginx:1.27", Endpoint{Upstream: "docker.io", Host: "10.0.0.5:5000", Mode: ModeAuto, Insecure: true}, nil},
		{"docker.io alias", site5, "index.docker.io/library/busybox@sha256:" + hex64,
			"10.0.0.5:5000/library/busybox@sha256:" + hex64, Endpoint{Upstream: "docker.io", Host: "10.0.0.5:5000", Mode: ModeAuto, Insecure: true}, nil},
		{"registry.k8s.io", site5, "registry.k8s.io/kube-apiserver:v1.32.2",
			"10.0.0.5:5030/kube-apiserver:v1.32.2", Endpoint{Upstream: "registry.k8s.io", Host: "10.0.0.5:5030", Mode: ModeAuto, Insecure: true}, nil},
		{"quay", site5, "quay.io/cilium/cilium:v1.16.0",
			"10.0.0.5:5020/cilium/cilium:v1.16.0", Endpoint{Upstream: "quay.io", Host: "10.0.0.5:5020", Mode: ModeAuto, Insecure: true}, nil},
		{"kyverno tag and digest", site5, "reg.kyverno.io/kyverno/kyverno:v1.13.0@sha256:" + hex64,
			"10.0.0.5:5040/kyverno/kyverno:v1.13.0@sha256:" + hex64, Endpoint{Upstream: "reg.kyverno.io", Host: "10.0.0.5:5040", Mode: ModeAuto, Insecure: true}, nil},
		{"gcr.io has no mirror", site5, "gcr.io/etcd-development/etcd:v3.5.16", "", Endpoint{}, ErrNoMirror},
		{"factory has no mirror", site5, "factory.talos.dev/metal-installer/abc:v1.9.0", "", Endpoint{}, ErrNoMirror},
		{"mirror override with mode", site.RegistryConfig{Host: "h", Mirrors: map[string]site.MirrorConfig{
			"ghcr.io": {Endpoint: "https://cache.lan:8443", Mode: "warm", Insecure: ptr(false)}}},
			"ghcr.io/siderolabs/installer:v1.9.5", "cache.lan:8443/siderolabs/installer:v1.9.5",
			Endpoint{Upstream: "ghcr.io", Host: "cache.lan:8443", Mode: ModeWarm}, nil},
		{"mirror added for gcr.io", site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{
			"gcr.io": {Endpoint: "http://10.0.0.5:5050", Mode: "push"}}},
			"gcr.io/etcd-development/etcd:v3.5.16", "10.0.0.5:5050/etcd-development/etcd:v3.5.16",
			Endpoint{Upstream: "gcr.io", Host: "10.0.0.5:5050", Mode: ModePush, Insecure: true}, nil},
		{"overridePath takes everything else", site.RegistryConfig{OverridePath: "http://harbor.lan:80/v2", Mode: "push"},
			"docker.io/library/nginx:1.27", "harbor.lan:80/docker.io/library/nginx:1.27",
			Endpoint{Upstream: "docker.io", Host: "harbor.lan:80", Prefix: "docker.io", Mode: ModePush, Insecure: true}, nil},
		{"overridePath with project prefix", site.RegistryConfig{OverridePath: "harbor.lan/proxy"},
			"factory.talos.dev/metal-installer/abc:v1.9.0", "harbor.lan/proxy/factory.talos.dev/metal-installer/abc:v1.9.0",
			Endpoint{Upstream: "factory.talos.dev", Host: "harbor.lan", Prefix: "proxy/factory.talos.dev", Mode: ModeAuto}, nil},
		{"bad reference", site5, "ghcr.io/UPPER/case:x", "", Endpoint{}, fail.ErrUsage},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			m, err := NewEndpointMap(tc.cfg)
			if err != nil {
				t.Fatalf("NewEndpointMap(%+v) = %v", tc.cfg, err)
			}
			got, ep, err := m.MirrorRef(tc.ref)
			if tc.wantErr != nil {
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("MirrorRef(%q) error = %v; want %v", tc.ref, err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("MirrorRef(%q) = %v", tc.ref, err)
			}
			if got != tc.want || ep != tc.wantEP {
				t.Errorf("MirrorRef(%q) = %q, %+v; want %q, %+v", tc.ref, got, ep, tc.want, tc.wantEP)
			}
		})
	}
}

const hex64 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

func TestNewEndpointMapErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		cfg  site.RegistryConfig
	}{
		{"host with port", site.RegistryConfig{Host: "10.0.0.5:5000"}},
		{"bad mode", site.RegistryConfig{Host: "h", Mode: "mirror"}},
		{"bad mirror mode", site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{"ghcr.io": {Endpoint: "h:1", Mode: "copy"}}}},
		{"empty endpoint", site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{"ghcr.io": {}}}},
		{"bad scheme", site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{"ghcr.io": {Endpoint: "ftp://h:1"}}}},
		{"upstream is a path", site.RegistryConfig{Mirrors: map[string]site.MirrorConfig{"ghcr.io/x": {Endpoint: "h:1"}}}},
		{"override with query", site.RegistryConfig{OverridePath: "http://h:1/?x=1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := NewEndpointMap(tc.cfg); !errors.Is(err, fail.ErrUsage) {
				t.Errorf("NewEndpointMap(%+v) = %v; want a usage error", tc.cfg, err)
			}
		})
	}
}

func TestEndpointMapDefaults(t *testing.T) {
	t.Parallel()
	m, err := NewEndpointMap(site.RegistryConfig{Host: "reg.lan", Mode: "warm"})
	if err != nil {
		t.Fatal(err)
	}
	eps := m.Endpoints()
	if len(eps) != len(DefaultPorts()) {
		t.Fatalf("Endpoints() = %d endpoints; want %d", len(eps), len(DefaultPorts()))
	}
	for _, ep := range eps {
		if ep.Mode != ModeWarm {
			t.Errorf("endpoint %s mode = %q; want warm from registries.mode", ep.Upstream, ep.Mode)
		}
	}
	if pm := m.WithMode(ModePush); pm.Endpoints()[0].Mode != ModePush || m.Endpoints()[0].Mode != ModeWarm {
		t.Errorf("WithMode(push) must change the copy only")
	}
	empty, _ := NewEndpointMap(site.RegistryConfig{})
	if !empty.Empty() || m.Empty() {
		t.Errorf("Empty() = %v, %v; want true for no config, false with a host", empty.Empty(), m.Empty())
	}
}

func FuzzParseRef(f *testing.F) {
	for _, s := range []string{"nginx", "nginx:1.27", "ghcr.io/siderolabs/kubelet:v1.32.2", "localhost:5000/a/b@sha256:" + hex64,
		"registry.k8s.io/pause:3.10@sha256:" + hex64, "factory.talos.dev/metal-installer/376567988ad3:v1.9.0", "a/b:c@d", ":", "@"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := ParseRef(s)
		if err != nil {
			if !errors.Is(err, fail.ErrUsage) {
				t.Fatalf("ParseRef(%q) error %v is not a usage error", s, err)
			}
			return
		}
		// A parsed reference renders to something that parses to itself.
		again, err := ParseRef(r.String())
		if err != nil || again != r {
			t.Fatalf("ParseRef(%q) = %+v; reparsing %q = %+v, %v", s, r, r.String(), again, err)
		}
	})
}
