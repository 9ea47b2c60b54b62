package extensions

import (
	"errors"
	"fmt"
	"regexp"
)

// ErrBadTag is returned for a tag that does not follow its extension's grammar.
var ErrBadTag = errors.New("tag does not follow the extension's grammar")

// Tag is a parsed NVIDIA extension tag.
type Tag struct {
	Driver  string // e.g. 550.144.03
	Talos   string // kernel modules: the Talos release they were built for, e.g. v1.9.6
	Toolkit string // container toolkit version, e.g. v1.17.3
}

var (
	driverRE  = `(\d+\.\d+(?:\.\d+)?)`
	versionRE = `(v\d+\.\d+\.\d+(?:-[0-9A-Za-z.]+)?)`
	modulesRE = regexp.MustCompile(`^` + driverRE + `-` + versionRE + `$`)
	fabricRE  = regexp.MustCompile(`^` + driverRE + `$`)
)

// ParseTag parses the tag of an NVIDIA extension by its family's grammar:
// kernel modules <driver>-<talosTag>, toolkit <driver>-<ctkVersion>, fabric manager
// <driver>. Other extensions' tags are opaque and parse to a zero Tag.
func ParseTag(name, tag string) (Tag, error) {
	fam, _ := Classify(name)
	switch fam {
	case FamilyOpenModules, FamilyNonfreeModules:
		m := modulesRE.FindStringSubmatch(tag)
		if m == nil {
			return Tag{}, fmt.Errorf("%w: %s tag %q, want <driver>-<talos version> like 550.144.03-v1.9.6", ErrBadTag, Short(name), tag)
		}
		return Tag{Driver: m[1], Talos: m[2]}, nil
	case FamilyToolkit:
		m := modulesRE.FindStringSubmatch(tag)
		if m == nil {
			return Tag{}, fmt.Errorf("%w: %s tag %q, want <driver>-<toolkit version> like 550.144.03-v1.17.3", ErrBadTag, Short(name), tag)
		}
		return Tag{Driver: m[1], Toolkit: m[2]}, nil
	case FamilyFabricManager:
		m := fabricRE.FindStringSubmatch(tag)
		if m == nil {
			return Tag{}, fmt.Errorf("%w: %s tag %q, want <driver> like 550.144.03", ErrBadTag, Short(name), tag)
		}
		return Tag{Driver: m[1]}, nil
	}
	if tag == "" {
		return Tag{}, fmt.Errorf("%w: %s has an empty tag", ErrBadTag, Short(name))
	}
	return Tag{}, nil
}
