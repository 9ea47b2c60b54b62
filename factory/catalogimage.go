package factory

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"path"
	"slices"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/imgpipe/imgpipe/extensions"
)

// ErrNoImageDigests is returned when a catalog image has no image-digests file.
var ErrNoImageDigests = errors.New("no image-digests file in the catalog image")

// CatalogImageRef is the extensions catalog image of a Talos release.
func CatalogImageRef(talos string) string { return "ghcr.io/siderolabs/extensions:" + talos }

// ReadCatalogImage reads the image-digests file of an extensions catalog image
// (ghcr.io/siderolabs/extensions:<v>, or its mirror) with go-containerregistry,
// streaming the image's filesystem rather than holding it. insecure allows plain
// HTTP to a local mirror.
func ReadCatalogImage(ctx context.Context, ref string, insecure bool, opts ...remote.Option) ([]extensions.CatalogEntry, error) {
	var nopts []name.Option
	if insecure {
		nopts = append(nopts, name.Insecure)
	}
	r, err := name.ParseReference(ref, nopts...)
	if err != nil {
		return nil, fmt.Errorf("reading catalog %s: %w", ref, err)
	}
	img, err := remote.Image(r, append([]remote.Option{remote.WithContext(ctx)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("reading catalog %s: %w", ref, err)
	}
	fs := mutate.Extract(img)
	defer fs.Close()
	tr := tar.NewReader(fs)
	for {
		h, err := tr.Next()
		if err == io.EOF {
			return nil, fmt.Errorf("reading catalog %s: %w", ref, ErrNoImageDigests)
		}
		if err != nil {
			return nil, fmt.Errorf("reading catalog %s: %w", ref, err)
		}
		if path.Clean("/"+h.Name) != "/image-digests" {
			continue
		}
		data, err := io.ReadAll(io.LimitReader(tr, 4<<20))
		if err != nil {
			return nil, fmt.Errorf("reading catalog %s: %w", ref, err)
		}
		entries, err := extensions.ParseImageDigests(data)
		if err != nil {
			return nil, fmt.Errorf("reading catalog %s: %w", ref, err)
		}
		return entries, nil
	}
}

// CrossCheck compares a factory catalog with the catalog image's image-digests for
// the same release and reports every extension whose tag or digest disagrees, or
// that only one of them lists.
func CrossCheck(talos string, factoryList []ExtensionInfo, catalog []extensions.CatalogEntry) []Change {
	img := map[string]extensions.CatalogEntry{}
	for _, e := range catalog {
		img[e.Name] = e
	}
	fac := map[string]ExtensionInfo{}
	for _, e := range factoryList {
		fac[extensions.Short(e.Name)] = e
	}
	var out []Change
	for _, n := range slices.Sorted(maps.Keys(fac)) {
		f := fac[n]
		e, ok := img[n]
		if !ok {
			out = append(out, Change{Kind: ChangeCatalogMismatch, Release: talos, Extension: n, Old: "absent from image-digests", New: f.Ref + "@" + f.Digest})
			continue
		}
		if want := e.Repo + ":" + e.Tag; want != f.Ref || e.Digest != f.Digest {
			out = append(out, Change{Kind: ChangeCatalogMismatch, Release: talos, Extension: n, Old: want + "@" + e.Digest, New: f.Ref + "@" + f.Digest})
		}
	}
	for _, n := range slices.Sorted(maps.Keys(img)) {
		if _, ok := fac[n]; !ok {
			e := img[n]
			out = append(out, Change{Kind: ChangeCatalogMismatch, Release: talos, Extension: n, Old: e.Repo + ":" + e.Tag + "@" + e.Digest, New: "absent from the factory"})
		}
	}
	return out
}
