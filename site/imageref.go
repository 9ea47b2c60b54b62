package site

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// DockerHub is the canonical name of Docker Hub, whatever alias a reference used
// (docker.io, index.docker.io, registry-1.docker.io).
const DockerHub = "docker.io"

// ErrDigest marks a digest that is not "sha256:" followed by 64 lower-case hex digits.
var ErrDigest = errors.New(`digest is not "sha256:" and 64 lower-case hex digits`)

var sha256RE = regexp.MustCompile(`^sha256:[0-9a-f]{64}$`)

// CheckDigest checks an image or file digest's grammar. Lock and cache paths are built
// from digests, so nothing else (no "sha256:../x", no upper case) may pass.
func CheckDigest(d string) error {
	if !sha256RE.MatchString(d) {
		return fmt.Errorf("%q: %w", d, ErrDigest)
	}
	return nil
}

// ImageRef is an image reference in canonical form, so that two spellings of one image
// compare equal and match the same policies and mirrors: the registry host lower-cased,
// the default HTTPS port dropped, Docker Hub's aliases folded to docker.io with its
// implicit library/, and "latest" when neither a tag nor a digest is given (as docker does).
type ImageRef struct {
	Registry   string // e.g. "ghcr.io", "docker.io", "10.0.0.5:5000"
	Repository string // e.g. "siderolabs/kubelet", "library/nginx"
	Tag        string // "" when the reference had only a digest
	Digest     string // "sha256:<hex>" or ""
}

// ParseImageRef parses "host/repo[:tag][@sha256:...]" with go-containerregistry's name
// grammar and returns its canonical form.
func ParseImageRef(s string) (ImageRef, error) {
	s = strings.TrimSpace(s)
	base, digest, hasDigest := strings.Cut(s, "@")
	var r ImageRef
	var repo name.Repository
	if hasDigest {
		d, err := name.NewDigest(s)
		if err != nil {
			return ImageRef{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		if err := CheckDigest(digest); err != nil {
			return ImageRef{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		r.Digest, repo = d.DigestStr(), d.Context()
		if t, err := name.NewTag(base); err == nil && hasExplicitTag(base) {
			r.Tag = t.TagStr()
		}
	} else {
		t, err := name.NewTag(base)
		if err != nil {
			return ImageRef{}, fmt.Errorf("image reference %q: %w", s, err)
		}
		r.Tag, repo = t.TagStr(), t.Context()
	}
	r.Registry, r.Repository = CanonicalRegistry(repo.RegistryStr()), repo.RepositoryStr()
	return r, nil
}

// hasExplicitTag reports whether a reference without digest spells out a tag
// (a colon after the last slash; a colon before it is a port).
func hasExplicitTag(base string) bool {
	i := strings.LastIndex(base, "/")
	return strings.Contains(base[i+1:], ":")
}

// CanonicalRegistry lower-cases a registry host, drops the default HTTPS port and folds
// Docker Hub's aliases to docker.io. Host names are case-insensitive and ":443" is the
// port every registry client uses by default, so these spellings reach the same registry.
func CanonicalRegistry(h string) string {
	h = strings.ToLower(strings.TrimSpace(h))
	h = strings.TrimSuffix(h, ":443")
	switch h {
	case "docker.io", "index.docker.io", "registry-1.docker.io":
		return DockerHub
	}
	return h
}

// Name is the repository with its registry and without tag or digest.
func (r ImageRef) Name() string { return r.Registry + "/" + r.Repository }

// String renders registry/repository[:tag][@digest].
func (r ImageRef) String() string {
	s := r.Name()
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Key identifies the image a reference names: the tag when there is one (two digests for
// one tag are a conflict), else the digest.
func (r ImageRef) Key() string {
	if r.Tag != "" {
		return r.Name() + ":" + r.Tag
	}
	return r.Name() + "@" + r.Digest
}

// Reference is the canonical reference as a go-containerregistry name (Docker Hub at
// its API host, index.docker.io, which name.NewRegistry does for "docker.io").
func (r ImageRef) Reference(opts ...name.Option) (name.Reference, error) {
	return name.ParseReference(r.String(), opts...)
}

// PinnedImage is one image of a set merged by ImagePins: its canonical reference (with
// the digest every mention agrees on, or none) and the fields that name it.
type PinnedImage struct {
	Ref    ImageRef
	Fields []string
}

// ImagePins merges image mentions (a reference and a separate digest field, as the lock
// and the config give them) by canonical tag. It is the one place that decides whether
// mentions agree: a reference whose own @digest differs from its digest field, and a tag
// pinned to two digests, are errors naming both fields. verify, images and mirror all
// read a lock through it, so none of them can check one digest and ship another.
type ImagePins struct {
	index map[string]int
	out   []PinnedImage
	errs  []error
}

// Add records that field names ref (with digest, which may be ""). It returns the index
// of the merged image, or -1 when the mention is invalid (the error is kept for Err).
func (s *ImagePins) Add(field, ref, digest string) int {
	r, err := ParseImageRef(ref)
	if err != nil {
		s.errs = append(s.errs, fmt.Errorf("%s: %w", field, err))
		return -1
	}
	if digest != "" {
		if err := CheckDigest(digest); err != nil {
			s.errs = append(s.errs, fmt.Errorf("%s: %w", field, err))
			return -1
		}
		if r.Digest != "" && r.Digest != digest {
			s.errs = append(s.errs, fmt.Errorf("%s: reference %s names digest %s but the digest field says %s", field, ref, r.Digest, digest))
			return -1
		}
		r.Digest = digest
	}
	if s.index == nil {
		s.index = map[string]int{}
	}
	key := r.Key()
	i, ok := s.index[key]
	if !ok {
		s.index[key] = len(s.out)
		s.out = append(s.out, PinnedImage{Ref: r, Fields: []string{field}})
		return len(s.out) - 1
	}
	im := &s.out[i]
	switch {
	case im.Ref.Digest == "":
		im.Ref.Digest = r.Digest
	case r.Digest != "" && r.Digest != im.Ref.Digest:
		s.errs = append(s.errs, fmt.Errorf("%s: %s is pinned to %s here but to %s by %s", field, key, r.Digest, im.Ref.Digest, strings.Join(im.Fields, ", ")))
		return -1
	}
	im.Fields = append(im.Fields, field)
	return i
}

// Images returns the merged images in the order they were first added.
func (s *ImagePins) Images() []PinnedImage { return s.out }

// Err joins every problem Add found.
func (s *ImagePins) Err() error { return errors.Join(s.errs...) }
