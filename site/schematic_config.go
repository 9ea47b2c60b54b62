package site

import (
	"errors"
	"fmt"
	"strings"

	"github.com/siderolabs/image-factory/pkg/schematic"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// validateSchematicFields checks a profile's schematic fields: overlay, kernel
// arguments, disk image and an adopted schematic file (which excludes the others).
func validateSchematicFields(p ProfileConfig, i int, at func(msg string, path ...any)) {
	if p.Overlay != nil && p.Overlay.Name == "" {
		at("overlay needs a name (the board, e.g. rpi_generic); image is optional", "profiles", i, "overlay", "name")
	}
	for j, a := range p.ExtraKernelArgs {
		if err := checkKernelArg(a); err != nil {
			at(err.Error(), "profiles", i, "extraKernelArgs", j)
		}
	}
	if p.DiskImage != nil {
		if s := p.DiskImage.SectorSize; s != 0 && (s < 512 || s > 65536 || s&(s-1) != 0) {
			at(fmt.Sprintf("sector size %d is not a power of two from 512 to 65536 (e.g. 512 or 4096)", s), "profiles", i, "diskImage", "sectorSize")
		}
	}
	if p.SchematicFile == "" {
		return
	}
	for field, set := range map[string]bool{
		"extensions": len(p.Extensions) > 0, "extraKernelArgs": len(p.ExtraKernelArgs) > 0, "meta": len(p.Meta) > 0,
		"overlay": p.Overlay != nil, "bootloader": p.Bootloader != "", "secureboot": p.SecureBoot != nil, "diskImage": p.DiskImage != nil,
	} {
		if set {
			at(fmt.Sprintf("%s cannot be combined with schematicFile: the adopted schematic says everything (edit the file instead)", field), "profiles", i, field)
		}
	}
}

// checkKernelArg accepts one kernel command-line argument as the kernel splits them:
// whitespace only inside double quotes (console="ttyS0 115200" or "a b"), quotes balanced.
func checkKernelArg(a string) error {
	if strings.TrimSpace(a) == "" {
		return errors.New("kernel argument is empty")
	}
	if strings.ContainsAny(a, "\n\r\x00") {
		return fmt.Errorf("kernel argument %q contains a line break or NUL", a)
	}
	quoted := false
	for _, r := range a {
		switch {
		case r == '"':
			quoted = !quoted
		case (r == ' ' || r == '\t') && !quoted:
			return fmt.Errorf("kernel argument %q has unquoted whitespace: give one argument per list item, and quote a value with spaces (key=\"a b\")", a)
		}
	}
	if quoted {
		return fmt.Errorf("kernel argument %q has an unbalanced double quote", a)
	}
	return nil
}

// LoadSchematics reads each profile's schematicFile with read (paths are already
// absolute after ResolvePaths) and checks it is a schematic the factory accepts.
// file names the config in errors.
func (c *Config) LoadSchematics(file string, read func(string) ([]byte, error)) error {
	var errs []error
	for i := range c.Profiles {
		p := &c.Profiles[i]
		if p.SchematicFile == "" {
			continue
		}
		data, err := read(p.SchematicFile)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: profiles[%d].schematicFile: %w", file, i, err))
			continue
		}
		if _, err := schematic.Unmarshal(data); err != nil {
			errs = append(errs, fmt.Errorf("%s: profiles[%d].schematicFile: %s is not a schematic: %w", file, i, p.SchematicFile, err))
			continue
		}
		p.adopted = data
	}
	if err := errors.Join(errs...); err != nil {
		return fail.Usage(err)
	}
	return nil
}
