package compat_test

import (
	"bytes"
	"errors"
	"github.com/imgpipe/imgpipe/internal/testutil"
	"os"
	"path/filepath"
	"strings"
	"testing"

	imgpipe "github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/yamlx"
)

func TestParseEmbedded(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	if m.SchemaVersion != compat.SchemaVersion {
		t.Errorf("SchemaVersion = %d; want %d", m.SchemaVersion, compat.SchemaVersion)
	}
	for _, v := range []string{"v1.7.0", "v1.9.6", "v1.13.9", "v1.14.0-rc.1", "v1.14.0"} {
		if _, ok := m.Release(v); !ok {
			t.Errorf("Release(%q) = _, false; want true", v)
		}
	}
	if _, ok := m.Release("v1.9.7"); ok {
		t.Errorf("Release(%q) = _, true; want false", "v1.9.7")
	}
	for i := 1; i < len(m.Releases); i++ {
		if !m.Releases[i-1].Semver().LessThan(m.Releases[i].Semver()) {
			t.Errorf("releases not sorted: %s before %s", m.Releases[i-1].Version, m.Releases[i].Version)
		}
	}
}

// TestMarshalRoundTrip is the "deterministic, minimal diff" property: the embedded
// matrix is exactly what Marshal writes for its parsed form.
func TestMarshalRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		data []byte
	}{
		{"embedded", imgpipe.MatrixYAML},
		{"small.yaml", mustRead(t, "small.yaml")},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			m, err := compat.Parse(tt.name, tt.data)
			if err != nil {
				t.Fatalf("Parse(%q) = %v; want nil", tt.name, err)
			}
			got, err := compat.Marshal(m)
			if err != nil {
				t.Fatalf("Marshal(%q) = %v; want nil", tt.name, err)
			}
			if !bytes.Equal(got, tt.data) {
				t.Errorf("Marshal(Parse(%q)) differs from the input:\n%s", tt.name, firstDiff(string(got), string(tt.data)))
			}
			again, err := compat.Marshal(m)
			if err != nil || !bytes.Equal(again, got) {
				t.Errorf("Marshal(%q) is not deterministic (err %v)", tt.name, err)
			}
		})
	}
}

// TestMarshalMinimalDiff changes one digest and expects exactly one changed line.
func TestMarshalMinimalDiff(t *testing.T) {
	t.Parallel()
	m, err := compat.Parse("matrix.yaml", imgpipe.MatrixYAML)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := m.Release("v1.9.6")
	e := r.Extensions["qemu-guest-agent"]
	e.Digest = "sha256:" + strings.Repeat("ab", 32)
	r.Extensions["qemu-guest-agent"] = e
	got, err := compat.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	a := strings.Split(string(imgpipe.MatrixYAML), "\n")
	b := strings.Split(string(got), "\n")
	if len(a) != len(b) {
		t.Fatalf("Marshal after one digest change has %d lines; want %d", len(b), len(a))
	}
	changed := 0
	for i := range a {
		if a[i] != b[i] {
			changed++
			if !strings.Contains(b[i], "qemu-guest-agent") {
				t.Errorf("line %d changed unexpectedly: %q", i+1, b[i])
			}
		}
	}
	if changed != 1 {
		t.Errorf("Marshal after one digest change changed %d lines; want 1", changed)
	}
}

func TestParseErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file string
		want []string // substrings of the message, the first names file:line
	}{
		{"unknown-key.yaml", []string{"unknown-key.yaml:8:", "tagg", "unknown field"}},
		{"bad-digest.yaml", []string{"bad-digest.yaml:9:", "releases[0].extensions.qemu-guest-agent.digest", `"sha256:deadbeef"`}},
		{"unsorted.yaml", []string{"unsorted.yaml:7:", "releases[2].version", "sorted"}},
		{"duplicate.yaml", []string{"duplicate.yaml:7:", "releases[2].version", "listed twice"}},
		{"schema-version.yaml", []string{"schema-version.yaml:2:", "schemaVersion", "schema version 2"}},
		{"empty.yaml", []string{"empty.yaml: ", "empty document"}},
		{"bad-tier.yaml", []string{"bad-tier.yaml:4:", "extensions.nfs-utils.tier", `"community"`}},
		{"version-without-v.yaml", []string{"version-without-v.yaml:5:", "releases[1].version", "must start with v"}},
		{"bad-kubernetes.yaml", []string{"bad-kubernetes.yaml:4:", "releases[0].kubernetes"}},
		{"wrong-type.yaml", []string{"wrong-type.yaml:4:", "maybe"}},
		{"full-name.yaml", []string{"full-name.yaml:5:", "without siderolabs/"}},
		{"no-releases.yaml", []string{"no-releases.yaml:1:", "no releases"}},
	}
	for _, tt := range tests {
		t.Run(tt.file, func(t *testing.T) {
			t.Parallel()
			data := mustRead(t, filepath.Join("invalid", tt.file))
			m, err := compat.Parse(tt.file, data)
			if err == nil {
				t.Fatalf("Parse(%q) = %v, nil; want an error", tt.file, m)
			}
			if !errors.Is(err, fail.ErrUsage) {
				t.Errorf("Parse(%q) = %v; want errors.Is(err, fail.ErrUsage)", tt.file, err)
			}
			if tt.file == "empty.yaml" && !errors.Is(err, yamlx.ErrEmpty) {
				t.Errorf("Parse(%q) = %v; want errors.Is(err, yamlx.ErrEmpty)", tt.file, err)
			}
			var ye *yamlx.Error
			if !errors.As(err, &ye) {
				t.Errorf("Parse(%q) = %v; want a *yamlx.Error inside", tt.file, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Parse(%q) = %q; want it to contain %q", tt.file, err, w)
				}
			}
		})
	}
}

