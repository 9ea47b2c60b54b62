package machineconfig

import (
	"slices"
	"strings"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

// mirror is one upstream's local endpoint as a node reaches it.
type mirror struct {
	Upstream     string
	URL          string
	Host         string // host:port of URL, what a TLS document is named after
	OverridePath bool
	Insecure     bool
}

// mirrorList resolves every upstream the node pulls from to its site endpoint.
func mirrorList(lock *site.Lock, m *registry.EndpointMap) []mirror {
	var out []mirror
	for _, up := range upstreams(lock, m) {
		ep, ok := m.Lookup(up)
		if !ok {
			continue
		}
		scheme := "https"
		if ep.Insecure {
			scheme = "http"
		}
		mr := mirror{Upstream: ep.Upstream, URL: scheme + "://" + ep.Host, Host: ep.Host, Insecure: ep.Insecure}
		if ep.Prefix != "" {
			// A single registry holding every upstream under a path (Harbor-style).
			mr.URL = scheme + "://" + ep.Host + "/v2/" + ep.Prefix
			mr.OverridePath = true
		}
		out = append(out, mr)
	}
	return out
}

// legacyRegistries is machine.registries for Talos < 1.12.
func legacyRegistries(mirrors []mirror) map[string]any {
	out := map[string]any{}
	for _, mr := range mirrors {
		m := map[string]any{"endpoints": []string{mr.URL}}
		if mr.OverridePath {
			m["overridePath"] = true
		}
		out[mr.Upstream] = m
	}
	return map[string]any{"mirrors": out}
}

// The documents of Talos >= 1.12 (config/types/cri), in the field order Talos writes.
type (
	mirrorDoc struct {
		APIVersion string           `yaml:"apiVersion"`
		Kind       string           `yaml:"kind"`
		Name       string           `yaml:"name"`
		Endpoints  []mirrorEndpoint `yaml:"endpoints"`
	}
	mirrorEndpoint struct {
		URL          string `yaml:"url"`
		OverridePath bool   `yaml:"overridePath,omitempty"`
	}
	tlsDoc struct {
		APIVersion         string `yaml:"apiVersion"`
		Kind               string `yaml:"kind"`
		Name               string `yaml:"name"`
		InsecureSkipVerify bool   `yaml:"insecureSkipVerify"`
	}
)

// registryDocs is one RegistryMirrorConfig per upstream and, for endpoints the site
// marks insecure (plain HTTP or a self-signed certificate), one RegistryTLSConfig per
// endpoint host with insecureSkipVerify, so that an https:// endpoint the operator
// adds in a patch for the same host also works.
func registryDocs(mirrors []mirror) []any {
	var docs, tls []any
	seen := map[string]bool{}
	for _, mr := range mirrors {
		docs = append(docs, mirrorDoc{APIVersion: "v1alpha1", Kind: "RegistryMirrorConfig", Name: mr.Upstream,
			Endpoints: []mirrorEndpoint{{URL: mr.URL, OverridePath: mr.OverridePath}}})
		if mr.Insecure && !seen[mr.Host] {
			seen[mr.Host] = true
			tls = append(tls, tlsDoc{APIVersion: "v1alpha1", Kind: "RegistryTLSConfig", Name: mr.Host, InsecureSkipVerify: true})
		}
	}
	slices.SortFunc(tls, func(a, b any) int { return strings.Compare(a.(tlsDoc).Name, b.(tlsDoc).Name) })
	return append(docs, tls...)
}

// upstreams lists every registry host the node will pull from that may have a mirror:
// the hosts of the lock's images, the default mirrored upstreams and the configured ones.
func upstreams(lock *site.Lock, m *registry.EndpointMap) []string {
	set := map[string]bool{}
	for up := range registry.DefaultPorts() {
		set[up] = true
	}
	for _, ep := range m.Endpoints() {
		set[ep.Upstream] = true
	}
	add := func(ref string) {
		if r, err := registry.ParseRef(ref); err == nil {
			set[r.Upstream] = true
		}
	}
	for _, img := range lock.CoreImages {
		add(img.Ref)
	}
	for _, p := range lock.Profiles {
		for _, e := range p.Extensions {
			add(e.Ref)
		}
	}
	out := make([]string, 0, len(set))
	for up := range set {
		out = append(out, up)
	}
	slices.Sort(out)
	return out
}
