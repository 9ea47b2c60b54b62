// Package tfexport hands imgpipe's results to Terraform: it builds the variables of
// imgpipe.auto.tfvars.json (installer, schematic, Talos version, ISO volume IDs and
// templates per Proxmox node, machine-config patch paths, per profile) from the
// lock, the site config and, when there is one, the build report. Names of PVE
// volumes and templates come from upload/proxmox's naming functions, never formatted
// here, so they cannot drift from what `imgpipe upload` creates. The JSON field names
// are a documented contract (README "Terraform hand-off") that the example stack in
// examples/terraform/stacks/talos reads.
package tfexport
