package machineconfig

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"
	"github.com/siderolabs/talos/pkg/machinery/config/configloader"

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

// registryDocsFrom is the release from which registry mirrors are RegistryMirrorConfig
// (and RegistryTLSConfig) documents; machine.registries is deprecated there.
var registryDocsFrom = semver.MustParse("1.12.0")

// Patch is one profile's machine-config patch.
type Patch struct {
	Profile string `json:"profile"`
	YAML    string `json:"yaml"`
	// Sources names the site's own patches merged into YAML, in merge order.
	Sources []string `json:"sources,omitempty"`
	// Notes are what the patch cannot do by itself (e.g. the cluster-side GPU setup).
	Notes []string `json:"notes,omitempty"`
}

// Options are the site inputs beyond the lock.
type Options struct {
	// Mirrors maps upstream registries to the site's endpoints; nil or empty writes no mirrors.
	Mirrors *registry.EndpointMap
	// Patches are merged over the generated patch in order (site-wide first, then the
	// profile's own), the way talosctl applies several --config-patch.
	Patches []site.PatchSource
	// Validator checks the result; nil makes one for this call.
	Validator *Validator
}

// Generate builds the patch of one profile resolved in lock, merges the operator's
// patches into it and validates the result as Talos would for that release, role and
// platform.
func Generate(lock *site.Lock, pc site.ProfileConfig, opts Options) (*Patch, error) {
	p, ok := lock.Profile(pc.Name)
	if !ok {
		return nil, fmt.Errorf("profile %s is not in the lock for Talos %s: resolve it first", pc.Name, lock.Talos)
	}
	v, err := semver.NewVersion(lock.Talos)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("lock: parsing Talos version %s: %w", lock.Talos, err))
	}
	core, _ := v.SetPrerelease("")
	machine, notes := machineSection(lock, pc, p, &core)
	var docs []any
	if opts.Mirrors != nil && !opts.Mirrors.Empty() {
		mirrors := mirrorList(lock, opts.Mirrors)
		if core.LessThan(registryDocsFrom) {
			machine["registries"] = legacyRegistries(mirrors)
		} else {
			docs = registryDocs(mirrors)
		}
	}
	generated, err := encodeDocs(append([]any{map[string]any{"machine": machine}}, docs...))
	if err != nil {
		return nil, fmt.Errorf("encoding patch for profile %s: %w", p.Name, err)
	}
	t := Target{Talos: lock.Talos, Kubernetes: lock.Kubernetes.Version, Role: pc.Role, Platform: p.Platform}
	merged, sources, err := merge(p.Name, t, generated, opts.Patches)
	if err != nil {
		return nil, err
	}
	val := opts.Validator
	if val == nil {
		val = NewValidator()
	}
	if err := val.Validate(p.Name, t, merged); err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	fmt.Fprintf(&buf, "# imgpipe machine-config patch for profile %s, Talos %s, schematic %s\n", p.Name, lock.Talos, p.Schematic.ID)
	if len(sources) > 0 {
		fmt.Fprintf(&buf, "# merged with: %s\n", strings.Join(sources, ", "))
	}
	buf.Write(merged)
	return &Patch{Profile: p.Name, YAML: buf.String(), Sources: sources, Notes: notes}, nil
}

// machineSection is the v1alpha1 machine: part imgpipe derives from the lock and the
// profile: the installer, GPU modules and settings, labels, taints and sysctls.
func machineSection(lock *site.Lock, pc site.ProfileConfig, p *site.Profile, core *semver.Version) (map[string]any, []string) {
	machine := map[string]any{
		"install": map[string]any{"image": p.Installer},
	}
	var notes []string
	sysctls := map[string]string{}
	if isGPU(pc, p) {
		mods := make([]map[string]string, 0, len(NVIDIAModules))
		for _, m := range NVIDIAModules {
			mods = append(mods, map[string]string{"name": m})
		}
		machine["kernel"] = map[string]any{"modules": mods}
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
	return machine, notes
}

// Validate decodes a patch with Talos machinery's config loader, which rejects unknown
// fields and wrong types the way a node would. It does not validate values; Generate
// and Validator.Validate do.
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
