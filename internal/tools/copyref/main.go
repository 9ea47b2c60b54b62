// Command copyref copies the upstream facts the tests check into the repository's
// testdata, so tests never read ../shared (absent on GitHub and in any plain clone).
// It keeps only the sections tests read from shared/reference/talos-data.yaml.
//
//	go run ./internal/tools/copyref -ref ../shared/reference -o testdata/reference
package main

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"gopkg.in/yaml.v3"
)

// sections are the talos-data.yaml keys some test reads.
var sections = []string{"meta", "talos_versions", "talos_minors", "extensions_by_talos_version", "schematic_vectors"}

func main() {
	ref := flag.String("ref", "../shared/reference", "reference directory")
	out := flag.String("o", "testdata/reference", "output directory")
	flag.Parse()
	if err := run(*ref, *out); err != nil {
		fmt.Fprintln(os.Stderr, "copyref:", err)
		os.Exit(1)
	}
}

func run(ref, out string) error {
	data, err := os.ReadFile(filepath.Join(ref, "talos-data.yaml"))
	if err != nil {
		return err
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return fmt.Errorf("talos-data.yaml: %w", err)
	}
	if doc.Kind != yaml.DocumentNode || len(doc.Content) != 1 || doc.Content[0].Kind != yaml.MappingNode {
		return fmt.Errorf("talos-data.yaml: a mapping document is expected")
	}
	top := doc.Content[0]
	kept := &yaml.Node{Kind: yaml.MappingNode}
	for i := 0; i+1 < len(top.Content); i += 2 {
		if slices.Contains(sections, top.Content[i].Value) {
			kept.Content = append(kept.Content, top.Content[i], top.Content[i+1])
		}
	}
	var buf bytes.Buffer
	buf.WriteString("# Copied from shared/reference/talos-data.yaml by `go run ./internal/tools/copyref`:\n" +
		"# the sections tests read. Do not edit; copy again when the reference changes.\n")
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(kept); err != nil {
		return err
	}
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "talos-data.yaml"), buf.Bytes(), 0o644)
}
