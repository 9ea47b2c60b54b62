package extensions

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"sync"

	"github.com/imgpipe/imgpipe/compat"
)

// CatalogEntry is one extension in a release catalog.
type CatalogEntry struct {
	Name   string // short name
	Repo   string // e.g. ghcr.io/siderolabs/qemu-guest-agent
	Tag    string
	Digest string // sha256:<hex>
}

// imageDigestRE is compiled on first use, not at start: its {0,127} makes it the
// costliest pattern to compile, and only the catalog cross-check needs it.
var imageDigestRE = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`^([a-z0-9.-]+(?::\d+)?(?:/[a-z0-9._-]+)+):([A-Za-z0-9_][A-Za-z0-9_.-]{0,127})@(sha256:[0-9a-f]{64})$`)
})

// ParseImageDigests parses the image-digests file of ghcr.io/siderolabs/extensions:<v>:
// one "<registry>/<repo>:<tag>@sha256:<hex>" per line. Blank lines are skipped; any other
// malformed line is an error naming its line number.
func ParseImageDigests(data []byte) ([]CatalogEntry, error) {
	var out []CatalogEntry
	var errs []error
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for line := 1; sc.Scan(); line++ {
		s := strings.TrimSpace(sc.Text())
		if s == "" {
			continue
		}
		m := imageDigestRE().FindStringSubmatch(s)
		if m == nil {
			errs = append(errs, fmt.Errorf("image-digests line %d: %q is not <repo>:<tag>@sha256:<hex>", line, s))
			continue
		}
		repo := m[1]
		out = append(out, CatalogEntry{Name: repo[strings.LastIndex(repo, "/")+1:], Repo: repo, Tag: m[2], Digest: m[3]})
	}
	if err := sc.Err(); err != nil {
		errs = append(errs, fmt.Errorf("reading image-digests: %w", err))
	}
	return out, errors.Join(errs...)
}

// FactoryExtension is the shape of one item of the factory's
// /version/<v>/extensions/official list (image-factory pkg/client ExtensionInfo).
type FactoryExtension struct {
	Name   string // siderolabs/qemu-guest-agent
	Ref    string // ghcr.io/siderolabs/qemu-guest-agent:10.0.2
	Digest string // sha256:...
}

// FromFactory turns a factory catalog into matrix entries keyed by short name.
func FromFactory(list []FactoryExtension) (map[string]compat.ExtensionTag, error) {
	out := make(map[string]compat.ExtensionTag, len(list))
	var errs []error
	for _, e := range list {
		i := strings.LastIndex(e.Ref, ":")
		if i < 0 || strings.Contains(e.Ref[i:], "/") {
			errs = append(errs, fmt.Errorf("extension %s: ref %q has no tag", e.Name, e.Ref))
			continue
		}
		d := e.Digest
		if d == "" {
			d = compat.DigestUnknown
		}
		out[Short(e.Name)] = compat.ExtensionTag{Tag: e.Ref[i+1:], Digest: d}
	}
	return out, errors.Join(errs...)
}
