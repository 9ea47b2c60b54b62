package machineconfig

import (
	"errors"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func resolve(t *testing.T, talos string, cfg *site.Config, profiles ...string) *site.Lock {
	t.Helper()
	m, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
	if err != nil {
		t.Fatal(err)
	}
	l, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: talos, Profiles: profiles})
	if err != nil {
		t.Fatal(err)
	}
	return l
}

func profileConfig(cfg *site.Config, name string) site.ProfileConfig {
	for _, p := range cfg.Profiles {
		if p.Name == name {
			return p
		}
	}
	return site.ProfileConfig{Name: name}
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
	val := NewValidator()
	tests := []struct {
		talos, profile string
		want, notWant  []string
	}{
		{"v1.12.x", "controlplane",
			[]string{"image: factory.talos.dev/nocloud-installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.12.11",
				"kind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  - url: http://10.0.20.10:5000",
				"name: ghcr.io\nendpoints:\n  - url: http://10.0.20.10:5010",
				"name: registry.k8s.io\nendpoints:\n  - url: http://10.0.20.10:5030",
				"kind: RegistryTLSConfig\nname: 10.0.20.10:5000\ninsecureSkipVerify: true"},
			[]string{"nvidia", "kernel:", "registries:"}},
		{"v1.11.x", "controlplane",
			[]string{"registries:\n    mirrors:\n      docker.io:\n        endpoints:\n          - http://10.0.20.10:5000"},
			[]string{"RegistryMirrorConfig", "RegistryTLSConfig"}},
		{"v1.12.x", "worker", []string{"nodeLabels:", "topology.kubernetes.io/zone: rack1"}, []string{"nvidia"}},
		{"v1.12.x", "gpu", []string{"- name: nvidia\n", "- name: nvidia_uvm", "- name: nvidia_drm", "- name: nvidia_modeset",
			"net.core.bpf_jit_harden: \"1\"", "vm.max_map_count: \"262144\"", "nodeTaints:", "nvidia.com/gpu: present:NoSchedule"}, nil},
		{"v1.13.x", "gpu", []string{"- name: nvidia_modeset"}, []string{"bpf_jit_harden"}},
		{"v1.9.x", "controlplane", []string{"image: factory.talos.dev/installer/ce4c980550dd2ab1b17bbf2b08801c7eb59418eafe8f279833297925d67c7515:v1.9.6"}, nil},
	}
	for _, tt := range tests {
		lock := resolve(t, tt.talos, cfg)
		patch, err := Generate(lock, profileConfig(cfg, tt.profile), Options{Mirrors: mirrors, Validator: val})
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

// exampleConfig is testdata/imgpipe.yaml with its patch files, as the CLI loads it.
func exampleConfig(t *testing.T) *site.Config {
	t.Helper()
	path := filepath.Join("..", "..", "testdata", "imgpipe.yaml")
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := site.ParseConfig(path, data)
	if err != nil {
		t.Fatal(err)
	}
	cfg.ResolvePaths(filepath.Dir(path))
	return cfg
}

func generateAll(t *testing.T, cfg *site.Config, lock *site.Lock, val *Validator) []*Patch {
	t.Helper()
	mirrors, err := registry.NewEndpointMap(cfg.Registries)
	if err != nil {
		t.Fatal(err)
	}
	var out []*Patch
	for _, pc := range cfg.Profiles {
		if _, ok := lock.Profile(pc.Name); !ok {
			continue
		}
		srcs, err := cfg.PatchSources(pc.Name)
		if err != nil {
			t.Fatal(err)
		}
		p, err := Generate(lock, pc, Options{Mirrors: mirrors, Patches: srcs, Validator: val})
		if err != nil {
			t.Fatalf("Generate(%s, %s) = %v; want a patch Talos accepts", lock.Talos, pc.Name, err)
		}
		out = append(out, p)
	}
	return out
}

// TestExampleProfilesPassTalosValidation: every profile of testdata/imgpipe.yaml, with
// the site's and the profiles' own patches, passes Talos validation at three releases
// (legacy registries at v1.9/v1.11, documents at v1.12; nocloud and metal).
func TestExampleProfilesPassTalosValidation(t *testing.T) {
	t.Parallel()
	cfg := exampleConfig(t)
	val := NewValidator()
	for _, tt := range []struct {
		query    string
		profiles []string
	}{
		{"v1.9.x", []string{"controlplane", "worker", "edge"}}, // gpu: talos ">=1.10"
		{"v1.11.x", nil},
		{"v1.12.x", nil},
	} {
		lock := resolve(t, tt.query, cfg, tt.profiles...)
		patches := generateAll(t, cfg, lock, val)
		if len(patches) != len(lock.Profiles) || len(patches) < 3 {
			t.Errorf("%s: %d profiles generated; want all %d resolved", tt.query, len(patches), len(lock.Profiles))
		}
	}
}

// TestExampleGolden pins the merged patches of testdata/imgpipe.yaml: for v1.12.x
// RegistryMirrorConfig documents and no machine.registries, for v1.11.x the reverse.
func TestExampleGolden(t *testing.T) {
	t.Parallel()
	cfg := exampleConfig(t)
	val := NewValidator()
	for _, tt := range []struct {
		query, golden string
		want, notWant string
	}{
		{"v1.12.x", "example-v1.12.yaml", "kind: RegistryMirrorConfig", "registries:"},
		{"v1.11.x", "example-v1.11.yaml", "registries:", "kind: RegistryMirrorConfig"},
	} {
		var b strings.Builder
		for _, p := range generateAll(t, cfg, resolve(t, tt.query, cfg), val) {
			b.WriteString("# ---- profile " + p.Profile + "\n" + p.YAML)
			if !strings.Contains(p.YAML, tt.want) || strings.Contains(p.YAML, tt.notWant) {
				t.Errorf("Generate(%s, %s): want %q and no %q:\n%s", tt.query, p.Profile, tt.want, tt.notWant, p.YAML)
			}
		}
		path := filepath.Join("testdata", tt.golden)
		if *update {
			if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		want, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		if b.String() != string(want) {
			t.Errorf("Generate(%s) differs from %s (go test -update to accept):\n%s", tt.query, path, b.String())
		}
	}
}

// TestOperatorSettings: the control plane carries the operator's API-server settings
// and the workers the inotify sysctls, merged with what imgpipe generates.
func TestOperatorSettings(t *testing.T) {
	t.Parallel()
	cfg := exampleConfig(t)
	lock := resolve(t, "v1.12.x", cfg)
	byName := map[string]*Patch{}
	for _, p := range generateAll(t, cfg, lock, NewValidator()) {
		byName[p.Profile] = p
	}
	for profile, wants := range map[string][]string{
		"controlplane": {"oidc-issuer-url: https://sso.lab.example.internal/realms/kubernetes", "oidc-client-id: kubernetes",
			"oidc-username-claim: preferred_username", "oidc-groups-claim: groups",
			"audit-policy-file: /etc/kubernetes/audit/policy.yaml", "audit-log-path: /var/log/kubernetes/audit/kube-apiserver.log",
			`audit-log-maxage: "7"`, `audit-log-maxbackup: "3"`, `audit-log-maxsize: "100"`,
			"hostPath: /var/etc/kubernetes/audit", "hostPath: /var/log/kubernetes/audit",
			"node.kubernetes.io/exclude-from-external-load-balancers: \"\"", "- 10.0.20.1", "image: factory.talos.dev/"},
		"worker": {`fs.inotify.max_user_watches: "1048576"`, `fs.inotify.max_user_instances: "8192"`, `vm.max_map_count: "262144"`, "- 10.0.20.1"},
		"gpu":    {`fs.inotify.max_user_watches: "1048576"`, "- name: nvidia_uvm", "nvidia.com/gpu: present:NoSchedule"},
	} {
		p := byName[profile]
		if p == nil {
			t.Fatalf("no patch for profile %s", profile)
		}
		for _, w := range wants {
			if !strings.Contains(p.YAML, w) {
				t.Errorf("profile %s: patch lacks %q:\n%s", profile, w, p.YAML)
			}
		}
	}
}

// TestTalosRefuses: what Talos refuses is a usage error naming the profile and field.
func TestTalosRefuses(t *testing.T) {
	t.Parallel()
	base := site.DefaultConfig()
	lock := resolve(t, "v1.12.x", base)
	val := NewValidator()
	tests := []struct {
		name    string
		edit    func(*site.ProfileConfig)
		mirrors site.RegistryConfig
		patch   string
		want    []string
		old     bool // at v1.11.x
	}{
		{name: "label key", edit: func(p *site.ProfileConfig) { p.Labels = map[string]string{"bad key!!": "x"} },
			want: []string{"node labels", `"bad key!!"`}},
		{name: "taint effect", edit: func(p *site.ProfileConfig) { p.Taints = map[string]string{"dedicated": "true:Bogus"} },
			want: []string{"node taints", `"Bogus"`}},
		{name: "sysctl name", edit: func(p *site.ProfileConfig) { p.Sysctls = map[string]string{"bogus name!": "1"} },
			want: []string{`machine.sysctls["bogus name!"]`}},
		{name: "sysctl root", patch: "machine:\n  sysctls:\n    foo.bar: \"1\"\n", want: []string{`machine.sysctls["foo.bar"]`}},
		{name: "mirror URL scheme", patch: "apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  - url: ftp://10.0.20.10:5000\n",
			want: []string{"RegistryMirrorConfig/docker.io", "scheme"}},
		{name: "mirror URL legacy", patch: "machine:\n  registries:\n    mirrors:\n      quay.io:\n        endpoints: [\"10.0.20.10:5020\"]\n",
			want: []string{"registry mirror quay.io endpoints[0]"}},
		{name: "mirror URL credentials", patch: "machine:\n  registries:\n    mirrors:\n      quay.io:\n        endpoints: [\"https://u:p@10.0.20.10:5020\"]\n",
			want: []string{"registry mirror quay.io endpoints[0]", "credentials"}},
		{name: "document too new", patch: "apiVersion: v1alpha1\nkind: RegistryMirrorConfig\nname: docker.io\nendpoints:\n  - url: https://10.0.20.10:5000\n",
			old: true, want: []string{"RegistryMirrorConfig documents exist from Talos 1.12.0"}},
		{name: "bad patch file", patch: "machine: [", want: []string{"bad.yaml:"}},
	}
	old := resolve(t, "v1.11.x", base)
	for _, tt := range tests {
		pc := profileConfig(base, "worker")
		if tt.edit != nil {
			tt.edit(&pc)
		}
		opts := Options{Validator: val}
		if tt.patch != "" {
			opts.Patches = []site.PatchSource{{Name: "bad.yaml", YAML: []byte(tt.patch)}}
		}
		l := lock
		if tt.old {
			l = old
		}
		_, err := Generate(l, pc, opts)
		var ip *InvalidPatchError
		if !errors.As(err, &ip) || !errors.Is(err, ErrInvalidPatch) || !errors.Is(err, fail.ErrUsage) {
			t.Errorf("%s: Generate = %v; want *InvalidPatchError, a usage error", tt.name, err)
			continue
		}
		for _, w := range append([]string{"profile worker"}, tt.want...) {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("%s: Generate = %q; want it to name %q", tt.name, err, w)
			}
		}
	}
}

func TestCheckSysctl(t *testing.T) {
	t.Parallel()
	for name, ok := range map[string]bool{
		"net.core.somaxconn": true, "fs.inotify.max_user_watches": true, "net/ipv4/ip_forward": true,
		"net.ipv4.conf.eth0/100.rp_filter": true, "kernel": false, "foo.bar": false, "net..core": false,
		"net.core.": false, "vm.max map": false, "": false,
	} {
		if err := checkSysctl(name); (err == nil) != ok {
			t.Errorf("checkSysctl(%q) = %v; want ok=%v", name, err, ok)
		}
	}
}

func FuzzCheckEndpoint(f *testing.F) {
	for _, s := range []string{"http://10.0.20.10:5000", "https://harbor.lab/v2/proxy/ghcr.io", "ftp://x", "10.0.0.1:5000", "https://u:p@h"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if checkEndpoint(s) == nil && !strings.HasPrefix(s, "http") {
			t.Errorf("checkEndpoint(%q) = nil for a non-http URL", s)
		}
	})
}
