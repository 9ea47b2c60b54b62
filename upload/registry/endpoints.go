package registry

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"sort"
	"strconv"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Mode is how an endpoint is filled.
type Mode string

// Modes of an endpoint.
const (
	// ModeAuto probes the endpoint: a registry that refuses an upload (405) is a
	// pull-through cache and gets warmed, any other gets pushed to.
	ModeAuto Mode = "auto"
	// ModePush copies by digest into a plain registry.
	ModePush Mode = "push"
	// ModeWarm pulls every manifest and blob through a pull-through cache.
	ModeWarm Mode = "warm"
)

// ParseMode checks a mode name; "" means auto.
func ParseMode(s string) (Mode, error) {
	switch Mode(s) {
	case "", ModeAuto:
		return ModeAuto, nil
	case ModePush, ModeWarm:
		return Mode(s), nil
	}
	return "", fail.Usage(fmt.Errorf("unknown registry mode %q: use auto, push or warm", s))
}

// DockerHub is the canonical name imgpipe uses for Docker Hub, whatever alias a
// reference used (docker.io, index.docker.io, registry-1.docker.io).
const DockerHub = "docker.io"

// DefaultPorts are the site's local registry ports, one pull-through cache per upstream,
// as Talos machine.registries.mirrors point at them.
func DefaultPorts() map[string]int {
	return map[string]int{
		"docker.io":       5000,
		"ghcr.io":         5010,
		"quay.io":         5020,
		"registry.k8s.io": 5030,
		"reg.kyverno.io":  5040,
	}
}

// ErrNoMirror means an image's upstream has no local endpoint configured.
var ErrNoMirror = errors.New("no mirror configured for upstream")

// Endpoint is the local registry that mirrors one upstream.
type Endpoint struct {
	// Upstream is the canonical upstream host ("docker.io", "ghcr.io", ...).
	Upstream string `json:"upstream"`
	// Host is the local registry's host:port.
	Host string `json:"host"`
	// Prefix is the repository prefix inside Host ("" per-upstream registries;
	// "<upstream>" or "<path>/<upstream>" with overridePath).
	Prefix string `json:"prefix,omitempty"`
	// Mode is as configured; ModeAuto is resolved by probing at run time.
	Mode     Mode `json:"mode"`
	Insecure bool `json:"insecure,omitempty"`
}

// Registry returns the endpoint as a ggcr registry name (plain HTTP when Insecure).
func (e Endpoint) Registry() (name.Registry, error) {
	var opts []name.Option
	if e.Insecure {
		opts = append(opts, name.Insecure)
	}
	return name.NewRegistry(e.Host, opts...)
}

// EndpointMap maps upstream hosts to their local endpoints. It is built from
// imgpipe.yaml's registries section and does no I/O.
type EndpointMap struct {
	byUpstream map[string]Endpoint
	// override, when set, takes every upstream without its own entry (overridePath layout).
	override *Endpoint
}

// NewEndpointMap builds the map from the registries section of imgpipe.yaml:
//   - registries.host gives every upstream of DefaultPorts an endpoint host:port;
//   - registries.mirrors adds or overrides endpoints per upstream host;
//   - registries.overridePath sends every other upstream to one registry under /<upstream>/.
//
// Errors name the offending field and wrap fail.ErrUsage.
func NewEndpointMap(cfg site.RegistryConfig) (*EndpointMap, error) {
	defMode, err := ParseMode(cfg.Mode)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("registries.mode: %w", err))
	}
	m := &EndpointMap{byUpstream: map[string]Endpoint{}}
	var errs []error
	if cfg.Host != "" {
		host := strings.TrimSpace(cfg.Host)
		if strings.Contains(host, "/") || strings.Contains(host, ":") && !strings.HasPrefix(host, "[") {
			errs = append(errs, fmt.Errorf("registries.host %q: give a bare host name or IP (ports come from the defaults or registries.mirrors)", cfg.Host))
		} else {
			for up, port := range DefaultPorts() {
				m.byUpstream[up] = Endpoint{Upstream: up, Host: net.JoinHostPort(strings.Trim(host, "[]"), strconv.Itoa(port)),
					Mode: defMode, Insecure: cfg.Insecure}
			}
		}
	}
	ups := make([]string, 0, len(cfg.Mirrors))
	for up := range cfg.Mirrors {
		ups = append(ups, up)
	}
	sort.Strings(ups)
	for _, up := range ups {
		mc := cfg.Mirrors[up]
		field := fmt.Sprintf("registries.mirrors[%q]", up)
		canon, err := canonicalHost(up)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", field, err))
			continue
		}
		ep, err := parseEndpoint(mc.Endpoint, cfg.Insecure)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s.endpoint: %w", field, err))
			continue
		}
		ep.Upstream = canon
		ep.Mode = defMode
		if mc.Mode != "" {
			if ep.Mode, err = ParseMode(mc.Mode); err != nil {
				errs = append(errs, fmt.Errorf("%s.mode: %w", field, err))
				continue
			}
		}
		if mc.Insecure != nil {
			ep.Insecure = *mc.Insecure
		}
		m.byUpstream[canon] = ep
	}
	if cfg.OverridePath != "" {
		ep, err := parseEndpoint(cfg.OverridePath, cfg.Insecure)
		if err != nil {
			errs = append(errs, fmt.Errorf("registries.overridePath: %w", err))
		} else {
			ep.Mode = defMode
			m.override = &ep
		}
	}
	if len(errs) > 0 {
		return nil, fail.Usage(errors.Join(errs...))
	}
	return m, nil
}

