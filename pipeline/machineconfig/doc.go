// Package machineconfig writes the Talos machine-config patch that matches a built
// image, per profile: machine.install.image pinned to the profile's factory installer,
// the site's local registries as mirrors (RegistryMirrorConfig and RegistryTLSConfig
// documents from Talos 1.12, machine.registries before), the NVIDIA kernel modules and
// release-specific settings for GPU profiles, and the profile's node labels, taints
// and sysctls. The operator's own patches from imgpipe.yaml are merged in with Talos's
// strategic merge. Every result is validated as talosctl validates a generated config:
// applied to a config machinery generates for the lock's release and the profile's
// role, then checked for the platform in strict mode, so an invalid patch fails here
// (exit 2, naming profile and field) rather than on a node.
package machineconfig
