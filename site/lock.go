package site

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// LockSchema identifies the lockfile format; bump it on incompatible changes.
const LockSchema = "imgpipe.dev/lock/v1"

// Lock is the resolved, pinned state of a site for one Talos release. It is the
// JSON contract of `imgpipe resolve -o json` and the file every later stage reads
// (fetch, verify, mirror, upload, upgrade-plan). Field names are snake_case and
// stable; new fields may be added, existing ones are never renamed.
type Lock struct {
	Schema     string     `json:"schema"`
	Query      string     `json:"query,omitempty"`
	Talos      string     `json:"talos"`
	Kubernetes Kubernetes `json:"kubernetes"`
	Factory    string     `json:"factory"`
	// Matrix records where the compatibility data came from ("embedded" or a path)
	// and its schema version, so a reader knows what the lock was resolved against.
	Matrix   string    `json:"matrix"`
	Profiles []Profile `json:"profiles"`
	// Catalog is the ghcr.io/siderolabs/extensions:<talos> image that lists every
	// extension digest of this release.
	Catalog string `json:"catalog"`
	// CoreImages is the `talosctl images default` set for this Talos release, with the
	// Kubernetes images at Kubernetes.Version. Digests are empty until a stage pins them.
	CoreImages []Image  `json:"core_images"`
	Notes      []string `json:"notes,omitempty"`
}

// Kubernetes is the Kubernetes version chosen for the release and the range the
// Talos release supports (from machinery's compatibility package).
type Kubernetes struct {
	Version   string `json:"version"`
	Default   string `json:"default"`
	Min       string `json:"min"`
	MaxMinor  string `json:"max_minor"`
	Supported bool   `json:"supported"`
}

// Profile is one node profile resolved for the lock's Talos release.
type Profile struct {
	Name       string      `json:"name"`
	Platform   string      `json:"platform"`
	Arch       string      `json:"arch"`
	SecureBoot bool        `json:"secureboot"`
	Schematic  Schematic   `json:"schematic"`
	Extensions []Extension `json:"extensions"`
	Omitted    []Omitted   `json:"omitted"`
	Installer  string      `json:"installer"`
	ISO        string      `json:"iso"`
	DiskImage  string      `json:"disk_image"`
	// Overlay is the board overlay the schematic names, if any.
	Overlay *Overlay `json:"overlay,omitempty"`
	// Artifacts records downloaded files and their checksums (filled by `imgpipe fetch`).
	Artifacts []Artifact `json:"artifacts,omitempty"`
	Notes     []string   `json:"notes,omitempty"`
}

// Schematic is an Image Factory schematic: its ID and canonical YAML.
type Schematic struct {
	ID   string `json:"id"`
	YAML string `json:"yaml"`
}

// Extension is one system extension pinned for a profile.
type Extension struct {
	// Name is the factory's name, e.g. "siderolabs/qemu-guest-agent".
	Name string `json:"name"`
	// Ref is the tagged image reference, e.g. "ghcr.io/siderolabs/qemu-guest-agent:9.2.0".
	Ref string `json:"ref"`
	// Digest is "sha256:<hex>", or empty when no primary source had it (see DigestStatus).
	Digest string `json:"digest"`
	// DigestStatus is "pinned" when Digest is set, "unknown" otherwise.
	DigestStatus string `json:"digest_status"`
	Tier         string `json:"tier,omitempty"`
	Version      string `json:"version"`
	Required     bool   `json:"required"`
}

// Overlay is a board overlay of a profile's schematic and, when the release's catalog
// lists it, the overlay image's tagged ref and digest.
type Overlay struct {
	Name   string `json:"name"`
	Image  string `json:"image"` // as the schematic names it, e.g. siderolabs/sbc-rockchip
	Ref    string `json:"ref,omitempty"`
	Digest string `json:"digest,omitempty"`
}

// Omitted is an optional extension left out of a profile, with the reason.
type Omitted struct {
	Name   string `json:"name"`
	Reason string `json:"reason"`
}