// parseEndpoint accepts "host:port", "http://host:port" (plain HTTP) or
// "https://host:port/some/path" (the path becomes a repository prefix).
func parseEndpoint(s string, insecure bool) (Endpoint, error) {
	s = strings.TrimSpace(s)
	if s == "" {
		return Endpoint{}, errors.New("empty endpoint: give host:port or http://host:port")
	}
	if !strings.Contains(s, "://") {
		s = "https://" + s
	} else if strings.HasPrefix(s, "http://") {
		insecure = true
	} else if !strings.HasPrefix(s, "https://") {
		return Endpoint{}, fmt.Errorf("endpoint %q: scheme must be http or https", s)
	}
	u, err := url.Parse(s)
	if err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	if u.Host == "" || u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: want host:port with an optional path", s)
	}
	prefix := strings.Trim(u.Path, "/")
	// Talos endpoints with overridePath carry the /v2 of the API; it is not part of a repository name.
	prefix = strings.TrimPrefix(strings.TrimPrefix(prefix, "v2"), "/")
	if _, err := name.NewRegistry(u.Host); err != nil {
		return Endpoint{}, fmt.Errorf("endpoint %q: %w", s, err)
	}
	return Endpoint{Host: u.Host, Prefix: prefix, Insecure: insecure}, nil
}

// canonicalHost puts an upstream host in site.CanonicalRegistry's form (lower case, no
// ":443", Docker Hub's aliases folded), the form verify's policies match too.
func canonicalHost(h string) (string, error) {
	h = site.CanonicalRegistry(h)
	if h == "" {
		return "", errors.New("empty upstream host")
	}
	if strings.ContainsAny(h, "/@ ") {
		return "", fmt.Errorf("upstream %q is not a host name", h)
	}
	return h, nil
}

// Lookup returns the endpoint for an upstream host (aliases of Docker Hub fold to docker.io).
func (m *EndpointMap) Lookup(upstream string) (Endpoint, bool) {
	canon, err := canonicalHost(upstream)
	if err != nil {
		return Endpoint{}, false
	}
	if ep, ok := m.byUpstream[canon]; ok {
		return ep, true
	}
	if m.override != nil {
		ep := *m.override
		ep.Upstream = canon
		ep.Prefix = strings.TrimPrefix(ep.Prefix+"/"+canon, "/")
		return ep, true
	}
	return Endpoint{}, false
}

// Endpoints lists the configured per-upstream endpoints, sorted by upstream.
func (m *EndpointMap) Endpoints() []Endpoint {
	out := make([]Endpoint, 0, len(m.byUpstream))
	for _, ep := range m.byUpstream {
		out = append(out, ep)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Upstream < out[j].Upstream })
	return out
}

// Empty reports whether no upstream has a mirror.
func (m *EndpointMap) Empty() bool { return len(m.byUpstream) == 0 && m.override == nil }

