// Command gencat converts the reference talos-data.yaml into the fake factory's
// testdata/catalog.json: every release's extension tags and refs as the reference
// records them; digests the reference lacks get a deterministic stand-in derived
// from "imgpipe-fake-digest:<talos>:<ref>". Run from the repository root:
//
//	go run ./factory/factorytest/internal/gencat talos-data.yaml > factory/factorytest/testdata/catalog.json
package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"os"
	"sort"
	"strings"

	"gopkg.in/yaml.v3"
)

type ext struct {
	Tag    string `yaml:"tag"`
	Ref    string `yaml:"ref"`
	Digest string `yaml:"digest"`
	Tier   string `yaml:"tier"`
}

type data struct {
	TalosVersions []struct {
		Version string `yaml:"version"`
	} `yaml:"talos_versions"`
	ByVersion []struct {
		Talos      string         `yaml:"talos_version"`
		Extensions map[string]ext `yaml:"extensions"`
	} `yaml:"extensions_by_talos_version"`
}

type info struct {
	Name        string `json:"name"`
	Ref         string `json:"ref"`
	Digest      string `json:"digest"`
	Author      string `json:"author"`
	Description string `json:"description"`
}

func main() {
	raw, err := os.ReadFile(os.Args[1])
	if err != nil {
		panic(err)
	}
	var d data
	if err := yaml.Unmarshal(raw, &d); err != nil {
		panic(err)
	}
	out := struct {
		Versions   []string          `json:"versions"`
		Extensions map[string][]info `json:"extensions"`
	}{Extensions: map[string][]info{}}
	seen := map[string]bool{}
	for _, v := range d.TalosVersions {
		if !seen[v.Version] {
			seen[v.Version] = true
			out.Versions = append(out.Versions, v.Version)
		}
	}
	for _, bv := range d.ByVersion {
		if !seen[bv.Talos] {
			seen[bv.Talos] = true
			out.Versions = append(out.Versions, bv.Talos)
		}
		var list []info
		for name, e := range bv.Extensions {
			if e.Ref == "" && e.Tag != "" {
				e.Ref = "ghcr.io/siderolabs/" + name + ":" + e.Tag
			}
			if e.Ref == "" {
				continue
			}
			dg := e.Digest
			if !strings.HasPrefix(dg, "sha256:") {
				// Unknown upstream: a deterministic stand-in, marked by its derivation.
				s := sha256.Sum256([]byte("imgpipe-fake-digest:" + bv.Talos + ":" + e.Ref))
				dg = "sha256:" + hex.EncodeToString(s[:])
			}
			tier := e.Tier
			if tier == "" {
				tier = "extra"
			}
			list = append(list, info{Name: "siderolabs/" + name, Ref: e.Ref, Digest: dg, Author: "Sidero Labs",
				Description: "[" + tier + "] " + name + " system extension.\n"})
		}
		sort.Slice(list, func(i, j int) bool { return list[i].Name < list[j].Name })
		out.Extensions[bv.Talos] = list
	}
	enc := json.NewEncoder(os.Stdout)
	enc.SetIndent("", " ")
	if err := enc.Encode(out); err != nil {
		panic(err)
	}
}
