// Package proxmox puts Talos images on Proxmox VE: ISOs by download-url (the node
// pulls from the Image Factory, checksum-verified) or by a streamed multipart
// upload from the runner, nocloud disk images as import volumes, and VM templates
// built from them (or booting the ISO where PVE lacks import content). Names are
// content-addressed (talos-<schematic12>-<version>-<platform>-<arch>.<ext>), so a
// rerun skips what is present; failed transfers leave no volume under the final
// name; --keep prunes only what imgpipe made. It uses go-proxmox v0.8.2 for the
// JSON API (client, auth header, {data} decoding, VM create, download-url) and
// its own code where go-proxmox falls short: a context-aware streaming upload
// with PVE's field order, a task wait that fails on failed tasks and accepts
// "WARNINGS: n", content listing by type, TLS pinning and token handling that
// keeps the secret out of logs and errors.
package proxmox
