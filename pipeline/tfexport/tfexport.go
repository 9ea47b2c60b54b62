package tfexport

import (
	"fmt"
	"slices"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
)

// FileName is the name Terraform loads automatically from the root module.
const FileName = "imgpipe.auto.tfvars.json"

// Vars is imgpipe.auto.tfvars.json: each field is one Terraform variable.
type Vars struct {
	// TalosVersion is the lock's Talos release (v1.12.11).
	TalosVersion string `json:"imgpipe_talos_version"`
	// KubernetesVersion is the lock's Kubernetes version (1.35.4), for
	// talos_machine_configuration's kubernetes_version.
	KubernetesVersion string `json:"imgpipe_kubernetes_version"`
	// Profiles are keyed by profile name.
	Profiles map[string]Profile `json:"imgpipe_profiles"`
}

// Profile is one node profile as the Terraform stack needs it.
type Profile struct {
	// Role is controlplane or worker (talos_machine_configuration's machine_type).
	Role string `json:"role"`
	// Installer is the factory installer ref (machine.install.image, and the image
	// talos_machine_configuration_apply keeps through upgrades).
	Installer string `json:"installer"`
	// Schematic is the Image Factory schematic ID.
	Schematic    string `json:"schematic"`
	TalosVersion string `json:"talos_version"`
	Platform     string `json:"platform"`
	Arch         string `json:"arch"`
	SecureBoot   bool   `json:"secureboot"`
	// ISOVolumeIDs maps each Proxmox node to the ISO's volume ID there
	// (local:iso/talos_<site>_<profile>_….iso, see proxmox.VolumeName), for proxmox_virtual_environment_vm cdrom.file_id.
	ISOVolumeIDs map[string]string `json:"iso_volume_ids"`
	// Templates maps a Proxmox node to the VM template imgpipe built there; VMID is
	// null until a build report shows the template was made.
	Templates map[string]Template `json:"templates"`
	// MachineConfigPatches are the patch files, relative to the directory of
	// imgpipe.auto.tfvars.json, for talos_machine_configuration_apply config_patches.
	MachineConfigPatches []string `json:"machine_config_patches"`
}

// Template is a VM template on one node.
type Template struct {
	Name string `json:"name"`
	VMID *int   `json:"vmid"`
}

// Options are the inputs beyond lock and config.
type Options struct {
	// Uploaded are the ISO and template results of an earlier upload (from the build
	// report); they supply template VMIDs. A result whose name or volume differs from
	// what the naming functions give for this lock is stale and ignored.
	Uploaded []proxmox.Result
	// Patches maps a profile to its patch file paths (relative to the tfvars file).
	Patches map[string][]string
	// Profiles limits the export (nil: every profile of the lock).
	Profiles []string
}

// Build returns the variables for every selected profile of lock.
func Build(cfg *site.Config, lock *site.Lock, opts Options) (*Vars, error) {
	pc := cfg.Proxmox
	storage := pc.Storage
	if storage == "" {
		storage = proxmox.DefaultStorage
	}
	pattern := pc.Template.NamePattern
	if pattern == "" {
		pattern = proxmox.DefaultNamePattern
	}
	v := &Vars{TalosVersion: lock.Talos, KubernetesVersion: lock.Kubernetes.Version, Profiles: map[string]Profile{}}
	for i := range lock.Profiles {
		p := &lock.Profiles[i]
		if len(opts.Profiles) > 0 && !slices.Contains(opts.Profiles, p.Name) {
			continue
		}
		out, err := profile(cfg, lock, p, storage, pattern, opts)
		if err != nil {
			return nil, fmt.Errorf("profile %s: %w", p.Name, err)
		}
		v.Profiles[p.Name] = out
	}
	for _, want := range opts.Profiles {
		if _, ok := v.Profiles[want]; !ok {
			return nil, fmt.Errorf("profile %s is not in the lock for Talos %s", want, lock.Talos)
		}
	}
	return v, nil
}

func profile(cfg *site.Config, lock *site.Lock, p *site.Profile, storage, pattern string, opts Options) (Profile, error) {
	role := "worker"
	for _, c := range cfg.Profiles {
		if c.Name == p.Name && c.Role != "" {
			role = c.Role
		}
	}
	iso, err := proxmox.VolumeName(cfg.Proxmox.Site, lock, p, "iso")
	if err != nil {
		return Profile{}, err
	}
	volid := proxmox.Artifact{Content: "iso", Filename: iso}.VolID(storage)
	name, err := proxmox.TemplateName(pattern, lock, p)
	if err != nil {
		return Profile{}, err
	}
	out := Profile{Role: role, Installer: p.Installer, Schematic: p.Schematic.ID, TalosVersion: lock.Talos,
		Platform: p.Platform, Arch: p.Arch, SecureBoot: p.SecureBoot,
		ISOVolumeIDs: map[string]string{}, Templates: map[string]Template{},
		MachineConfigPatches: append([]string{}, opts.Patches[p.Name]...)}
	for _, n := range cfg.Proxmox.Nodes {
		out.ISOVolumeIDs[n] = volid
	}
	for _, r := range opts.Uploaded {
		if r.Kind == "template" && r.Profile == p.Name && r.Name == name && r.VMID > 0 && (r.Action == "created" || r.Action == "skipped") {
			out.Templates[r.Node] = Template{Name: name, VMID: &r.VMID}
		}
	}
	if len(out.Templates) == 0 && len(cfg.Proxmox.Nodes) > 0 {
		// Not built yet (or the report is for another lock): the name is known, the VMID is not.
		out.Templates[cfg.Proxmox.Nodes[0]] = Template{Name: name}
	}
	return out, nil
}
