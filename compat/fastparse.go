package compat

import (
	"bytes"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strconv"
	"strings"
)

// errNotCanonical makes Parse fall back to the YAML decoder.
var errNotCanonical = errors.New("not in canonical form")

// decodeCanonical reads matrix.yaml in exactly the form Marshal writes it (block
// mappings, one flow mapping per extension or overlay line, the scalars the encoder
// emits) without a YAML parser: the full catalog is ~350 KB, which yaml.v3 takes tens
// of milliseconds to decode on every start. Anything it does not recognise - a comment
// after a value, an unknown key, another indentation, an escape - returns
// errNotCanonical and Parse decodes the file with yamlx, which gives the strict
// file:line errors. It never judges values; validate does that for both paths.
// FuzzCanonicalEqualsYAML holds it to the YAML decoder's result.
func decodeCanonical(data []byte) (*Matrix, error) {
	for _, c := range data {
		// YAML folds CRLF, refuses control characters and invalid UTF-8, and treats
		// some non-ASCII characters as line breaks: the encoder writes none of them.
		if c >= 0x7f || c < ' ' && c != '\n' {
			return nil, errNotCanonical
		}
	}
	p := canonicalParser{m: &Matrix{}}
	for n := 1; len(data) > 0; n++ {
		line := data
		if i := bytes.IndexByte(data, '\n'); i >= 0 {
			line, data = data[:i], data[i+1:]
		} else {
			data = nil
		}
		if len(line) == 0 || line[0] == '#' {
			continue // a comment line, or a blank one
		}
		if err := p.line(string(line)); err != nil {
			return nil, fmt.Errorf("line %d: %w", n, err)
		}
	}
	if !p.topSeen["schemaVersion"] || !p.topSeen["releases"] {
		return nil, errNotCanonical
	}
	return p.m, nil
}

type canonicalParser struct {
	m       *Matrix
	section string // "", "extensions", "releases", "images", "rextensions", "overlays"
	rel     *Release
	seen    map[string]bool // keys of the current mapping
	topSeen map[string]bool
}

func (p *canonicalParser) line(l string) error {
	switch {
	case !strings.HasPrefix(l, " "):
		return p.top(l)
	case strings.HasPrefix(l, "  - "):
		if p.section != "releases" && p.rel == nil {
			return errNotCanonical
		}
		p.m.Releases = append(p.m.Releases, Release{})
		p.rel = &p.m.Releases[len(p.m.Releases)-1]
		p.seen = map[string]bool{}
		p.section = "releases"
		return p.releaseField(l[4:])
	case strings.HasPrefix(l, "      ") && !strings.HasPrefix(l, "       "):
		return p.nested(l[6:])
	case strings.HasPrefix(l, "    ") && !strings.HasPrefix(l, "     "):
		if p.rel == nil {
			return errNotCanonical
		}
		return p.releaseField(l[4:])
	case strings.HasPrefix(l, "  ") && !strings.HasPrefix(l, "   ") && p.section == "extensions" && p.rel == nil:
		return p.extensionMeta(l[2:])
	}
	return errNotCanonical
}

func (p *canonicalParser) top(l string) error {
	if p.topSeen == nil {
		p.topSeen = map[string]bool{}
	}
	p.seen = p.topSeen
	k, v, err := p.key(l)
	if err != nil || p.rel != nil {
		return errNotCanonical
	}
	p.section = ""
	switch k {
	case "schemaVersion":
		n, err := strconv.Atoi(v)
		if err != nil || strconv.Itoa(n) != v {
			return errNotCanonical
		}
		p.m.SchemaVersion = n
	case "source":
		p.m.Source, err = scalar(v)
	case "extensions":
		p.section = k
		p.m.Extensions, err = emptyOrBlock(v, p.m.Extensions)
	case "releases":
		if v != "" {
			return errNotCanonical
		}
		p.section = k
	default:
		return errNotCanonical
	}
	return err
}

// key splits "k: v" (or "k:"), refusing a key seen before in the same mapping.
func (p *canonicalParser) key(l string) (string, string, error) {
	k, v, ok := strings.Cut(l, ":")
	if !ok || k == "" || strings.ContainsAny(k, " '\"{}[],#") || p.seen[k] {
		return "", "", errNotCanonical
	}
	p.seen[k] = true
	if v == "" {
		return k, "", nil
	}
	if v[0] != ' ' || len(v) < 2 || v[1] == ' ' {
		return "", "", errNotCanonical
	}
	return k, v[1:], nil
}

