// Command copyref copies the upstream facts the tests check into the repository's
// testdata, so tests never read ../shared (absent on GitHub and in any plain clone).
// It keeps only the sections tests read from shared/reference/talos-data.yaml, and
// flattens extensions-catalog/extensions-catalog.yaml into extensions-catalog.tsv
// (one release/extension row per line: what the catalog tests check).
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
	if err := os.WriteFile(filepath.Join(out, "talos-data.yaml"), buf.Bytes(), 0o644); err != nil {
		return err
	}
	return copyCatalog(ref, out)
}

// copyCatalog writes extensions-catalog.tsv: release, status, name, ref, tier and
// digest ("-" when no source listed one) of every catalog row, in catalog order.
func copyCatalog(ref, out string) error {
	data, err := os.ReadFile(filepath.Join(ref, "extensions-catalog", "extensions-catalog.yaml"))
	if err != nil {
		return err
	}
	var cat struct {
		Releases []struct {
			Talos      string `yaml:"talos"`
			Status     string `yaml:"status"`
			Extensions []struct {
				Name, Ref, Tier, Digest string
			} `yaml:"extensions"`
		} `yaml:"releases"`
	}
	if err := yaml.Unmarshal(data, &cat); err != nil {
		return fmt.Errorf("extensions-catalog.yaml: %w", err)
	}
	var buf bytes.Buffer
	buf.WriteString("# release\tstatus\tname\tref\ttier\tdigest  (copied from shared/reference/extensions-catalog/extensions-catalog.yaml by `go run ./internal/tools/copyref`)\n")
	for _, r := range cat.Releases {
		for _, e := range r.Extensions {
			d := e.Digest
			if d == "" {
				d = "-"
			}
			fmt.Fprintf(&buf, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Talos, r.Status, e.Name, e.Ref, e.Tier, d)
		}
	}
	return os.WriteFile(filepath.Join(out, "extensions-catalog.tsv"), buf.Bytes(), 0o644)
}
