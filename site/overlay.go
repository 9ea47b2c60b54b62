package site

import (
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/siderolabs/image-factory/pkg/schematic"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/textdist"
)

// ErrUnknownOverlay is returned (with fail.ErrUsage) for an overlay name the release's
// catalog does not list when the profile gives no image.
var ErrUnknownOverlay = errors.New("unknown overlay")

const officialPrefix = "siderolabs/"

// resolveOverlay turns the profile's overlay into the schematic's: the image defaults
// to the official one that provides the board in this release. A configured image
// is used as given (published schematics exist with unusual ones), with a note when
// the catalog says another image provides the board.
func resolveOverlay(rel *compat.Release, pc ProfileConfig, p *Profile) (schematic.Overlay, error) {
	oc := pc.Overlay
	img, _, official := rel.Overlay(oc.Name)
	image := oc.Image
	switch {
	case image == "" && !official:
		return schematic.Overlay{}, fail.Usage(fmt.Errorf("%w: profile %s: overlay %q is not an official overlay of Talos %s%s; for a custom overlay set overlay.image too",
			ErrUnknownOverlay, pc.Name, oc.Name, rel.Version, overlayHint(rel, oc.Name)))
	case image == "":
		image = officialPrefix + img
	case official && image != officialPrefix+img:
		p.Notes = append(p.Notes, fmt.Sprintf("overlay %s is provided by %s%s in Talos %s; using the configured image %s", oc.Name, officialPrefix, img, rel.Version, image))
	}
	p.Overlay = overlayRef(rel, image, oc.Name)
	return schematic.Overlay{Image: image, Name: oc.Name, Options: oc.Options}, nil
}

// overlayRef is the lock's record of an overlay: the image's tagged ref and digest
// when the release's catalog has them for this board.
func overlayRef(rel *compat.Release, image, name string) *Overlay {
	o := &Overlay{Name: name, Image: image}
	short, ok := strings.CutPrefix(image, officialPrefix)
	oi, listed := rel.Overlays[short]
	if !ok || !listed || !slices.Contains(oi.Boards, name) {
		return o
	}
	if oi.Tag != "" {
		o.Ref = compat.OfficialRepository + "/" + short + ":" + oi.Tag
	}
	if oi.Digest != compat.DigestUnknown {
		o.Digest = oi.Digest
	}
	return o
}

func overlayHint(rel *compat.Release, name string) string {
	if len(rel.Overlays) == 0 {
		return " (the matrix has no overlay list for this release)"
	}
	var boards []string
	for _, img := range slices.Sorted(maps.Keys(rel.Overlays)) {
		for _, b := range rel.Overlays[img].Boards {
			if textdist.Levenshtein(name, b) <= 3 {
				boards = append(boards, b)
			}
		}
	}
	if len(boards) == 0 {
		return ""
	}
	return " (did you mean " + strings.Join(boards, " or ") + "?)"
}
