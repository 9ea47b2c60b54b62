package machineconfig

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"github.com/siderolabs/talos/pkg/machinery/config/configpatcher"
	"github.com/siderolabs/talos/pkg/machinery/config/encoder"
	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/site"
)

// encodeDocs writes docs as one multi-document YAML stream with 2-space indents.
func encodeDocs(docs []any) ([]byte, error) {
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	for _, d := range docs {
		if err := enc.Encode(d); err != nil {
			return nil, err
		}
	}
	if err := enc.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// merge applies the operator's patches over the generated one with Talos's own
// strategic merge (the semantics of several talosctl --config-patch), so the result
// is one patch a node can take. It returns the merged YAML and the source names.
func merge(profile string, t Target, generated []byte, sources []site.PatchSource) ([]byte, []string, error) {
	invalid := func(problems ...string) error {
		return &InvalidPatchError{Profile: profile, Target: t, Problems: problems}
	}
	base, err := configloader.NewFromBytes(generated, configloader.WithAllowPatchDelete())
	if err != nil {
		return nil, nil, invalid(flatten(err)...)
	}
	inputs := [][]byte{generated}
	names := make([]string, 0, len(sources))
	patches := make([]configpatcher.Patch, 0, len(sources))
	for _, s := range sources {
		p, err := configpatcher.LoadPatch(s.YAML)
		if err != nil {
			return nil, nil, invalid(prefixed(s.Name, flatten(err))...)
		}
		if _, ok := p.(configpatcher.StrategicMergePatch); !ok {
			return nil, nil, invalid(s.Name + ": only strategic merge patches (YAML documents) can be merged; a JSON patch list cannot")
		}
		patches = append(patches, p)
		inputs = append(inputs, s.YAML)
		names = append(names, s.Name)
	}
	out, err := configpatcher.Apply(configpatcher.WithConfig(base), patches)
	if err != nil {
		return nil, nil, invalid(prefixed(strings.Join(names, ", "), flatten(err))...)
	}
	cfg, err := out.Config()
	if err != nil {
		return nil, nil, invalid(flatten(err)...)
	}
	raw, err := cfg.EncodeBytes(encoder.WithComments(encoder.CommentsDisabled), encoder.WithOmitEmpty(true))
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the merged patch of profile %s: %w", profile, err)
	}
	written, err := keyPaths(inputs)
	if err != nil {
		return nil, nil, invalid(err.Error())
	}
	cleaned, err := dropFiller(raw, written)
	if err != nil {
		return nil, nil, fmt.Errorf("encoding the merged patch of profile %s: %w", profile, err)
	}
	return cleaned, names, nil
}

func prefixed(name string, problems []string) []string {
	for i := range problems {
		problems[i] = name + ": " + problems[i]
	}
	return problems
}

// docKey names a document the way Talos matches documents when merging: v1alpha1 by
// being v1alpha1, the others by kind and name.
func docKey(doc *yaml.Node) string {
	var kind, name string
	if doc.Kind == yaml.MappingNode {
		for i := 0; i+1 < len(doc.Content); i += 2 {
			switch doc.Content[i].Value {
			case "kind":
				kind = doc.Content[i+1].Value
			case "name":
				name = doc.Content[i+1].Value
			}
		}
	}
	if kind == "" {
		return "v1alpha1"
	}
	return kind + "/" + name
}

// eachDoc decodes a YAML stream one document at a time.
func eachDoc(data []byte, f func(*yaml.Node) error) error {
	dec := yaml.NewDecoder(bytes.NewReader(data))
	for {
		var n yaml.Node
		err := dec.Decode(&n)
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return err
		}
		if len(n.Content) == 1 {
			if err := f(n.Content[0]); err != nil {
				return err
			}
		}
	}
}

// keyPaths records every mapping key path written in the inputs, so that the merged
// output keeps what someone wrote and drops only what the encoder added.
func keyPaths(inputs [][]byte) (map[string]bool, error) {
	paths := map[string]bool{}
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		switch n.Kind {
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				p := prefix + "/" + n.Content[i].Value
				paths[p] = true
				walk(p, n.Content[i+1])
			}
		case yaml.SequenceNode:
			for _, c := range n.Content {
				walk(prefix+"[]", c)
			}
		}
	}
	for _, in := range inputs {
		if err := eachDoc(in, func(doc *yaml.Node) error { walk(docKey(doc), doc); return nil }); err != nil {
			return nil, err
		}
	}
	return paths, nil
}

// dropFiller removes the zero values machinery's encoder writes for fields nobody set
// (version: "", machine.type: "", wipe: null, certSANs: []), which would read as
// settings in a patch.
func dropFiller(raw []byte, written map[string]bool) ([]byte, error) {
	var docs []any
	err := eachDoc(raw, func(doc *yaml.Node) error {
		prune(docKey(doc), doc, written)
		docs = append(docs, doc)
		return nil
	})
	if err != nil {
		return nil, err
	}
	return encodeDocs(docs)
}

func prune(prefix string, n *yaml.Node, written map[string]bool) {
	switch n.Kind {
	case yaml.MappingNode:
		kept := n.Content[:0]
		for i := 0; i+1 < len(n.Content); i += 2 {
			p := prefix + "/" + n.Content[i].Value
			v := n.Content[i+1]
			prune(p, v, written)
			if isZero(v) && !written[p] {
				continue
			}
			kept = append(kept, n.Content[i], v)
		}
		n.Content = kept
	case yaml.SequenceNode:
		for _, c := range n.Content {
			prune(prefix+"[]", c, written)
		}
	}
	n.Style = 0
}

func isZero(n *yaml.Node) bool {
	switch n.Kind {
	case yaml.ScalarNode:
		return n.Tag == "!!null" || (n.Tag == "!!str" && n.Value == "")
	case yaml.MappingNode, yaml.SequenceNode:
		return len(n.Content) == 0
	}
	return false
}
