// Package check compares a site with its lock and says, item by item, what has
// drifted: every image of the lock's set at its mirror (by digest, with its
// signatures), every ISO, import disk and VM template on Proxmox VE (and the ones
// imgpipe made that no lock names), every schematic on the Image Factory, and every
// node's Talos version and schematic in the cluster. Each item is ok, missing,
// different or stray; an item that could not be looked at is unchecked, with the
// cause, and never ok. The report is the JSON contract of `imgpipe check -o json`
// (check/README.md); its exit code is 0 clean, 3 drift, 1 incomplete. The package
// orchestrates only: the reading is done by upload/registry, upload/proxmox, factory
// and the cluster reader it is given.
package check
