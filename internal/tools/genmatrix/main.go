// Command genmatrix builds matrix.yaml from the reference data gathered from upstream
// sources (../shared/reference/talos-data.yaml, talos-images.yaml and the official
// extension catalog extensions-catalog/extensions-catalog.yaml; catalog.go merges the
// latter). It exists so the
// embedded matrix's provenance is reproducible; `imgpipe matrix refresh` keeps it current
// from a live Image Factory afterwards.
//
//	go run ./internal/tools/genmatrix -ref ../shared/reference -o matrix.yaml
package main

import (
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/compat"
)

type talosData struct {
	Meta struct {
		Snapshots map[string]string `yaml:"snapshots"`
	} `yaml:"meta"`
	TalosVersions []struct {
		Version           string `yaml:"version"`
		TagDate           string `yaml:"tag_date"`
		Prerelease        bool   `yaml:"prerelease"`
		DefaultKubernetes string `yaml:"default_kubernetes"`
		Status            string `yaml:"status"`
	} `yaml:"talos_versions"`
	ExtensionsByVersion []struct {
		TalosVersion string `yaml:"talos_version"`
		Prerelease   bool   `yaml:"prerelease"`
		Status       string `yaml:"status"`
		Extensions   map[string]struct {
			Tag    string `yaml:"tag"`
			Tier   string `yaml:"tier"`
			Digest string `yaml:"digest"`
		} `yaml:"extensions"`
	} `yaml:"extensions_by_talos_version"`
}

type talosImages struct {
	Releases []struct {
		Talos                     string `yaml:"talos"`
		KubernetesDefault         string `yaml:"kubernetes_default"`
		Etcd                      string `yaml:"etcd"`
		CoreDNS                   string `yaml:"coredns"`
		Flannel                   string `yaml:"flannel"`
		Pause                     string `yaml:"pause"`
		KubeletRepo               string `yaml:"kubelet_repo"`
		KubeAPIServerRepo         string `yaml:"kube_apiserver_repo"`
		KubeControllerManagerRepo string `yaml:"kube_controller_manager_repo"`
		KubeSchedulerRepo         string `yaml:"kube_scheduler_repo"`
		KubeProxyRepo             string `yaml:"kube_proxy_repo"`
	} `yaml:"releases"`
}

func main() {
	ref := flag.String("ref", "../shared/reference", "reference directory")
	out := flag.String("o", "matrix.yaml", "output file")
	flag.Parse()
	if err := run(*ref, *out); err != nil {
		fmt.Fprintln(os.Stderr, "genmatrix:", err)
		os.Exit(1)
	}
}

func run(ref, out string) error {
	var td talosData
	if err := readYAML(ref+"/talos-data.yaml", &td); err != nil {
		return err
	}
	var ti talosImages
	if err := readYAML(ref+"/talos-images.yaml", &ti); err != nil {
		return err
	}
	images := map[string]int{}
	for i, r := range ti.Releases {
		images[r.Talos] = i
	}

	releases := map[string]*compat.Release{}
	for _, tv := range td.TalosVersions {
		r := &compat.Release{Version: tv.Version, Prerelease: tv.Prerelease, Extensions: map[string]compat.ExtensionTag{}}
		if !strings.HasPrefix(tv.TagDate, "unverified") {
			r.Date = tv.TagDate
		}
		if tv.DefaultKubernetes != "unverified" {
			r.Kubernetes = tv.DefaultKubernetes
		}
		if tv.Status != "" {
			r.Unverified = true
			r.Note = "not in the 2026-08-21 upstream snapshot; " + tv.Status
		}
		releases[tv.Version] = r
	}
	for _, ev := range td.ExtensionsByVersion {
		r, ok := releases[ev.TalosVersion]
		if !ok {
			r = &compat.Release{Version: ev.TalosVersion, Prerelease: ev.Prerelease, Extensions: map[string]compat.ExtensionTag{},
				Note: "prerelease known only from published catalog lines"}
			releases[ev.TalosVersion] = r
		}
		if len(ev.Extensions) < 5 {
			r.Partial = true
		}
		for name, e := range ev.Extensions {
			d := e.Digest
			if !strings.HasPrefix(d, "sha256:") {
				d = compat.DigestUnknown
			}
			r.Extensions[name] = compat.ExtensionTag{Tag: e.Tag, Digest: d}
		}
	}

	var cat extensionsCatalog
	if err := readYAML(ref+"/"+catalogFile, &cat); err != nil {
		return err
	}
	if err := mergeCatalog(releases, &cat); err != nil {
		return fmt.Errorf("merging %s: %w", catalogFile, err)
	}

	m := &compat.Matrix{
		SchemaVersion: compat.SchemaVersion,
		Source: fmt.Sprintf("shared/reference/talos-data.yaml + talos-images.yaml (siderolabs/talos %s, siderolabs/extensions %s) + %s",
			td.Meta.Snapshots["siderolabs/talos"], td.Meta.Snapshots["siderolabs/extensions"], cat.sourceLine()),
	}
	base, _ := semver.NewVersion("1.10.0")
	noInstaller, _ := semver.NewVersion("1.14.0-0")
	for _, r := range releases {
		v := semver.MustParse(r.Version)
		if i, ok := images[r.Version]; ok {
			x := ti.Releases[i]
			if !v.LessThan(noInstaller) {
				// ghcr.io/siderolabs/installer is no longer published from v1.14.
			} else {
				r.Images.Installer = "ghcr.io/siderolabs/installer"
			}
			if !v.LessThan(base) {
				r.Images.InstallerBase = "ghcr.io/siderolabs/installer-base"
			}
			r.Images.Etcd, r.Images.CoreDNS, r.Images.Flannel, r.Images.Pause = x.Etcd, x.CoreDNS, x.Flannel, x.Pause
			r.Images.Kubelet, r.Images.KubeAPIServer = x.KubeletRepo, x.KubeAPIServerRepo
			r.Images.KubeControllerManager, r.Images.KubeScheduler, r.Images.KubeProxy = x.KubeControllerManagerRepo, x.KubeSchedulerRepo, x.KubeProxyRepo
			if r.Kubernetes == "" {
				r.Kubernetes = x.KubernetesDefault
			}
		}
		m.Releases = append(m.Releases, *r)
	}
	slices.SortFunc(m.Releases, func(a, b compat.Release) int {
		return semver.MustParse(a.Version).Compare(semver.MustParse(b.Version))
	})

	extensionMeta(m)

	if err := carryFirstSeen(m, out); err != nil {
		return err
	}
	data, err := compat.Marshal(m)
	if err != nil {
		return err
	}
	if _, err := compat.Parse(out, data); err != nil {
		return fmt.Errorf("generated matrix does not validate: %w", err)
	}
	return os.WriteFile(out, data, 0o644)
}

func readYAML(path string, v any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, v); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

// carryFirstSeen keeps each release's firstSeen from the matrix being replaced:
// refresh records it (a site's soak counts from it) and no reference source has it.
func carryFirstSeen(m *compat.Matrix, out string) error {
	data, err := os.ReadFile(out)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	old, err := compat.Parse(out, data)
	if err != nil {
		return fmt.Errorf("reading firstSeen from the current matrix: %w", err)
	}
	for i := range m.Releases {
		if r, ok := old.Release(m.Releases[i].Version); ok && m.Releases[i].FirstSeen == "" {
			m.Releases[i].FirstSeen = r.FirstSeen
		}
	}
	return nil
}
