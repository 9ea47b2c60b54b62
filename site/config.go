package site

import "time"

// Config is imgpipe.yaml: the site's declared node images and where they go.
// Unknown keys are rejected; every field is documented in README.md.
type Config struct {
	// Version is the config schema version; only 1 exists.
	Version int `yaml:"version"`
	// Talos is the default version query (`v1.9.x`, `~1.9`, `latest`, ...) when --talos is not given.
	Talos string `yaml:"talos,omitempty"`
	// MinimumReleaseAge is the soak period (like Renovate's minimumReleaseAge): a range
	// query passes over a release `imgpipe matrix refresh` first saw less than this long
	// ago. "3d", "72h", "1d12h"; empty or "0" means no soak.
	MinimumReleaseAge string `yaml:"minimumReleaseAge,omitempty"`
	// Kubernetes optionally pins the Kubernetes version query; default: the release's default.
	Kubernetes string          `yaml:"kubernetes,omitempty"`
	Factory    FactoryConfig   `yaml:"factory,omitempty"`
	Profiles   []ProfileConfig `yaml:"profiles"`
	Registries RegistryConfig  `yaml:"registries,omitempty"`
	// Images are extra images to mirror/pre-seed besides the Talos set (e.g. Kyverno's).
	Images  []string      `yaml:"images,omitempty"`
	Proxmox ProxmoxConfig `yaml:"proxmox,omitempty"`
	Verify  VerifyConfig  `yaml:"verify,omitempty"`

	// Patches are machine-config patches for every profile (see patches.go).
	Patches []PatchConfig `yaml:"patches,omitempty"`
	// patchDir is the directory patch files are relative to (set by ResolvePaths).
	patchDir string
}

// FactoryConfig points at an Image Factory. Credentials for a self-hosted factory come
// from IMGPIPE_FACTORY_USERNAME / IMGPIPE_FACTORY_PASSWORD, never from this file.
type FactoryConfig struct {
	URL string `yaml:"url,omitempty"`
	// Registry is the factory's registry host for installer refs (default: URL's host).
	Registry string `yaml:"registry,omitempty"`
}

// ProfileConfig is one node profile (controlplane, worker, gpu, ...).
type ProfileConfig struct {
	Name        string `yaml:"name"`
	Description string `yaml:"description,omitempty"`
	// Talos optionally constrains the versions this profile may be built for (semver constraint).
	Talos      string            `yaml:"talos,omitempty"`
	Platform   string            `yaml:"platform,omitempty"` // metal | nocloud (default nocloud)
	Arch       string            `yaml:"arch,omitempty"`     // amd64 | arm64 (default amd64)
	Extensions []ExtensionConfig `yaml:"extensions,omitempty"`
	// NVIDIADriver optionally constrains the NVIDIA driver (`550.x`, `>=570 <580`).
	NVIDIADriver    string            `yaml:"nvidiaDriver,omitempty"`
	ExtraKernelArgs []string          `yaml:"extraKernelArgs,omitempty"`
	Meta            []MetaConfig      `yaml:"meta,omitempty"`
	Overlay         *OverlayConfig    `yaml:"overlay,omitempty"`
	Bootloader      string            `yaml:"bootloader,omitempty"` // auto | dual-boot | grub | sd-boot
	SecureBoot      *SecureBootConfig `yaml:"secureboot,omitempty"`

	// --- Schematic fields beyond extensions (issue 13; validated in schematic_config.go) ---

	// DiskImage sets the schematic's customization.diskImage (e.g. 4096-byte sectors).
	DiskImage *DiskImageConfig `yaml:"diskImage,omitempty"`
	// SchematicFile adopts an existing schematic exactly: a file (relative to imgpipe.yaml)
	// holding a schematic as the factory takes it. Its extensions keep their order, so
	// the ID is the one the factory gave it. The profile then sets no other schematic
	// field (extensions, extraKernelArgs, meta, overlay, bootloader, secureboot, diskImage).
	SchematicFile string `yaml:"schematicFile,omitempty"`

	// adopted is SchematicFile's content, read by Config.LoadSchematics.
	adopted []byte
	// --- end of the issue 13 fields ---

	// Role is the Kubernetes role nodes of this profile take: controlplane | worker (default from name).
	Role string `yaml:"role,omitempty"`
	// GPU marks nodes that must be drained first in upgrades (default: true when an NVIDIA extension is present).
	GPU *bool `yaml:"gpu,omitempty"`
	// Labels, Taints and Sysctls go into machine-config patches for this profile.
	Labels  map[string]string `yaml:"labels,omitempty"`
	Taints  map[string]string `yaml:"taints,omitempty"`
	Sysctls map[string]string `yaml:"sysctls,omitempty"`
	// Patches are this profile's own machine-config patches, merged after the site's (see patches.go).
	Patches []PatchConfig `yaml:"patches,omitempty"`
}

// DiskImageConfig is the schematic's disk image customization.
type DiskImageConfig struct {
	// SectorSize is the disk image's sector size in bytes (the factory's default: 512).
	SectorSize uint `yaml:"sectorSize,omitempty"`
}

// ExtensionConfig names a system extension. Name may be short ("qemu-guest-agent") or
// full ("siderolabs/qemu-guest-agent"). Extensions are required unless Optional is set.
type ExtensionConfig struct {
	Name     string `yaml:"name"`
	Optional bool   `yaml:"optional,omitempty"`
}

// MetaConfig is one META key/value written into the image.
type MetaConfig struct {
	Key   uint8  `yaml:"key"`
	Value string `yaml:"value"`
}