// WithMode returns a copy of the map with every endpoint's mode set to mode.
func (m *EndpointMap) WithMode(mode Mode) *EndpointMap {
	c := &EndpointMap{byUpstream: make(map[string]Endpoint, len(m.byUpstream))}
	for k, ep := range m.byUpstream {
		ep.Mode = mode
		c.byUpstream[k] = ep
	}
	if m.override != nil {
		o := *m.override
		o.Mode = mode
		c.override = &o
	}
	return c
}

// MirrorRef maps an upstream reference ("ghcr.io/siderolabs/kubelet:v1.32.0", optionally
// with @digest) to its reference at the local mirror ("10.0.0.5:5010/siderolabs/kubelet:v1.32.0").
// Docker Hub's implicit library/ is made explicit. The error wraps ErrNoMirror when the
// upstream has no endpoint, and fail.ErrUsage when ref does not parse.
func (m *EndpointMap) MirrorRef(ref string) (string, Endpoint, error) {
	r, err := ParseRef(ref)
	if err != nil {
		return "", Endpoint{}, err
	}
	ep, ok := m.Lookup(r.Upstream)
	if !ok {
		return "", Endpoint{}, fmt.Errorf("mapping %s: %w %s", ref, ErrNoMirror, r.Upstream)
	}
	return r.at(ep).String(), ep, nil
}

// Ref is a parsed image reference: canonical upstream host, repository path, tag
// and optional digest.
type Ref struct {
	Upstream   string // canonical host, e.g. "docker.io"
	Repository string // e.g. "library/nginx"
	Tag        string // "" when the reference had only a digest
	Digest     string // "sha256:<hex>" or ""
}

// ParseRef parses "host/repo[:tag][@sha256:...]"; a missing host means Docker Hub and a
// missing tag and digest means "latest", as docker does. Errors wrap fail.ErrUsage.
func ParseRef(s string) (Ref, error) {
	s = strings.TrimSpace(s)
	base, _, hasDigest := strings.Cut(s, "@")
	var r Ref
	if hasDigest {
		d, err := name.NewDigest(s)
		if err != nil {
			return Ref{}, fail.Usage(fmt.Errorf("image reference %q: %w", s, err))
		}
		r.Digest = d.DigestStr()
		r.Upstream, r.Repository = d.Context().RegistryStr(), d.Context().RepositoryStr()
		if t, err := name.NewTag(base); err == nil && hasExplicitTag(base) {
			r.Tag = t.TagStr()
		}
	} else {
		t, err := name.NewTag(base)
		if err != nil {
			return Ref{}, fail.Usage(fmt.Errorf("image reference %q: %w", s, err))
		}
		r.Upstream, r.Repository, r.Tag = t.RegistryStr(), t.RepositoryStr(), t.TagStr()
	}
	up, err := canonicalHost(r.Upstream)
	if err != nil {
		return Ref{}, fail.Usage(fmt.Errorf("image reference %q: %w", s, err))
	}
	r.Upstream = up
	return r, nil
}

// hasExplicitTag reports whether a reference without digest spells out a tag
// (a colon after the last slash; a colon before it is a port).
func hasExplicitTag(base string) bool {
	i := strings.LastIndex(base, "/")
	return strings.Contains(base[i+1:], ":")
}

// String renders the reference as repo[:tag][@digest] with its upstream host.
func (r Ref) String() string {
	s := r.Upstream + "/" + r.Repository
	if r.Tag != "" {
		s += ":" + r.Tag
	}
	if r.Digest != "" {
		s += "@" + r.Digest
	}
	return s
}

// Name is the repository without tag or digest.
func (r Ref) Name() string { return r.Upstream + "/" + r.Repository }

// MirrorTarget is a reference at a local endpoint.
type MirrorTarget struct {
	Host       string
	Repository string
	Tag        string
	Digest     string
}

func (r Ref) at(ep Endpoint) MirrorTarget {
	repo := r.Repository
	if ep.Prefix != "" {
		repo = ep.Prefix + "/" + repo
	}
	return MirrorTarget{Host: ep.Host, Repository: repo, Tag: r.Tag, Digest: r.Digest}
}

func (t MirrorTarget) String() string {
	s := t.Host + "/" + t.Repository
	if t.Tag != "" {
		s += ":" + t.Tag
	}
	if t.Digest != "" {
		s += "@" + t.Digest
	}
	return s
}
