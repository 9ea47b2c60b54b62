package machineconfig

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"
	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/extensions"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

// ErrInvalidPatch is returned when Talos machinery rejects a generated patch.
var ErrInvalidPatch = errors.New("generated machine-config patch is invalid")

// NVIDIAModules are the kernel modules a GPU node loads (all Talos versions).
var NVIDIAModules = []string{"nvidia", "nvidia_uvm", "nvidia_drm", "nvidia_modeset"}

// cdiFrom is the release from which NVIDIA runs through CDI and gpu-operator, and the
// bpf_jit_harden sysctl is no longer needed.
var cdiFrom = semver.MustParse("1.13.0")

// Patch is one profile's machine-config patch.
type Patch struct {
	Profile string `json:"profile"`
	YAML    string `json:"yaml"`
	// Notes are what the patch cannot do by itself (e.g. the cluster-side GPU setup).
	Notes []string `json:"notes,omitempty"`
}

// Options are the site inputs beyond the lock.
type Options struct {
	// Mirrors maps upstream registries to the site's endpoints; nil or empty writes no mirrors.
	Mirrors *registry.EndpointMap
}

// Generate builds the patch of one profile resolved in lock.
func Generate(lock *site.Lock, pc site.ProfileConfig, opts Options) (*Patch, error) {
	p, ok := lock.Profile(pc.Name)
	if !ok {
		return nil, fmt.Errorf("profile %s is not in the lock for Talos %s: resolve it first", pc.Name, lock.Talos)
	}
	machine := map[string]any{
		"install": map[string]any{"image": p.Installer},
	}
	var notes []string

	if opts.Mirrors != nil && !opts.Mirrors.Empty() {
		mirrors := map[string]any{}
		for _, up := range upstreams(lock, opts.Mirrors) {
			ep, ok := opts.Mirrors.Lookup(up)
			if !ok {
				continue
			}
			scheme := "https"
			if ep.Insecure {
				scheme = "http"
			}
			m := map[string]any{"endpoints": []string{scheme + "://" + ep.Host}}
			if ep.Prefix != "" {
				// A single registry holding every upstream under a path (Harbor-style).
				m["endpoints"] = []string{scheme + "://" + ep.Host + "/v2/" + ep.Prefix}
				m["overridePath"] = true
			}
			mirrors[ep.Upstream] = m
		}
		machine["registries"] = map[string]any{"mirrors": mirrors}
	}

	sysctls := map[string]string{}
	if isGPU(pc, p) {
		mods := make([]map[string]string, 0, len(NVIDIAModules))
		for _, m := range NVIDIAModules {
			mods = append(mods, map[string]string{"name": m})
		}
		machine["kernel"] = map[string]any{"modules": mods}
		v, err := semver.NewVersion(lock.Talos)
		if err != nil {
			return nil, fail.Usage(fmt.Errorf("lock: parsing Talos version %s: %w", lock.Talos, err))
		}
		core, _ := v.SetPrerelease("")
		if core.LessThan(cdiFrom) {
			sysctls["net.core.bpf_jit_harden"] = "1"
			notes = append(notes, "GPU (Talos < 1.13): create RuntimeClass nvidia (handler nvidia) and install nvidia-device-plugin with runtimeClassName=nvidia")
		} else {
			notes = append(notes, "GPU (Talos >= 1.13, CDI): install gpu-operator >= v26.3.1 with driver.enabled=false, toolkit.enabled=false, hostPaths.driverInstallDir=/usr/local in a namespace labelled pod-security.kubernetes.io/enforce=privileged")
		}
	}
	for k, v := range pc.Sysctls {
		sysctls[k] = v
	}
	if len(sysctls) > 0 {
		machine["sysctls"] = sysctls
	}
	if len(pc.Labels) > 0 {
		machine["nodeLabels"] = pc.Labels
	}
	if len(pc.Taints) > 0 {
		machine["nodeTaints"] = pc.Taints
	}

	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# imgpipe machine-config patch for profile %s, Talos %s, schematic %s\n", p.Name, lock.Talos, p.Schematic.ID)
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(map[string]any{"machine": machine}); err != nil {
		return nil, fmt.Errorf("encoding patch for profile %s: %w", p.Name, err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encoding patch for profile %s: %w", p.Name, err)
	}
	if err := Validate(buf.Bytes()); err != nil {
		return nil, fmt.Errorf("profile %s: %w", p.Name, err)
	}
	return &Patch{Profile: p.Name, YAML: buf.String(), Notes: notes}, nil
}

// Validate decodes a patch with Talos machinery's config loader, which rejects unknown
// fields and wrong types the way a node would.
func Validate(patch []byte) error {
	if _, err := configloader.NewFromBytes(patch, configloader.WithAllowPatchDelete()); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalidPatch, err)
	}
	return nil
}

func isGPU(pc site.ProfileConfig, p *site.Profile) bool {
	if pc.GPU != nil {
		return *pc.GPU
	}
	return slices.ContainsFunc(p.Extensions, func(e site.Extension) bool {
		fam, _ := extensions.Classify(e.Name)
		return fam.Modules() || strings.Contains(e.Name, "nvidia")
	})
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
