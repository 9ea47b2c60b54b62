package compat

import (
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/imgpipe/imgpipe/internal/yamlx"
)

func seedMatrices(tb testing.TB) map[string][]byte {
	tb.Helper()
	out := map[string][]byte{}
	files, _ := filepath.Glob("testdata/*.yaml")
	more, _ := filepath.Glob("testdata/invalid/*.yaml")
	for _, f := range append(append(files, more...), "../matrix.yaml") {
		data, err := os.ReadFile(f)
		if err != nil {
			tb.Fatal(err)
		}
		out[f] = data
	}
	return out
}

// TestCanonicalFastPath: the embedded matrix and the valid fixtures take the fast
// path, and give what the YAML decoder gives.
func TestCanonicalFastPath(t *testing.T) {
	t.Parallel()
	for _, f := range []string{"../matrix.yaml", "testdata/small.yaml"} {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		got, err := decodeCanonical(data)
		if err != nil {
			t.Errorf("decodeCanonical(%s) = %v; want the fast path", f, err)
			continue
		}
		var want Matrix
		if err := yamlx.Decode(f, data, &want); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Errorf("decodeCanonical(%s) differs from the YAML decoder", f)
		}
	}
}

// FuzzCanonicalEqualsYAML: whatever the fast path accepts, the YAML decoder accepts
// too and decodes to the same value.
func FuzzCanonicalEqualsYAML(f *testing.F) {
	for _, data := range seedMatrices(f) {
		f.Add(data)
	}
	f.Add([]byte("schemaVersion: 1\nreleases:\n  - version: v1.9.0\n    note: 'a '' b'\n    extensions:\n      x: {tag: \"1\", digest: unknown}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		got, err := decodeCanonical(data)
		if err != nil {
			return
		}
		var want Matrix
		if err := yamlx.Decode("fuzz.yaml", data, &want); err != nil {
			t.Fatalf("decodeCanonical accepted what the YAML decoder refuses (%v):\n%s", err, data)
		}
		if !reflect.DeepEqual(*got, want) {
			t.Fatalf("decodeCanonical = %+v\nYAML decoder = %+v\ninput:\n%s", *got, want, data)
		}
	})
}

func BenchmarkParseEmbedded(b *testing.B) {
	data, err := os.ReadFile("../matrix.yaml")
	if err != nil {
		b.Fatal(err)
	}
	b.SetBytes(int64(len(data)))
	for b.Loop() {
		if _, err := Parse("matrix.yaml", data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCanonicalRefusals: inputs the YAML decoder reads differently or refuses are left to it.
func TestCanonicalRefusals(t *testing.T) {
	t.Parallel()
	head := "schemaVersion: 1\nreleases:\n  - version: v1.9.0\n    extensions:\n"
	for _, line := range []string{
		"      x: {tag: a[b, digest: unknown}",       // flow indicator in a plain scalar
		"      x: {tag: \"a\\tb\", digest: unknown}", // an escape
		"      x: {tag: v1, digest: unknown} # c",    // a comment after the value
		"      !x: {tag: v1, digest: unknown}",       // a tagged key
		"      null: {tag: v1, digest: unknown}",     // a null key
		"      x: {tag: ~, digest: unknown}",         // a null value
		"      x: {tag: v1, tag: v2, digest: unknown}",
		"      x: {tag: v1, digest: unknown, colour: red}",
		"\tx: {tag: v1, digest: unknown}",
	} {
		if _, err := decodeCanonical([]byte(head + line + "\n")); err == nil {
			t.Errorf("decodeCanonical(%q) = nil error; want the YAML decoder to read it", line)
		}
	}
}