// TestParseErrorLine checks the line numbers against an error placed on a known line
// of the embedded matrix, so a moved line in the locator shows up.
func TestParseErrorLine(t *testing.T) {
	t.Parallel()
	lines := strings.Split(string(imgpipe.MatrixYAML), "\n")
	target := -1
	for i, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "qemu-guest-agent: {tag: 9.2.0") {
			target = i
			break
		}
	}
	if target < 0 {
		t.Fatal("no qemu-guest-agent 9.2.0 line in the embedded matrix")
	}
	lines[target] = strings.Replace(lines[target], "digest: unknown", "digest: sha256:nothex", 1)
	_, err := compat.Parse("matrix.yaml", []byte(strings.Join(lines, "\n")))
	want := "matrix.yaml:" + itoa(target+1) + ": releases["
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Errorf("Parse(matrix with a bad digest on line %d) = %v; want it to contain %q", target+1, err, want)
	}
}

func mustRead(t *testing.T, name string) []byte {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return data
}

func itoa(i int) string {
	var b [20]byte
	n := len(b)
	for {
		n--
		b[n] = byte('0' + i%10)
		i /= 10
		if i == 0 {
			break
		}
	}
	return string(b[n:])
}

func firstDiff(a, b string) string {
	la, lb := strings.Split(a, "\n"), strings.Split(b, "\n")
	for i := 0; i < len(la) && i < len(lb); i++ {
		if la[i] != lb[i] {
			return "line " + itoa(i+1) + ":\n got: " + la[i] + "\nwant: " + lb[i]
		}
	}
	return "lengths differ: got " + itoa(len(la)) + " lines, want " + itoa(len(lb))
}

func FuzzParseMatrix(f *testing.F) {
	f.Add(imgpipe.MatrixYAML)
	testutil.SeedFiles(f, "testdata/*.yaml", "testdata/invalid/*.yaml")
	f.Fuzz(func(t *testing.T, data []byte) {
		m, err := compat.Parse("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, fail.ErrUsage) {
				t.Fatalf("Parse = %v; want errors.Is(err, fail.ErrUsage)", err)
			}
			return
		}
		out, err := compat.Marshal(m)
		if err != nil {
			t.Fatalf("Marshal(Parse(x)) = %v; want nil", err)
		}
		m2, err := compat.Parse("fuzz.yaml", out)
		if err != nil {
			t.Fatalf("Parse(Marshal(Parse(x))) = %v; want nil\n%s", err, out)
		}
		out2, err := compat.Marshal(m2)
		if err != nil {
			t.Fatalf("Marshal = %v", err)
		}
		if !bytes.Equal(out, out2) {
			t.Fatalf("Marshal is not stable across a round trip:\n%s\n---\n%s", out, out2)
		}
	})
}

// TestExtensionMetaConsistent: each extension's since/until are the first and last
// releases whose catalog lists it, and the tiers are talos-data.md §1.4's.
func TestExtensionMetaConsistent(t *testing.T) {
	t.Parallel()
	m := embeddedMatrix(t)
	first, last := map[string]string{}, map[string]string{}
	for _, r := range m.Releases {
		for name := range r.Extensions {
			if _, ok := first[name]; !ok {
				first[name] = r.Version
			}
			last[name] = r.Version
		}
	}
	for name, meta := range m.Extensions {
		if first[name] == "" {
			t.Errorf("extension %s has metadata but no release lists it", name)
			continue
		}
		if meta.Since != first[name] {
			t.Errorf("extensions.%s.since = %q; first listed in %s", name, meta.Since, first[name])
		}
		if meta.Until != "" && meta.Until != last[name] {
			t.Errorf("extensions.%s.until = %q; last listed in %s", name, meta.Until, last[name])
		}
	}
	tiers := map[string]string{
		"qemu-guest-agent": "extra", "nfs-utils": "contrib", "iscsi-tools": "core", "util-linux-tools": "contrib", "glibc": "core",
		"nvidia-open-gpu-kernel-modules-lts": "core", "nvidia-container-toolkit-production": "core", "nonfree-kmod-nvidia-lts": "core",
	}
	for name, want := range tiers {
		if got := m.Extensions[name].Tier; got != want {
			t.Errorf("extensions.%s.tier = %q; want %q", name, got, want)
		}
	}
}
