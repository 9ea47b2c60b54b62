package site_test

import (
	"bytes"
	"errors"
	"github.com/imgpipe/imgpipe/internal/testutil"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/yamlx"
	"github.com/imgpipe/imgpipe/site"
)

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func TestParseConfigFull(t *testing.T) {
	t.Parallel()
	c, err := site.ParseConfig("imgpipe.yaml", readTestdata(t, "imgpipe.yaml"))
	if err != nil {
		t.Fatalf("ParseConfig(testdata/imgpipe.yaml) = %v; want nil", err)
	}
	if c.Version != 1 || c.Talos != "v1.9.x" || c.Kubernetes != "1.32" {
		t.Errorf("ParseConfig: version/talos/kubernetes = %d/%q/%q; want 1/v1.9.x/1.32", c.Version, c.Talos, c.Kubernetes)
	}
	// Defaults: the trailing slash goes, the registry is kept as given.
	if c.Factory.URL != "https://factory.example.internal" || c.Factory.Registry != "factory.example.internal:8443" {
		t.Errorf("ParseConfig: factory = %+v", c.Factory)
	}
	names := []string{}
	for _, p := range c.Profiles {
		names = append(names, p.Name)
	}
	if want := []string{"controlplane", "worker", "gpu", "rpi"}; !reflect.DeepEqual(names, want) {
		t.Fatalf("ParseConfig: profiles = %v; want %v", names, want)
	}
	worker, gpu, rpi := c.Profiles[1], c.Profiles[2], c.Profiles[3]
	if worker.Platform != "nocloud" || worker.Arch != "amd64" || worker.Role != "worker" {
		t.Errorf("worker defaults = %s/%s/%s; want nocloud/amd64/worker", worker.Platform, worker.Arch, worker.Role)
	}
	if c.Profiles[0].Role != "controlplane" {
		t.Errorf("controlplane role = %q; want controlplane", c.Profiles[0].Role)
	}
	if len(worker.Meta) != 1 || worker.Meta[0].Key != 10 || worker.Meta[0].Value != `{"externalIPs":["1.2.3.4"]}` {
		t.Errorf("worker meta = %+v; want key 10 with the JSON value", worker.Meta)
	}
	if !worker.Extensions[1].Optional || worker.Extensions[0].Optional {
		t.Errorf("worker extensions = %+v; want only nfs-utils optional", worker.Extensions)
	}
	if gpu.NVIDIADriver != "550.x" || gpu.GPU == nil || !*gpu.GPU || gpu.SecureBoot == nil || !gpu.SecureBoot.Enabled ||
		gpu.SecureBoot.EnrollKeys != "if-safe" || gpu.Bootloader != "sd-boot" || gpu.Platform != "metal" {
		t.Errorf("gpu profile = %+v", gpu)
	}
	if rpi.Overlay == nil || rpi.Overlay.Name != "rpi_generic" || rpi.Overlay.Options["configTxtAppend"] != "dtoverlay=disable-bt" || rpi.Arch != "arm64" {
		t.Errorf("rpi overlay = %+v", rpi.Overlay)
	}
	r := c.Registries
	if r.Host != "10.0.20.10" || r.Mode != "auto" || !r.Insecure || len(r.Mirrors) != 2 ||
		r.Mirrors["reg.kyverno.io"].Endpoint != "10.0.20.10:5040" || r.Mirrors["quay.io"].Insecure == nil || *r.Mirrors["quay.io"].Insecure {
		t.Errorf("registries = %+v", r)
	}
	if len(c.Images) != 2 {
		t.Errorf("images = %v; want 2", c.Images)
	}
	p := c.Proxmox
	if p.URL == "" || p.TokenFile == "" || !p.Shared || p.ISOMethod != "download-url" || len(p.Nodes) != 3 ||
		p.Template.VMIDBase != 9000 || p.Template.MemoryMiB != 8192 || p.Keep != 3 {
		t.Errorf("proxmox = %+v", p)
	}
	if len(c.Verify.Policies) != 4 || c.Verify.Policies[0].Identities[0].Issuer != "https://accounts.google.com" || !c.Verify.Policies[3].AllowUnsigned {
		t.Errorf("verify = %+v", c.Verify)
	}
}

func TestParseConfigErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string // the first names file:line
	}{
		{"unknown-key.yaml", []string{"imgpipe.yaml:6:", "platfrom", "unknown field"}},
		{"bad-platform.yaml", []string{"imgpipe.yaml:5:", "profiles[1].platform", `"aws"`, "metal, nocloud"}},
		{"dup-profile.yaml", []string{"imgpipe.yaml:6:", "profiles[1].name", "declared twice"}},
		{"bad-nvidia-driver.yaml", []string{"imgpipe.yaml:7:", "profiles[0].nvidiaDriver", "newest please"}},
		{"missing-version.yaml", []string{"imgpipe.yaml:2:", "version", "set version: 1"}},
		{"wrong-version.yaml", []string{"imgpipe.yaml:1:", "version 2"}},
		{"no-profiles.yaml", []string{"imgpipe.yaml:1:", "no profiles"}},
		{"bad-profile-name.yaml", []string{"imgpipe.yaml:3:", "profiles[0].name", "GPU_Nodes"}},
		{"dup-extension.yaml", []string{"imgpipe.yaml:6:", "profiles[0].extensions[1].name", "listed twice"}},
		{"bad-extension-name.yaml", []string{"imgpipe.yaml:5:", "profiles[0].extensions[0].name"}},
		{"bad-factory-url.yaml", []string{"imgpipe.yaml:3:", "factory.url"}},
		{"bad-mirror.yaml", []string{"imgpipe.yaml:8:", "registries.mirrors.docker.io.mode", "imgpipe.yaml:7:", "endpoint is required"}},
		{"bad-policy.yaml", []string{"imgpipe.yaml:6:", "verify.policies[0]", "allowUnsigned"}},
		{"bad-kernel-arg.yaml", []string{"imgpipe.yaml:5:", "profiles[0].extraKernelArgs[0]"}},
		{"bad-overlay.yaml", []string{"imgpipe.yaml:5:", "profiles[0].overlay", "needs a name"}},
		{"bad-meta-key.yaml", []string{"imgpipe.yaml:5:", "300"}},
		{"bad-talos-constraint.yaml", []string{"imgpipe.yaml:4:", "profiles[0].talos"}},
		{"bad-enrollkeys.yaml", []string{"imgpipe.yaml:6:", "profiles[0].secureboot.enrollKeys", `"always"`}},
		{"empty.yaml", []string{"imgpipe.yaml: ", "empty document"}},
		{"two-documents.yaml", []string{"imgpipe.yaml:", "second YAML document"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			c, err := site.ParseConfig("imgpipe.yaml", readTestdata(t, filepath.Join("invalid", tt.file)))
			if err == nil {
				t.Fatalf("ParseConfig(%q) = %+v, nil; want an error", tt.file, c)
			}
			if !errors.Is(err, fail.ErrUsage) {
				t.Errorf("ParseConfig(%q) = %v; want errors.Is(err, fail.ErrUsage)", tt.file, err)
			}
			if tt.file == "empty.yaml" && !errors.Is(err, yamlx.ErrEmpty) {
				t.Errorf("ParseConfig(%q) = %v; want errors.Is(err, yamlx.ErrEmpty)", tt.file, err)
			}
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Errorf("ParseConfig(%q) = %v; want a *yamlx.Error inside", tt.file, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseConfig(%q) = %q; want it to contain %q", tt.file, err, w)
				}
			}
		})
	}
}

// TestParseConfigAllErrors: one bad file reports every problem, not just the first.
func TestParseConfigAllErrors(t *testing.T) {
	t.Parallel()
	data := []byte("version: 1\nprofiles:\n  - name: a\n    platform: aws\n    arch: s390x\n  - name: a\n")
	_, err := site.ParseConfig("imgpipe.yaml", data)
	for _, w := range []string{"imgpipe.yaml:4: profiles[0].platform", "imgpipe.yaml:5: profiles[0].arch", "imgpipe.yaml:6: profiles[1].name"} {
		if err == nil || !strings.Contains(err.Error(), w) {
			t.Errorf("ParseConfig(three problems) = %v; want it to contain %q", err, w)
		}
	}
}

func TestDefaultConfig(t *testing.T) {
	t.Parallel()
	c := site.DefaultConfig()
	if c.Version != 1 || c.Factory.URL != site.DefaultFactory || c.Factory.Registry != "factory.talos.dev" {
		t.Errorf("DefaultConfig() = version %d, factory %+v", c.Version, c.Factory)
	}
	if len(c.Profiles) != 3 {
		t.Fatalf("DefaultConfig() has %d profiles; want 3", len(c.Profiles))
	}
	for _, p := range c.Profiles {
		if p.Platform != "nocloud" || p.Arch != "amd64" {
			t.Errorf("DefaultConfig() profile %s = %s-%s; want nocloud-amd64", p.Name, p.Platform, p.Arch)
		}
	}
	// The default site is itself a valid imgpipe.yaml.
	data, err := yaml.Marshal(c)
	if err != nil {
		t.Fatal(err)
	}
	back, err := site.ParseConfig("default.yaml", data)
	if err != nil {
		t.Fatalf("ParseConfig(yaml.Marshal(DefaultConfig())) = %v; want nil\n%s", err, data)
	}
	if !reflect.DeepEqual(back, c) {
		t.Errorf("ParseConfig(yaml.Marshal(DefaultConfig())) = %+v; want %+v", back, c)
	}
}

func FuzzParseConfig(f *testing.F) {
	testutil.SeedFiles(f, "testdata/*.yaml", "testdata/invalid/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := site.ParseConfig("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, fail.ErrUsage) {
				t.Fatalf("ParseConfig = %v; want errors.Is(err, fail.ErrUsage)", err)
			}
			return
		}
		// An accepted config, written back out, is accepted again and means the same.
		out, err := yaml.Marshal(c)
		if err != nil {
			t.Fatalf("yaml.Marshal(ParseConfig(x)) = %v", err)
		}
		c2, err := site.ParseConfig("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("ParseConfig(yaml.Marshal(ParseConfig(x))) = %v; want nil\n%s", err, out)
		}
		// Compare encodings: nil and empty lists are the same config (yaml.v3 also
		// drops null list items, so "extensions: [~]" parses to an empty list).
		out2, err := yaml.Marshal(c2)
		if err != nil {
			t.Fatalf("yaml.Marshal = %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("config changed across a round trip:\n%s\n---\n%s", out, out2)
		}
	})
}

func TestDefaultRole(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, want string }{
		{"controlplane", "controlplane"},
		{"control-plane-arm", "controlplane"},
		{"cp", "controlplane"},
		{"cp1", "controlplane"},
		{"cp-arm64", "controlplane"},
		{"cpu-heavy", "worker"},
		{"cpus", "worker"},
		{"worker", "worker"},
		{"gpu", "worker"},
	}
	for _, tt := range tests {
		c, err := site.ParseConfig("imgpipe.yaml", []byte("version: 1\nprofiles:\n  - name: "+tt.name+"\n"))
		if err != nil {
			t.Fatalf("ParseConfig(profile %q) = %v", tt.name, err)
		}
		if got := c.Profiles[0].Role; got != tt.want {
			t.Errorf("ParseConfig(profile %q).Role = %q; want %q", tt.name, got, tt.want)
		}
	}
}
