package yamlx_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/yamlx"
)

type inner struct {
	Name  string `yaml:"name"`
	Count int    `yaml:"count"`
}

type doc struct {
	Version int              `yaml:"version"`
	Items   []inner          `yaml:"items"`
	Byname  map[string]inner `yaml:"byname"`
}

func TestErrorString(t *testing.T) {
	t.Parallel()
	tests := []struct {
		err  yamlx.Error
		want string
	}{
		{yamlx.Error{File: "a.yaml", Line: 3, Field: "items[0].name", Msg: "bad"}, "a.yaml:3: items[0].name: bad"},
		{yamlx.Error{File: "a.yaml", Line: 3, Msg: "bad"}, "a.yaml:3: bad"},
		{yamlx.Error{File: "a.yaml", Field: "version", Msg: "bad"}, "a.yaml: version: bad"},
		{yamlx.Error{File: "a.yaml", Msg: "bad"}, "a.yaml: bad"},
	}
	for _, tt := range tests {
		if got := tt.err.Error(); got != tt.want {
			t.Errorf("(%+v).Error() = %q; want %q", tt.err, got, tt.want)
		}
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	var d doc
	if err := yamlx.Decode("a.yaml", []byte("version: 1\nitems:\n  - name: x\n    count: 2\n"), &d); err != nil {
		t.Fatalf("Decode(valid) = %v; want nil", err)
	}
	if d.Version != 1 || len(d.Items) != 1 || d.Items[0].Count != 2 {
		t.Errorf("Decode(valid) = %+v", d)
	}
}

func TestDecodeErrors(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, data string
		want       []string
	}{
		{"unknown field", "version: 1\nitems:\n  - name: x\n    cuont: 2\n", []string{"a.yaml:4: cuont: unknown field"}},
		{"two unknown fields", "verison: 1\nitems:\n  - nam: x\n", []string{"a.yaml:1: verison:", "a.yaml:3: nam:"}},
		{"wrong type", "version: one\n", []string{"a.yaml:1: ", "string", "into int"}},
		{"wrong kind", "items: {a: 1}\n", []string{"a.yaml:1: ", "mapping"}},
		{"syntax", "version: 1\nitems: [\n", []string{"a.yaml:"}},
		{"tab indent", "version: 1\n\titems: []\n", []string{"a.yaml:2: "}},
		{"second document", "version: 1\n---\nversion: 2\n", []string{"a.yaml:2: unexpected second YAML document"}},
		{"empty", "", []string{"a.yaml: empty document"}},
		{"only a comment", "# nothing\n", []string{"a.yaml: empty document"}},
	}
	for _, tt := range tests {
		var d doc
		err := yamlx.Decode("a.yaml", []byte(tt.data), &d)
		if err == nil {
			t.Errorf("Decode(%s) = nil; want an error", tt.name)
			continue
		}
		var ye *yamlx.Error
		if !errors.As(err, &ye) {
			t.Errorf("Decode(%s) = %T; want a *yamlx.Error", tt.name, err)
		}
		for _, w := range tt.want {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("Decode(%s) = %q; want it to contain %q", tt.name, err, w)
			}
		}
		if strings.Contains(err.Error(), "!!") || strings.Contains(err.Error(), " yaml: ") {
			t.Errorf("Decode(%s) = %q; want YAML-internal wording translated", tt.name, err)
		}
	}
}

func TestDecodeEmptyIsErrEmpty(t *testing.T) {
	t.Parallel()
	for _, data := range []string{"", "# only a comment\n", "\n\n"} {
		var d doc
		if err := yamlx.Decode("a.yaml", []byte(data), &d); !errors.Is(err, yamlx.ErrEmpty) {
			t.Errorf("Decode(%q) = %v; want errors.Is(err, yamlx.ErrEmpty)", data, err)
		}
	}
}

func TestLocator(t *testing.T) {
	t.Parallel()
	data := []byte(`version: 1
items:
  - name: a
    count: 1
  - name: b
    count: 2
byname:
  first:
    name: c
`)
	loc := yamlx.NewLocator(data)
	tests := []struct {
		path []any
		want int
	}{
		{nil, 1},
		{[]any{"version"}, 1},
		{[]any{"items"}, 2},
		{[]any{"items", 0}, 3},
		{[]any{"items", 1, "count"}, 6},
		{[]any{"items", 5, "count"}, 2},   // no such index: the nearest existing node
		{[]any{"items", 1, "missing"}, 5}, // no such key: the item
		{[]any{"byname", "first"}, 8},
		{[]any{"byname", "first", "name"}, 9},
		{[]any{"version", "deeper"}, 1}, // a scalar has no children
		{[]any{"items", "name"}, 2},     // a sequence has no keys
		{[]any{"byname", 0}, 7},         // a mapping has no indexes
	}
	for _, tt := range tests {
		if got := loc.Line(tt.path...); got != tt.want {
			t.Errorf("Line(%v) = %d; want %d", tt.path, got, tt.want)
		}
	}
	for _, bad := range [][]byte{nil, []byte("a: [\n"), []byte("# comment\n")} {
		if got := yamlx.NewLocator(bad).Line("a"); got != 0 {
			t.Errorf("NewLocator(%q).Line(a) = %d; want 0", bad, got)
		}
	}
	var nilLoc *yamlx.Locator
	if got := nilLoc.Line("a"); got != 0 {
		t.Errorf("(*Locator)(nil).Line(a) = %d; want 0", got)
	}
}

func TestPathAndAt(t *testing.T) {
	t.Parallel()
	tests := []struct {
		path []any
		want string
	}{
		{nil, ""},
		{[]any{"releases"}, "releases"},
		{[]any{"releases", 3, "extensions", "glibc", "digest"}, "releases[3].extensions.glibc.digest"},
		{[]any{0, "a"}, "[0].a"},
	}
	for _, tt := range tests {
		if got := yamlx.Path(tt.path...); got != tt.want {
			t.Errorf("Path(%v) = %q; want %q", tt.path, got, tt.want)
		}
	}
	loc := yamlx.NewLocator([]byte("a:\n  b: 1\n"))
	e := yamlx.At("f.yaml", loc, "too small", "a", "b")
	if got, want := e.Error(), "f.yaml:2: a.b: too small"; got != want {
		t.Errorf("At(...).Error() = %q; want %q", got, want)
	}
}

func FuzzDecode(f *testing.F) {
	for _, s := range []string{"version: 1\nitems:\n  - name: a\n", "byname: {x: {name: y, count: 3}}\n", "", "---\n---\n", "a: [\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var d doc
		err := yamlx.Decode("f.yaml", data, &d)
		if err != nil && !strings.HasPrefix(err.Error(), "f.yaml") {
			t.Fatalf("Decode = %q; want it to start with the file name", err)
		}
		loc := yamlx.NewLocator(data)
		_ = loc.Line("items", 0, "name")
	})
}
