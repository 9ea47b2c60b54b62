package upgrade

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"
)

// crdSchema is the part of an OpenAPI v3 schema (as in a CRD) the validator checks.
type crdSchema struct {
	Type                 string                `yaml:"type"`
	Description          string                `yaml:"description"`
	Properties           map[string]*crdSchema `yaml:"properties"`
	Required             []string              `yaml:"required"`
	Items                *crdSchema            `yaml:"items"`
	Enum                 []any                 `yaml:"enum"`
	Pattern              string                `yaml:"pattern"`
	Minimum              *float64              `yaml:"minimum"`
	Maximum              *float64              `yaml:"maximum"`
	MinLength            *int                  `yaml:"minLength"`
	MaxLength            *int                  `yaml:"maxLength"`
	MinItems             *int                  `yaml:"minItems"`
	AdditionalProperties any                   `yaml:"additionalProperties"`
	PreserveUnknown      bool                  `yaml:"x-kubernetes-preserve-unknown-fields"`
	IntOrString          bool                  `yaml:"x-kubernetes-int-or-string"`
}

type crdFile struct {
	Spec struct {
		Group string `yaml:"group"`
		Names struct {
			Kind string `yaml:"kind"`
		} `yaml:"names"`
		Scope    string `yaml:"scope"`
		Versions []struct {
			Name   string `yaml:"name"`
			Schema struct {
				OpenAPIV3Schema *crdSchema `yaml:"openAPIV3Schema"`
			} `yaml:"schema"`
		} `yaml:"versions"`
	} `yaml:"spec"`
}

// loadCRDs reads tuppr's CRDs (copied from home-operations/tuppr config/crd/bases)
// keyed by "group/version Kind".
func loadCRDs(t testing.TB) map[string]*crdSchema {
	t.Helper()
	out := map[string]*crdSchema{}
	files, _ := filepath.Glob(filepath.Join("testdata", "tuppr", "*.crd.yaml"))
	if len(files) != 2 {
		t.Fatalf("want 2 tuppr CRDs in testdata/tuppr, found %v", files)
	}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var c crdFile
		if err := yaml.Unmarshal(data, &c); err != nil {
			t.Fatalf("%s: %v", f, err)
		}
		for _, v := range c.Spec.Versions {
			out[c.Spec.Group+"/"+v.Name+" "+c.Spec.Names.Kind] = v.Schema.OpenAPIV3Schema
		}
	}
	return out
}

// validate checks v against s the way the API server's structural schema does
// (type, required, enum, pattern, bounds, unknown fields pruned = reported here),
// and reports every field whose description marks it deprecated.
func validate(s *crdSchema, v any, path string) []string {
	var errs []string
	add := func(format string, args ...any) { errs = append(errs, path+": "+fmt.Sprintf(format, args...)) }
	if strings.Contains(s.Description, "Deprecated:") {
		add("deprecated field")
	}
	switch s.Type {
	case "object":
		m, ok := v.(map[string]any)
		if !ok {
			add("want an object, got %T", v)
			return errs
		}
		for _, r := range s.Required {
			if _, ok := m[r]; !ok {
				add("missing required %q", r)
			}
		}
		keys := make([]string, 0, len(m))
		for k := range m {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			child, ok := s.Properties[k]
			switch {
			case ok:
				errs = append(errs, validate(child, m[k], path+"."+k)...)
			case s.PreserveUnknown:
			case s.AdditionalProperties != nil:
				if ap, isMap := s.AdditionalProperties.(map[string]any); isMap {
					raw, _ := yaml.Marshal(ap)
					var sub crdSchema
					_ = yaml.Unmarshal(raw, &sub)
					errs = append(errs, validate(&sub, m[k], path+"."+k)...)
				}
			case len(s.Properties) > 0:
				add("unknown field %q (the API server would drop it)", k)
			}
		}
	case "array":
		a, ok := v.([]any)
		if !ok {
			add("want an array, got %T", v)
			return errs
		}
		if s.MinItems != nil && len(a) < *s.MinItems {
			add("%d items; want at least %d", len(a), *s.MinItems)
		}
		for i, e := range a {
			if s.Items != nil {
				errs = append(errs, validate(s.Items, e, fmt.Sprintf("%s[%d]", path, i))...)
			}
		}
	case "string":
		str, ok := v.(string)
		if !ok {
			add("want a string, got %T (%v)", v, v)
			return errs
		}
		if s.Pattern != "" && !regexp.MustCompile(s.Pattern).MatchString(str) {
			add("%q does not match %s", str, s.Pattern)
		}
		if s.MinLength != nil && len(str) < *s.MinLength || s.MaxLength != nil && len(str) > *s.MaxLength {
			add("%q length out of bounds", str)
		}
		if len(s.Enum) > 0 && !slices.Contains(s.Enum, any(str)) {
			add("%q not in %v", str, s.Enum)
		}
	case "integer":
		n, ok := v.(int)
		if !ok {
			add("want an integer, got %T (%v)", v, v)
			return errs
		}
		if s.Minimum != nil && float64(n) < *s.Minimum || s.Maximum != nil && float64(n) > *s.Maximum {
			add("%d out of [%v, %v]", n, s.Minimum, s.Maximum)
		}
	case "boolean":
		if _, ok := v.(bool); !ok {
			add("want a boolean, got %T", v)
		}
	}
	return errs
}

func TestValidateCatchesErrors(t *testing.T) {
	t.Parallel()
	crds := loadCRDs(t)
	s := crds["tuppr.home-operations.com/v1alpha1 TalosUpgrade"]
	doc := map[string]any{"apiVersion": "tuppr.home-operations.com/v1alpha1", "kind": "TalosUpgrade",
		"metadata": map[string]any{"name": "x"},
		"spec":     map[string]any{"talos": map[string]any{"version": "1.9"}, "drain": map[string]any{"enabled": true}, "bogus": 1, "parallelism": 0}}
	got := strings.Join(validate(s, doc, "TalosUpgrade"), "\n")
	for _, want := range []string{"spec.drain: deprecated field", `unknown field "bogus"`, `spec.talos.version: "1.9" does not match`, "spec.parallelism: 0 out of"} {
		if !strings.Contains(got, want) {
			t.Errorf("validate(bad TalosUpgrade) =\n%s\nwant %q", got, want)
		}
	}
}
