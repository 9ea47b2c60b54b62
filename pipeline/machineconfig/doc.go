// Package machineconfig writes the Talos machine-config patch that matches a built
// image, per profile: machine.install.image pinned to the profile's factory installer,
// machine.registries.mirrors for the site's local registries, the NVIDIA kernel modules
// and release-specific settings for GPU profiles, and the profile's node labels, taints
// and sysctls. Every patch is decoded with Talos machinery's config loader before it is
// returned, so an invalid patch fails here rather than on a node.
package machineconfig