func (p *canonicalParser) releaseField(l string) error {
	p.section = "releases"
	k, v, err := p.key(l)
	if err != nil {
		return err
	}
	r := p.rel
	switch k {
	case "images":
		if v != "" {
			return errNotCanonical
		}
		p.section = "images"
	case "extensions":
		p.section = "rextensions"
		r.Extensions, err = emptyOrBlock(v, r.Extensions)
	case "overlays":
		p.section = "overlays"
		r.Overlays, err = emptyOrBlock(v, r.Overlays)
	default:
		return scalarField(reflect.ValueOf(r).Elem(), k, v)
	}
	return err
}

// scalarField sets the string or bool field of struct sv whose yaml tag is key, so a
// scalar field added to Release needs no change here (a collection does). Marshal
// writes a bool only when true.
func scalarField(sv reflect.Value, key, v string) error {
	t := sv.Type()
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("yaml"), ",")
		if name != key || !t.Field(i).IsExported() {
			continue
		}
		f := sv.Field(i)
		switch f.Kind() {
		case reflect.String:
			s, err := scalar(v)
			f.SetString(s)
			return err
		case reflect.Bool:
			if v != "true" {
				return errNotCanonical
			}
			f.SetBool(true)
			return nil
		}
		return errNotCanonical
	}
	return errNotCanonical
}

// emptyOrBlock starts a mapping: "{}" is an empty one, "" a block that nested fills
// (still nil if no entry follows, as the YAML decoder leaves it).
func emptyOrBlock[V any](v string, _ map[string]V) (map[string]V, error) {
	switch v {
	case "":
		return nil, nil
	case "{}":
		return map[string]V{}, nil
	}
	return nil, errNotCanonical
}

// nested is a line under a release's images, extensions or overlays.
func (p *canonicalParser) nested(l string) error {
	if p.rel == nil {
		return errNotCanonical
	}
	name, rest, ok := strings.Cut(l, ": ")
	if !ok || !isKey(name) {
		return errNotCanonical
	}
	switch p.section {
	case "images":
		return p.image(name, rest)
	case "rextensions":
		if p.rel.Extensions == nil {
			p.rel.Extensions = make(map[string]ExtensionTag, 96) // a catalog's size: no regrowth
		}
		if _, dup := p.rel.Extensions[name]; dup {
			return errNotCanonical
		}
		f, err := flowMap(rest, "tag", "digest", "tier")
		if err != nil {
			return err
		}
		p.rel.Extensions[name] = ExtensionTag{Tag: f[0].s, Digest: f[1].s, Tier: f[2].s}
	case "overlays":
		if p.rel.Overlays == nil {
			p.rel.Overlays = map[string]OverlayImage{}
		}
		if _, dup := p.rel.Overlays[name]; dup {
			return errNotCanonical
		}
		f, err := flowMap(rest, "tag", "digest", "boards")
		if err != nil {
			return err
		}
		p.rel.Overlays[name] = OverlayImage{Tag: f[0].s, Digest: f[1].s, Boards: f[2].list}
	default:
		return errNotCanonical
	}
	return nil
}

func (p *canonicalParser) image(name, v string) error {
	s, err := scalar(v)
	if err != nil {
		return err
	}
	f := p.rel.Images.field(name)
	if f == nil || *f != "" {
		return errNotCanonical
	}
	*f = s
	return nil
}

// field is the CoreImages field with the given YAML key, or nil.
func (img *CoreImages) field(key string) *string {
	switch key {
	case "installer":
		return &img.Installer
	case "installer-base":
		return &img.InstallerBase
	case "etcd":
		return &img.Etcd
	case "coredns":
		return &img.CoreDNS
	case "flannel":
		return &img.Flannel
	case "pause":
		return &img.Pause
	case "kubelet":
		return &img.Kubelet
	case "kube-apiserver":
		return &img.KubeAPIServer
	case "kube-controller-manager":
		return &img.KubeControllerManager
	case "kube-scheduler":
		return &img.KubeScheduler
	case "kube-proxy":
		return &img.KubeProxy
	}
	return nil
}

func (p *canonicalParser) extensionMeta(l string) error {
	name, rest, ok := strings.Cut(l, ": ")
	if !ok || !isKey(name) {
		return errNotCanonical
	}
	if p.m.Extensions == nil {
		p.m.Extensions = map[string]ExtensionMeta{}
	}
	if _, dup := p.m.Extensions[name]; dup {
		return errNotCanonical
	}
	f, err := flowMap(rest, "tier", "since", "until", "note")
	if err != nil {
		return err
	}
	p.m.Extensions[name] = ExtensionMeta{Tier: f[0].s, Since: f[1].s, Until: f[2].s, Note: f[3].s}
	return nil
}

type flowValue struct {
	s    string
	list []string
}