// Image is a container image reference with an optional pinned digest.
type Image struct {
	// Role names what the image is for: "installer", "kubelet", "etcd", "extension", ...
	Role   string `json:"role"`
	Ref    string `json:"ref"`
	Digest string `json:"digest,omitempty"`
}

// Artifact is a downloaded factory artifact (ISO or disk image) with its checksums.
type Artifact struct {
	Kind string `json:"kind"` // "iso" or "disk"
	URL  string `json:"url"`
	// File is the downloaded file on this machine. It is never written to a lockfile
	// (MarshalLock leaves it out; older locks that carry it still parse): the cache
	// belongs to the runner, see factory.Cache.Locate.
	File   string `json:"file,omitempty"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
	SHA512 string `json:"sha512"`
}

// Profile returns the named profile.
func (l *Lock) Profile(name string) (*Profile, bool) {
	for i := range l.Profiles {
		if l.Profiles[i].Name == name {
			return &l.Profiles[i], true
		}
	}
	return nil, false
}

// MarshalLock renders the lock deterministically: fixed field order, two-space
// indentation, trailing newline, so that it diffs cleanly under version control.
// Artifacts' local files are left out: the same resolution and downloads give the
// same bytes on every machine (a stage finds the file in its cache by digest).
func MarshalLock(l *Lock) ([]byte, error) {
	c := *l
	c.Profiles = make([]Profile, len(l.Profiles))
	for i, p := range l.Profiles {
		p.Artifacts = slices.Clone(p.Artifacts)
		for j := range p.Artifacts {
			p.Artifacts[j].File = ""
		}
		c.Profiles[i] = p
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(&c); err != nil {
		return nil, fmt.Errorf("encoding lock: %w", err)
	}
	return buf.Bytes(), nil
}

// ParseLock decodes a lockfile strictly (unknown fields rejected). name is used in errors.
func ParseLock(name string, data []byte) (*Lock, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.DisallowUnknownFields()
	var l Lock
	if err := dec.Decode(&l); err != nil {
		return nil, fail.Usage(fmt.Errorf("%s: %w", name, jsonErrorWithLine(data, err)))
	}
	// A second object or merge-conflict debris after the lock is not a lock.
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, fail.Usage(fmt.Errorf("%s: unexpected data after the lock object at byte %d: re-create the lock with `imgpipe resolve --lock %s`", name, dec.InputOffset(), name))
	}
	if l.Schema != LockSchema {
		return nil, fail.Usage(fmt.Errorf("%s: schema %q is not %q: re-create the lock with `imgpipe resolve --lock %s`", name, l.Schema, LockSchema, name))
	}
	if l.Talos == "" {
		return nil, fail.Usage(fmt.Errorf("%s: field talos is empty", name))
	}
	return &l, nil
}

// ReadLock reads and parses a lockfile.
func ReadLock(path string) (*Lock, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("reading lock: %w", err))
	}
	return ParseLock(path, data)
}

// WriteLock writes the lock atomically (temp file + rename in the same directory),
// so a reader never sees a half-written lock.
func WriteLock(path string, l *Lock) error {
	data, err := MarshalLock(l)
	if err != nil {
		return err
	}
	return WriteFileAtomic(path, data, 0o644)
}

// WriteFileAtomic writes data to a temporary file beside path and renames it into
// place, so path either keeps its old content or gets all of the new.
func WriteFileAtomic(path string, data []byte, perm os.FileMode) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // no-op after a successful rename
	if _, err := f.Write(data); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	// Persist the rename itself, so a crash cannot bring back the old file.
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync() // best effort: some filesystems refuse to sync directories
		d.Close()
	}
	return nil
}

func jsonErrorWithLine(data []byte, err error) error {
	var off int64 = -1
	switch e := err.(type) {
	case *json.SyntaxError:
		off = e.Offset
	case *json.UnmarshalTypeError:
		off = e.Offset
	}
	if off < 0 {
		return err
	}
	line := 1 + bytes.Count(data[:min(int(off), len(data))], []byte("\n"))
	return fmt.Errorf("line %d: %w", line, err)
}
