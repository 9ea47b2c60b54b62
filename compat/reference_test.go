package compat_test

import (
	"github.com/imgpipe/imgpipe/internal/testutil"
	"os"
	"regexp"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	imgpipe "github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
)

// reference is the part of talos-data.yaml (testdata/reference, copied from
// shared/reference) these tests compare with.
type reference struct {
	TalosVersions []struct {
		Version           string `yaml:"version"`
		Prerelease        bool   `yaml:"prerelease"`
		DefaultKubernetes string `yaml:"default_kubernetes"`
	} `yaml:"talos_versions"`
	TalosMinors []struct {
		Minor     string   `yaml:"minor"`
		Supported []string `yaml:"kubernetes_supported_minors_code"`
	} `yaml:"talos_minors"`
	Extensions []struct {
		TalosVersion string `yaml:"talos_version"`
		Extensions   map[string]struct {
			Tag    string `yaml:"tag"`
			Digest string `yaml:"digest"`
		} `yaml:"extensions"`
	} `yaml:"extensions_by_talos_version"`
}

func loadReference(t *testing.T) *reference {
	t.Helper()
	data, err := os.ReadFile(testutil.ReferencePath(t, "talos-data.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var ref reference
	if err := yaml.Unmarshal(data, &ref); err != nil {
		t.Fatalf("decoding talos-data.yaml: %v", err)
	}
	return &ref
}

// watched are the extensions whose tags the acceptance criteria name, in every
// naming era (unsuffixed NVIDIA names before v1.8).
var watched = []string{
	"qemu-guest-agent", "nfs-utils",
	"nvidia-open-gpu-kernel-modules", "nvidia-open-gpu-kernel-modules-lts", "nvidia-open-gpu-kernel-modules-production",
	"nvidia-container-toolkit", "nvidia-container-toolkit-lts", "nvidia-container-toolkit-production",
}

// TestMatrixTagsMatchReference: for every release in the embedded matrix, the tags of
// the watched extensions are the reference's, present in exactly the same releases,
// and every other extension the two share has the same tag.
func TestMatrixTagsMatchReference(t *testing.T) {
	t.Parallel()
	ref := loadReference(t)
	m := embeddedMatrix(t)
	byVersion := map[string]int{}
	for i, e := range ref.Extensions {
		byVersion[e.TalosVersion] = i
	}
	for _, rel := range m.Releases {
		t.Run(rel.Version, func(t *testing.T) {
			i, ok := byVersion[rel.Version]
			if !ok {
				if !inCatalog(t, rel.Version, "") {
					t.Fatalf("release %s is in neither talos-data.yaml extensions_by_talos_version nor the catalog", rel.Version)
				}
				return // TestMatrixMatchesCatalog checks it
			}
			refExts := ref.Extensions[i].Extensions
			for _, name := range watched {
				got, inMatrix := rel.Extensions[name]
				want, inRef := refExts[name]
				switch {
				case inMatrix != inRef && !(inMatrix && inCatalog(t, rel.Version, name)):
					t.Errorf("%s %s: in matrix = %v, in reference = %v", rel.Version, name, inMatrix, inRef)
				case inMatrix && inRef && got.Tag != want.Tag:
					t.Errorf("%s %s tag = %q; want %q", rel.Version, name, got.Tag, want.Tag)
				}
			}
			for name, got := range rel.Extensions {
				want, ok := refExts[name]
				if !ok && inCatalog(t, rel.Version, name) {
					continue // the catalog's (TestMatrixMatchesCatalog)
				}
				if !ok {
					t.Errorf("%s %s: in the matrix but not in the reference (invented?)", rel.Version, name)
					continue
				}
				if got.Tag != want.Tag {
					t.Errorf("%s %s tag = %q; want %q", rel.Version, name, got.Tag, want.Tag)
				}
			}
		})
	}
}

// TestMatrixDigestsMatchReference: every digest in the matrix is the one the reference
// has for that version and extension, none is invented, and none the reference has is lost.
func TestMatrixDigestsMatchReference(t *testing.T) {
	t.Parallel()
	ref := loadReference(t)
	m := embeddedMatrix(t)
	refDigest := map[string]string{} // version + " " + name -> digest
	for _, r := range mustCatalog(t) {
		if r.Digest != "-" {
			refDigest[r.Release+" "+strings.TrimPrefix(r.Name, "siderolabs/")] = r.Digest
		}
	}
	for _, e := range ref.Extensions {
		for name, x := range e.Extensions {
			if strings.HasPrefix(x.Digest, "sha256:") {
				refDigest[e.TalosVersion+" "+name] = x.Digest
			}
		}
	}
	pinned := 0
	for _, rel := range m.Releases {
		for name, x := range rel.Extensions {
			key := rel.Version + " " + name
			want, known := refDigest[key]
			switch {
			case x.Digest == compat.DigestUnknown && known:
				t.Errorf("%s digest = unknown; the reference has %s", key, want)
			case x.Digest != compat.DigestUnknown && !known:
				t.Errorf("%s digest = %s; the reference has none (invented)", key, x.Digest)
			case x.Digest != compat.DigestUnknown && x.Digest != want:
				t.Errorf("%s digest = %s; want %s", key, x.Digest, want)
			}
			if x.Digest != compat.DigestUnknown {
				pinned++
			}
		}
		for _, o := range rel.Overlays {
			if o.Digest != compat.DigestUnknown {
				pinned++
			}
		}
	}
	// No full digest may hide anywhere else in the file (notes, images, source). The
	// v1.14.0 note quotes the reference's abbreviated imager digest, which is not a pin.
	all := regexp.MustCompile(`sha256:[0-9a-f]{64}`).FindAll(imgpipe.MatrixYAML, -1)
	if len(all) != pinned {
		t.Errorf("matrix.yaml has %d full sha256 digests but %d extension and overlay digests", len(all), pinned)
	}
}

// TestMatrixReleasesMatchReference: versions, prerelease flags and default Kubernetes.
func TestMatrixReleasesMatchReference(t *testing.T) {
	t.Parallel()
	ref := loadReference(t)
	m := embeddedMatrix(t)
	for _, rv := range ref.TalosVersions {
		r, ok := m.Release(rv.Version)
		if !ok {
			t.Errorf("reference release %s missing from the matrix", rv.Version)
			continue
		}
		if r.Prerelease != rv.Prerelease {
			t.Errorf("%s prerelease = %v; want %v", rv.Version, r.Prerelease, rv.Prerelease)
		}
		want := rv.DefaultKubernetes
		if strings.HasPrefix(want, "unverified") {
			want = ""
			if !r.Unverified {
				t.Errorf("%s: the reference does not verify it; want unverified: true", rv.Version)
			}
		}
		if r.Kubernetes != want {
			t.Errorf("%s kubernetes = %q; want %q", rv.Version, r.Kubernetes, want)
		}
	}
	latest, err := m.Resolve("latest", compat.ResolveOptions{})
	if err != nil || latest.Version != "v1.13.9" {
		t.Errorf("Resolve(latest) = %v, %v; want v1.13.9 (talos-data.md §1 notes)", latest, err)
	}
}

// TestSupportedKubernetesMatchesReference compares every release's range with the
// reference's per-minor table of minors accepted by the code.
func TestSupportedKubernetesMatchesReference(t *testing.T) {
	t.Parallel()
	ref := loadReference(t)
	m := embeddedMatrix(t)
	minors := map[string][]string{}
	for _, mi := range ref.TalosMinors {
		minors[mi.Minor] = mi.Supported
	}
	for _, r := range m.Releases {
		v := r.Semver()
		key := "v" + itoa(int(v.Major())) + "." + itoa(int(v.Minor()))
		want, ok := minors[key]
		if !ok || len(want) == 0 {
			t.Errorf("reference has no Kubernetes minors for %s", key)
			continue
		}
		// The reference lists newest first.
		wantRange := compat.KubernetesRange{MinMinor: want[len(want)-1], MaxMinor: want[0]}
		if got := compat.SupportedKubernetes(r.Version); got != wantRange {
			t.Errorf("SupportedKubernetes(%q) = %+v; want %+v", r.Version, got, wantRange)
		}
	}
}

// inCatalog reports whether the catalog lists release v (and extension name, unless empty).
func inCatalog(t *testing.T, v, name string) bool {
	for _, r := range mustCatalog(t) {
		if r.Release == v && (name == "" || strings.TrimPrefix(r.Name, "siderolabs/") == name) {
			return true
		}
	}
	return false
}
