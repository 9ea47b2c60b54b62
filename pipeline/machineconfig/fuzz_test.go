package machineconfig

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/siderolabs/talos/pkg/machinery/config"
	"github.com/siderolabs/talos/pkg/machinery/config/generate/secrets"

	"github.com/imgpipe/imgpipe/site"
)

// FuzzMerge feeds operator patches (seeded from testdata/patches and the goldens)
// through the merge: it must return a patch or an *InvalidPatchError, never panic,
// and a merged patch must load with Talos's config loader.
func FuzzMerge(f *testing.F) {
	for _, glob := range []string{"../../testdata/patches/*.yaml", "testdata/*.yaml"} {
		files, _ := filepath.Glob(glob)
		for _, p := range files {
			if b, err := os.ReadFile(p); err == nil {
				f.Add(b)
			}
		}
	}
	f.Add([]byte("machine:\n  nodeLabels:\n    a: \"\"\n"))
	f.Add([]byte("- op: add\n  path: /machine/x\n  value: 1\n"))
	gen := []byte("machine:\n  install:\n    image: ghcr.io/siderolabs/installer:v1.12.0\n")
	f.Fuzz(func(t *testing.T, patch []byte) {
		out, _, err := merge("fuzz", Target{Talos: "v1.12.0"}, gen, []site.PatchSource{{Name: "fuzz.yaml", YAML: patch}})
		if err != nil {
			return
		}
		if err := Validate(out); err != nil {
			t.Errorf("merge(%q) = %q, which Talos cannot load: %v", patch, out, err)
		}
	})
}

// BenchmarkValidate is one profile's Talos validation with a warm Validator (the
// secrets bundle cached), which is what every profile after the first costs.
func BenchmarkValidate(b *testing.B) {
	v := NewValidator()
	t := Target{Talos: "v1.12.11", Kubernetes: "1.35.4", Role: "controlplane", Platform: "nocloud"}
	patch := []byte("machine:\n  install:\n    image: ghcr.io/siderolabs/installer:v1.12.11\n")
	if err := v.Validate("bench", t, patch); err != nil {
		b.Fatal(err)
	}
	for b.Loop() {
		if err := v.Validate("bench", t, patch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkValidateCold includes making the secrets bundle (the first profile).
func BenchmarkValidateCold(b *testing.B) {
	t := Target{Talos: "v1.12.11", Kubernetes: "1.35.4", Role: "controlplane", Platform: "nocloud"}
	patch := []byte("machine:\n  install:\n    image: ghcr.io/siderolabs/installer:v1.12.11\n")
	for b.Loop() {
		if err := NewValidator().Validate("bench", t, patch); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkSecretsBundle compares the throwaway secrets of the Validator (1.6
// contract, ECDSA service-account key) with those of the lock's contract (RSA 4096
// from 1.7). Run the two interleaved: see the README's performance table.
func BenchmarkSecretsBundle(b *testing.B) {
	for _, tc := range []struct {
		name string
		vc   *config.VersionContract
	}{{"ecdsa-1.6", config.TalosVersion1_6}, {"rsa-1.12", config.TalosVersion1_12}} {
		b.Run(tc.name, func(b *testing.B) {
			for b.Loop() {
				if _, err := secrets.NewBundle(secrets.NewFixedClock(time.Now()), tc.vc); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
