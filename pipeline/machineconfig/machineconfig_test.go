package machineconfig

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

func resolve(t *testing.T, talos string, cfg *site.Config) *site.Lock {
	t.Helper()
	m, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
	if err != nil {
		t.Fatal(err)
	}
	l, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: talos})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func TestGenerate(t *testing.T) {
	t.Parallel()
	cfg := site.DefaultConfig()
	cfg.Profiles[1].Labels = map[string]string{"topology.kubernetes.io/zone": "rack1"}
	cfg.Profiles[2].Taints = map[string]string{"nvidia.com/gpu": "present:NoSchedule"}
	cfg.Profiles[2].Sysctls = map[string]string{"vm.max_map_count": "262144"}
	mirrors, err := registry.NewEndpointMap(site.RegistryConfig{Host: "10.0.20.10", Insecure: true})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		talos, profile string
		want, notWant  []string
	}{
		{"v1.12.x", "controlplane",
			[]string{"image: factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.12.11",
				"docker.io:", "- http://10.0.20.10:5000", "ghcr.io:", "- http://10.0.20.10:5010", "registry.k8s.io:", "- http://10.0.20.10:5030"},
			[]string{"nvidia", "kernel:"}},
		{"v1.12.x", "worker", []string{"nodeLabels:", "topology.kubernetes.io/zone: rack1"}, []string{"nvidia"}},
		{"v1.12.x", "gpu", []string{"- name: nvidia\n", "- name: nvidia_uvm", "- name: nvidia_drm", "- name: nvidia_modeset",
			"net.core.bpf_jit_harden: \"1\"", "vm.max_map_count: \"262144\"", "nodeTaints:", "nvidia.com/gpu: present:NoSchedule"}, nil},
		{"v1.13.x", "gpu", []string{"- name: nvidia_modeset"}, []string{"bpf_jit_harden"}},
		{"v1.9.x", "controlplane", []string{"image: factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6"}, nil},
	}
	for _, tt := range tests {
		lock := resolve(t, tt.talos, cfg)
		var pc site.ProfileConfig
		for _, p := range cfg.Profiles {
			if p.Name == tt.profile {
				pc = p
			}
		}
		patch, err := Generate(lock, pc, Options{Mirrors: mirrors})
		if err != nil {
			t.Fatalf("Generate(%s, %s) = %v", tt.talos, tt.profile, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(patch.YAML, w) {
				t.Errorf("Generate(%s, %s) patch lacks %q:\n%s", tt.talos, tt.profile, w, patch.YAML)
			}
		}
		for _, w := range tt.notWant {
			if strings.Contains(patch.YAML, w) {
				t.Errorf("Generate(%s, %s) patch has %q:\n%s", tt.talos, tt.profile, w, patch.YAML)
			}
		}
	}
}

func TestGenerateOverridePath(t *testing.T) {
	t.Parallel()
	mirrors, err := registry.NewEndpointMap(site.RegistryConfig{OverridePath: "harbor.lab:443/proxy"})
	if err != nil {
		t.Fatal(err)
	}
	// v1.9 still pulls etcd from gcr.io, which has no default port: the override layout covers it.
	lock := resolve(t, "v1.9.x", site.DefaultConfig())
	patch, err := Generate(lock, site.DefaultConfig().Profiles[0], Options{Mirrors: mirrors})
	if err != nil {
		t.Fatal(err)
	}
	for _, w := range []string{"overridePath: true", "- https://harbor.lab:443/v2/proxy/ghcr.io", "- https://harbor.lab:443/v2/proxy/registry.k8s.io", "gcr.io:"} {
		if !strings.Contains(patch.YAML, w) {
			t.Errorf("overridePath layout: patch lacks %q:\n%s", w, patch.YAML)
		}
	}
}

func TestValidateRejectsInvalid(t *testing.T) {
	t.Parallel()
	for _, bad := range []string{
		"machine:\n  install:\n    imagee: x\n",      // unknown field
		"machine:\n  kernel:\n    modules: nvidia\n", // wrong type
		"machine:\n  sysctls:\n    - a\n",            // wrong type
	} {
		if err := Validate([]byte(bad)); !errors.Is(err, ErrInvalidPatch) {
			t.Errorf("Validate(%q) = %v; want ErrInvalidPatch", bad, err)
		}
	}
	if err := Validate([]byte("machine:\n  install:\n    image: ghcr.io/siderolabs/installer:v1.9.6\n")); err != nil {
		t.Errorf("Validate(valid patch) = %v; want nil", err)
	}
}

func TestGenerateUnknownProfile(t *testing.T) {
	t.Parallel()
	lock := resolve(t, "v1.12.x", site.DefaultConfig())
	if _, err := Generate(lock, site.ProfileConfig{Name: "nope"}, Options{}); err == nil {
		t.Error("Generate(unknown profile) = nil; want error")
	}
}
