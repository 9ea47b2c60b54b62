package site

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/siderolabs/image-factory/pkg/schematic"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
)

// ErrLockInvalid marks a lock that fails validation; the joined errors name each field.
var ErrLockInvalid = errors.New("lock is invalid")

var (
	// hex64RE is a schematic ID, or a sha256 written as bare hex.
	hex64RE  = regexp.MustCompile(`^[0-9a-f]{64}$`)
	sha512RE = regexp.MustCompile(`^sha512:[0-9a-f]{128}$`)
	// fileNameRE is a factory artifact file name: one path segment, no dot-only names.
	fileNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]*$`)
)

// Validate checks everything in a lock that needs no outside data: schema, version
// grammar, the factory URL (no credentials), every digest's grammar, that each image
// reference agrees with its digest field and no tag is pinned to two digests (ImagePins,
// the same rule images and mirror apply), that each schematic ID is the sha256 of its
// YAML as Image Factory computes it, and that the installer, ISO and disk image names
// carry that ID and the lock's Talos version. Each problem names its field; the result
// wraps ErrLockInvalid. It never touches the file system: a lock is data until it passes.
func (l *Lock) Validate() error {
	var errs []error
	bad := func(field, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", field, fmt.Sprintf(format, args...)))
	}
	if l.Schema != LockSchema {
		bad("schema", "%q is not %q", l.Schema, LockSchema)
	}
	if _, err := semver.StrictNewVersion(strings.TrimPrefix(l.Talos, "v")); err != nil || !strings.HasPrefix(l.Talos, "v") {
		bad("talos", "%q is not a Talos version like v1.9.5", l.Talos)
	}
	if l.Factory != "" {
		if err := checkHTTPURL(l.Factory); err != nil {
			bad("factory", "%v", err)
		}
	}
	pins := &ImagePins{}
	for i, c := range l.CoreImages {
		pins.Add(fmt.Sprintf("core_images[%d] (%s)", i, c.Role), c.Ref, c.Digest)
	}
	if l.Catalog != "" {
		pins.Add("catalog", l.Catalog, "")
	}
	seen := map[string]bool{}
	for i := range l.Profiles {
		p := &l.Profiles[i]
		field := fmt.Sprintf("profiles[%d] (%s)", i, p.Name)
		if seen[p.Name] || p.Name == "" {
			bad(field, "profile name is empty or used twice")
		}
		seen[p.Name] = true
		errs = append(errs, l.validateProfile(field, p, pins)...)
	}
	if err := pins.Err(); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil
	}
	return fmt.Errorf("%w: %w", ErrLockInvalid, errors.Join(errs...))
}

func (l *Lock) validateProfile(field string, p *Profile, pins *ImagePins) []error {
	var errs []error
	bad := func(sub, format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s.%s: %s", field, sub, fmt.Sprintf(format, args...)))
	}
	id := p.Schematic.ID
	if !hex64RE.MatchString(id) {
		bad("schematic.id", "%q is not 64 lower-case hex digits", id)
	} else if got, err := schematicID(p.Schematic.YAML); err != nil {
		bad("schematic.yaml", "%v", err)
	} else if got != id {
		bad("schematic.id", "%s, but the schematic YAML hashes to %s: re-create the lock with `imgpipe resolve --lock`", id, got)
	}
	for j, e := range p.Extensions {
		sub := fmt.Sprintf("extensions[%d] (%s)", j, e.Name)
		pins.Add(field+"."+sub, e.Ref, e.Digest)
		if e.DigestStatus == "pinned" && e.Digest == "" || e.DigestStatus == "unknown" && e.Digest != "" {
			bad(sub, "digest_status %q does not fit digest %q (pinned iff a digest is set)", e.DigestStatus, e.Digest)
		}
	}
	if p.Installer != "" {
		if k := pins.Add(field+".installer", p.Installer, ""); k >= 0 {
			r := pins.Images()[k].Ref
			if path.Base(r.Repository) != id || r.Tag != l.Talos {
				bad("installer", "%s does not name schematic %s at Talos %s", p.Installer, id, l.Talos)
			}
		}
	}
	for kind, u := range map[string]string{"iso": p.ISO, "disk_image": p.DiskImage} {
		if u == "" {
			continue
		}
		if err := l.checkImageURL(u, id); err != nil {
			bad(kind, "%v", err)
		}
	}
	kinds := map[string]bool{}
	for j, a := range p.Artifacts {
		sub := fmt.Sprintf("artifacts[%d]", j)
		if a.Kind != "iso" && a.Kind != "disk" || kinds[a.Kind] {
			bad(sub+".kind", "%q is not iso or disk, or is listed twice", a.Kind)
		}
		kinds[a.Kind] = true
		if err := CheckDigest(a.SHA256); err != nil {
			bad(sub+".sha256", "%v", err)
		}
		if a.SHA512 != "" && !sha512RE.MatchString(a.SHA512) {
			bad(sub+".sha512", "%q is not \"sha512:\" and 128 lower-case hex digits", a.SHA512)
		}
		if a.Size < 0 {
			bad(sub+".size", "%d is negative", a.Size)
		}
		if err := checkHTTPURL(a.URL); err != nil {
			bad(sub+".url", "%v", err)
		}
	}
	return errs
}

// normalize writes an artifact checksum given as bare hex (hand-written locks) in the
// "sha256:<hex>" form every reader expects; anything else is left for Validate.
func (l *Lock) normalize() {
	for i := range l.Profiles {
		for j := range l.Profiles[i].Artifacts {
			a := &l.Profiles[i].Artifacts[j]
			if hex64RE.MatchString(a.SHA256) {
				a.SHA256 = "sha256:" + a.SHA256
			}
			if len(a.SHA512) == 128 && sha512RE.MatchString("sha512:"+a.SHA512) {
				a.SHA512 = "sha512:" + a.SHA512
			}
		}
	}
}

// checkImageURL checks a factory download URL: http(s), no credentials, and a path
// /image/<schematic>/<talos>/<file> naming this profile's schematic and the lock's
// release, the file one plain segment.
func (l *Lock) checkImageURL(raw, id string) error {
	if err := checkHTTPURL(raw); err != nil {
		return err
	}
	u, _ := url.Parse(raw)
	i := strings.LastIndex(u.Path, "/image/")
	if i < 0 {
		return fmt.Errorf("%s is not a factory image URL (<factory>/image/<schematic>/<talos>/<file>)", RedactURL(raw))
	}
	parts := strings.Split(u.Path[i+len("/image/"):], "/")
	if len(parts) != 3 || parts[0] != id || parts[1] != l.Talos || !fileNameRE.MatchString(parts[2]) {
		return fmt.Errorf("%s does not name schematic %s at Talos %s with a plain file name", RedactURL(raw), id, l.Talos)
	}
	return nil
}

// checkHTTPURL accepts an absolute http(s) URL with a host and no credentials.
func checkHTTPURL(raw string) error {
	if err := CheckURLCredentials(raw); err != nil {
		return fmt.Errorf("%s: %w", RedactURL(raw), err)
	}
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return fmt.Errorf("%q is not an http(s) URL", RedactURL(raw))
	}
	return nil
}

// schematicID is the schematic's ID as Image Factory computes it (image-factory's
// pkg/schematic: the sha256 of its canonical YAML).
func schematicID(yamlText string) (string, error) {
	s, err := schematic.Unmarshal([]byte(yamlText))
	if err != nil {
		return "", fmt.Errorf("parsing schematic: %w", err)
	}
	id, err := s.ID()
	if err != nil {
		return "", fmt.Errorf("computing schematic ID: %w", err)
	}
	return id, nil
}

// CheckMatrix checks what Validate cannot: that the lock's Talos release is one the
// compatibility matrix knows. A lock whose talos was edited by hand to a release the
// matrix lacks would otherwise flow into machine configs and upgrade plans unchecked.
func (l *Lock) CheckMatrix(m *compat.Matrix) error {
	if m == nil {
		return nil
	}
	if _, ok := m.Release(l.Talos); !ok {
		return fail.Usage(fmt.Errorf("%w: talos: %s is not in the compatibility matrix: re-create the lock with `imgpipe resolve --lock`, or update matrix.yaml", ErrLockInvalid, l.Talos))
	}
	return nil
}