// flowMap reads "{k: v, k: v}" with the given keys (each at most once); a value is a
// scalar, or a flow sequence of scalars. out[i] is keys[i]'s value.
func flowMap(s string, keys ...string) (out [4]flowValue, _ error) {
	if len(s) < 2 || s[0] != '{' || s[len(s)-1] != '}' {
		return out, errNotCanonical
	}
	s = s[1 : len(s)-1]
	var seen [4]bool
	for s != "" {
		k, rest, ok := strings.Cut(s, ": ")
		i := slices.Index(keys, k)
		if !ok || i < 0 || seen[i] {
			return out, errNotCanonical
		}
		seen[i] = true
		var v flowValue
		var err error
		if strings.HasPrefix(rest, "[") {
			v.list, rest, err = flowSeq(rest)
		} else {
			v.s, rest, err = flowScalar(rest)
		}
		if err != nil {
			return out, err
		}
		out[i] = v
		if rest == "" {
			break
		}
		if !strings.HasPrefix(rest, ", ") {
			return out, errNotCanonical
		}
		s = rest[2:]
	}
	return out, nil
}

func flowSeq(s string) ([]string, string, error) {
	s = s[1:]
	list := []string{}
	if strings.HasPrefix(s, "]") {
		return list, s[1:], nil
	}
	for {
		v, rest, err := flowScalar(s)
		if err != nil {
			return nil, "", err
		}
		list = append(list, v)
		switch {
		case strings.HasPrefix(rest, "]"):
			return list, rest[1:], nil
		case strings.HasPrefix(rest, ", "):
			s = rest[2:]
		default:
			return nil, "", errNotCanonical
		}
	}
}

// flowScalar reads one scalar inside a flow collection and returns the rest.
func flowScalar(s string) (string, string, error) {
	if s != "" && (s[0] == '\'' || s[0] == '"') {
		end := quotedEnd(s)
		if end < 0 {
			return "", "", errNotCanonical
		}
		v, err := scalar(s[:end])
		return v, s[end:], err
	}
	end := strings.IndexAny(s, ",[]{}")
	if end < 0 {
		end = len(s)
	}
	if end < len(s) && (s[end] == '[' || s[end] == '{') {
		return "", "", errNotCanonical // a flow indicator inside a plain scalar
	}
	v, err := scalar(s[:end])
	return v, s[end:], err
}

// quotedEnd returns the index just past the closing quote of the quoted scalar s starts with.
func quotedEnd(s string) int {
	q := s[0]
	for i := 1; i < len(s); i++ {
		if s[i] != q {
			continue
		}
		if q == '\'' && i+1 < len(s) && s[i+1] == '\'' {
			i++
			continue
		}
		return i + 1
	}
	return -1
}

// scalar decodes a string scalar the way yaml.v3 does into a string field, for the
// forms the encoder writes: plain text that YAML cannot read as anything but itself,
// 'single-quoted' and "double-quoted without escapes".
func scalar(v string) (string, error) {
	switch {
	case v == "":
		return "", errNotCanonical
	case v[0] == '\'':
		if len(v) < 2 || v[len(v)-1] != '\'' || quotedEnd(v) != len(v) {
			return "", errNotCanonical
		}
		return strings.ReplaceAll(v[1:len(v)-1], "''", "'"), nil
	case v[0] == '"':
		if len(v) < 2 || v[len(v)-1] != '"' || strings.ContainsAny(v[1:len(v)-1], "\"\\") {
			return "", errNotCanonical
		}
		return v[1 : len(v)-1], nil
	}
	if plainIndicators.has(v[0]) || !allIn(v, &plainSafe) && (strings.ContainsAny(v, "\t\\") ||
		strings.Contains(v, ": ") || strings.Contains(v, " #") || strings.HasSuffix(v, ":") || strings.HasSuffix(v, " ")) {
		return "", errNotCanonical
	}
	switch v {
	case "~", "null", "Null", "NULL":
		return "", errNotCanonical
	}
	return v, nil
}

var (
	// plainIndicators may not start a plain scalar.
	plainIndicators = setOf("-?:,[]{}#&*!|>'\"%@` ")
	// plainSafe never changes a plain scalar's meaning anywhere in it (most values are
	// made of these alone, and skip the slower checks).
	plainSafe = setOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-/+=")
)

// keyChars are the characters of the keys Marshal writes (extension, image and board
// names); a key made of them, not starting with '-', is a plain string in YAML unless
// it is a null.
var keyChars = setOf("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-")

func isKey(s string) bool {
	switch s {
	case "", "~", "null", "Null", "NULL":
		return false
	}
	return s[0] != '-' && allIn(s, &keyChars)
}
