package compat

import (
	"bytes"
	"fmt"
	"maps"
	"slices"
	"strconv"

	"gopkg.in/yaml.v3"
)

// header opens every generated matrix.yaml.
const header = `# imgpipe compatibility matrix: Talos releases, their default Kubernetes, core images,
# and the tag and digest of each system extension in that release's catalog.
# digest "unknown" means no primary source had it; it is never guessed.
# Kubernetes support ranges and upgrade rules are not here: they come from Talos
# machinery's compatibility package. Regenerate with ` + "`imgpipe matrix refresh`" + `.
`

// Marshal renders the matrix deterministically: keys in a fixed order, extensions
// sorted by name, one line per extension, so that a refresh changes only the lines
// whose data changed.
func Marshal(m *Matrix) ([]byte, error) {
	doc := mapping(
		"schemaVersion", scalarInt(m.SchemaVersion),
		"source", scalarStr(m.Source),
		"extensions", extensionsMeta(m.Extensions),
		"releases", releases(m.Releases),
	)
	var buf bytes.Buffer
	buf.WriteString(header)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encoding matrix: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding matrix: %w", err)
	}
	return buf.Bytes(), nil
}

func extensionsMeta(ms map[string]ExtensionMeta) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, name := range slices.Sorted(maps.Keys(ms)) {
		e := ms[name]
		v := mapping("tier", scalarStr(e.Tier), "since", scalarStr(e.Since), "until", scalarStr(e.Until), "note", scalarStr(e.Note))
		v.Style = yaml.FlowStyle
		n.Content = append(n.Content, scalarStr(name), v)
	}
	return n
}

func releases(rs []Release) *yaml.Node {
	n := &yaml.Node{Kind: yaml.SequenceNode}
	for i := range rs {
		r := &rs[i]
		exts := &yaml.Node{Kind: yaml.MappingNode}
		for _, name := range slices.Sorted(maps.Keys(r.Extensions)) {
			e := r.Extensions[name]
			v := mapping("tag", scalarStr(e.Tag), "digest", scalarStr(e.Digest), "tier", scalarStr(e.Tier))
			v.Style = yaml.FlowStyle
			exts.Content = append(exts.Content, scalarStr(name), v)
		}
		overlays := &yaml.Node{Kind: yaml.MappingNode}
		for _, name := range slices.Sorted(maps.Keys(r.Overlays)) {
			o := r.Overlays[name]
			boards := &yaml.Node{Kind: yaml.SequenceNode, Style: yaml.FlowStyle}
			for _, b := range o.Boards {
				boards.Content = append(boards.Content, scalarStr(b))
			}
			v := mapping("tag", scalarStr(o.Tag), "digest", scalarStr(o.Digest), "boards", boards)
			v.Style = yaml.FlowStyle
			overlays.Content = append(overlays.Content, scalarStr(name), v)
		}
		img := r.Images
		images := mapping(
			"installer", scalarStr(img.Installer),
			"installer-base", scalarStr(img.InstallerBase),
			"etcd", scalarStr(img.Etcd),
			"coredns", scalarStr(img.CoreDNS),
			"flannel", scalarStr(img.Flannel),
			"pause", scalarStr(img.Pause),
			"kubelet", scalarStr(img.Kubelet),
			"kube-apiserver", scalarStr(img.KubeAPIServer),
			"kube-controller-manager", scalarStr(img.KubeControllerManager),
			"kube-scheduler", scalarStr(img.KubeScheduler),
			"kube-proxy", scalarStr(img.KubeProxy),
		)
		rel := mapping(
			"version", scalarStr(r.Version),
			"date", scalarStr(r.Date),
			"prerelease", scalarBool(r.Prerelease),
			"broken", scalarBool(r.Broken),
			"unverified", scalarBool(r.Unverified),
			"firstSeen", scalarStr(r.FirstSeen),
			"partial", scalarBool(r.Partial),
			"note", scalarStr(r.Note),
			"kubernetes", scalarStr(r.Kubernetes),
			"images", images,
			"extensions", exts,
			"overlays", overlays,
		)
		n.Content = append(n.Content, rel)
	}
	return n
}

// mapping builds a mapping node from key/value pairs, dropping pairs whose value is nil
// (the encoder's equivalent of omitempty).
func mapping(kv ...any) *yaml.Node {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(kv); i += 2 {
		v, _ := kv[i+1].(*yaml.Node)
		if v == nil {
			continue
		}
		if v.Kind == yaml.MappingNode && len(v.Content) == 0 && kv[i] != "extensions" {
			continue
		}
		n.Content = append(n.Content, scalarStr(kv[i].(string)), v)
	}
	return n
}

func scalarStr(s string) *yaml.Node {
	if s == "" {
		return nil
	}
	n := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s}
	return n
}

func scalarInt(i int) *yaml.Node {
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!int", Value: strconv.Itoa(i)}
}

func scalarBool(b bool) *yaml.Node {
	if !b {
		return nil
	}
	return &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!bool", Value: "true"}
}