// OverlayConfig selects a board overlay (SBCs). Image is optional: by default it is
// the official overlay image that provides Name in the resolved release.
type OverlayConfig struct {
	Image   string         `yaml:"image,omitempty"`
	Name    string         `yaml:"name"`
	Options map[string]any `yaml:"options,omitempty"`
}

// SecureBootConfig enables SecureBoot images and their options.
type SecureBootConfig struct {
	Enabled                      bool   `yaml:"enabled"`
	EnrollKeys                   string `yaml:"enrollKeys,omitempty"` // off | manual | if-safe | force
	IncludeWellKnownCertificates bool   `yaml:"includeWellKnownCertificates,omitempty"`
}

// RegistryConfig describes the site's local registries, one per upstream.
type RegistryConfig struct {
	// Host is where the default endpoints live (docker.io -> Host:5000, ghcr.io -> Host:5010,
	// quay.io -> Host:5020, registry.k8s.io -> Host:5030, reg.kyverno.io -> Host:5040).
	Host string `yaml:"host,omitempty"`
	// Mode is the default mode for every endpoint: auto | push | warm.
	Mode string `yaml:"mode,omitempty"`
	// Insecure uses plain HTTP to the local registries.
	Insecure bool `yaml:"insecure,omitempty"`
	// Mirrors overrides or adds endpoints, keyed by upstream host.
	Mirrors map[string]MirrorConfig `yaml:"mirrors,omitempty"`
	// OverridePath puts every upstream on a single registry under /<upstream-host>/... (Harbor-style).
	OverridePath string `yaml:"overridePath,omitempty"`
}

// MirrorConfig is one upstream's local endpoint.
type MirrorConfig struct {
	Endpoint string `yaml:"endpoint"`
	Mode     string `yaml:"mode,omitempty"` // auto | push | warm
	Insecure *bool  `yaml:"insecure,omitempty"`
}

// ProxmoxConfig is the Proxmox VE target. The API token comes from IMGPIPE_PROXMOX_TOKEN or
// TokenFile, never from this file or a flag.
type ProxmoxConfig struct {
	URL       string `yaml:"url,omitempty"` // https://pve.example:8006/api2/json
	TokenFile string `yaml:"tokenFile,omitempty"`
	CAFile    string `yaml:"caFile,omitempty"`
	// Fingerprint pins the server certificate's SHA-256 fingerprint (hex, colons optional).
	Fingerprint string   `yaml:"fingerprint,omitempty"`
	Insecure    bool     `yaml:"insecure,omitempty"`
	Nodes       []string `yaml:"nodes,omitempty"`
	// Storage holds ISOs and import images; Shared means all nodes see it (upload once).
	Storage string `yaml:"storage,omitempty"`
	Shared  bool   `yaml:"shared,omitempty"`
	// ISOMethod is download-url (Proxmox pulls from the factory) or upload (stream from the runner).
	ISOMethod string         `yaml:"isoMethod,omitempty"`
	Template  TemplateConfig `yaml:"template,omitempty"`
	Keep      int            `yaml:"keep,omitempty"`
	// Site names this config on the cluster (a DNS label). It is part of every volume
	// name and template tag imgpipe makes, so --keep prunes only this site's images.
	Site string `yaml:"site,omitempty"`
	// Timeout bounds each PVE API call (default 30s); StallTimeout ends an upload
	// that made no progress for that long (default 2m).
	Timeout      time.Duration `yaml:"timeout,omitempty"`
	StallTimeout time.Duration `yaml:"stallTimeout,omitempty"`
}

// TemplateConfig describes the VM template built from the nocloud disk image.
type TemplateConfig struct {
	VMIDBase    int    `yaml:"vmidBase,omitempty"` // profile i (lock order) gets VMIDs VMIDBase+100*i .. +99, one per kept version
	NamePattern string `yaml:"namePattern,omitempty"`
	DiskStorage string `yaml:"diskStorage,omitempty"`
	Bridge      string `yaml:"bridge,omitempty"`
	Cores       int    `yaml:"cores,omitempty"`
	MemoryMiB   int    `yaml:"memoryMiB,omitempty"`
	DiskSizeGiB int    `yaml:"diskSizeGiB,omitempty"`
}

// VerifyConfig holds signature policies beyond the built-in Sidero ones.
type VerifyConfig struct {
	TrustedRoot string         `yaml:"trustedRoot,omitempty"`
	FactoryKey  string         `yaml:"factoryKey,omitempty"`
	Policies    []PolicyConfig `yaml:"policies,omitempty"`
}

// PolicyConfig says how images matching Match must be signed.
type PolicyConfig struct {
	// Match is a glob on the image repository (path.Match syntax, `**` allowed at the end).
	Match string `yaml:"match"`
	// Key is a PEM public key file; Identities are keyless identities. At least one of them,
	// unless AllowUnsigned.
	Key           string           `yaml:"key,omitempty"`
	Identities    []IdentityConfig `yaml:"identities,omitempty"`
	AllowUnsigned bool             `yaml:"allowUnsigned,omitempty"`
}

// IdentityConfig is one keyless signer identity.
type IdentityConfig struct {
	Issuer        string `yaml:"issuer,omitempty"`
	IssuerRegExp  string `yaml:"issuerRegExp,omitempty"`
	Subject       string `yaml:"subject,omitempty"`
	SubjectRegExp string `yaml:"subjectRegExp,omitempty"`
}
