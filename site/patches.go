package site

// Machine-config patches written by the operator (issue 15). Kept apart from
// config.go: the Config and ProfileConfig structs carry one Patches field each and
// everything else about them lives here.

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"

	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/yamlx"
)

// PatchConfig is one Talos machine-config patch in imgpipe.yaml: either Inline, a
// strategic-merge patch written as YAML under the key, or File, a patch file
// (one or more YAML documents) relative to the directory of imgpipe.yaml. Site-wide
// patches apply to every profile, before the profile's own.
type PatchConfig struct {
	Inline map[string]any `yaml:"inline,omitempty"`
	File   string         `yaml:"file,omitempty"`
}

// PatchSource is a patch ready to merge: where it came from (for messages) and its bytes.
type PatchSource struct {
	Name string
	YAML []byte
}

func (c *Config) validatePatches(file string, loc *yamlx.Locator) []error {
	var errs []error
	check := func(list []PatchConfig, path ...any) {
		for i, p := range list {
			at := append(append([]any{}, path...), i)
			switch {
			case (p.Inline == nil) == (p.File == ""):
				errs = append(errs, yamlx.At(file, loc, "a patch needs exactly one of inline or file", at...))
			case p.File != "" && !filepath.IsLocal(filepath.FromSlash(p.File)):
				errs = append(errs, yamlx.At(file, loc, fmt.Sprintf("patch file %q must be a relative path inside the config's directory", p.File), append(at, "file")...))
			}
		}
	}
	check(c.Patches, "patches")
	for i, p := range c.Profiles {
		check(p.Patches, "profiles", i, "patches")
	}
	return errs
}

// PatchSources returns the site-wide patches and then the named profile's own, read
// and in merge order. Files are read through an os.Root at the config's directory, so
// neither "..", an absolute path nor a symlink reaches outside it.
func (c *Config) PatchSources(profile string) ([]PatchSource, error) {
	var list []PatchSource
	add := func(ps []PatchConfig, field string) error {
		for i, p := range ps {
			name := fmt.Sprintf("imgpipe.yaml %s[%d]", field, i)
			if p.File != "" {
				data, err := c.readPatchFile(p.File)
				if err != nil {
					return fail.Usage(fmt.Errorf("%s: %w", name, err))
				}
				list = append(list, PatchSource{Name: p.File, YAML: data})
				continue
			}
			var buf bytes.Buffer
			enc := yaml.NewEncoder(&buf)
			enc.SetIndent(2)
			if err := enc.Encode(p.Inline); err != nil {
				return fail.Usage(fmt.Errorf("%s.inline: %w", name, err))
			}
			list = append(list, PatchSource{Name: name + ".inline", YAML: buf.Bytes()})
		}
		return nil
	}
	if err := add(c.Patches, "patches"); err != nil {
		return nil, err
	}
	for i, pc := range c.Profiles {
		if pc.Name == profile {
			if err := add(pc.Patches, fmt.Sprintf("profiles[%d].patches", i)); err != nil {
				return nil, err
			}
		}
	}
	return list, nil
}

func (c *Config) readPatchFile(name string) ([]byte, error) {
	dir := c.patchDir
	if dir == "" {
		dir = "."
	}
	root, err := os.OpenRoot(dir)
	if err != nil {
		return nil, fmt.Errorf("opening the config directory %s: %w", dir, err)
	}
	defer root.Close()
	data, err := root.ReadFile(filepath.FromSlash(name))
	if err != nil {
		return nil, fmt.Errorf("reading patch file: %w", err)
	}
	return data, nil
}
