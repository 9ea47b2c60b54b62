// Package proxmox puts Talos images on Proxmox VE: ISOs by download-url (the node
// pulls from the Image Factory, checksum-verified) or by a streamed multipart
// upload from the runner, nocloud disk images as import volumes, and VM templates
// built from them (or booting the ISO where PVE lacks import content). Volume names
// are content-addressed and name their owner (names.go:
// talos_<site>_<profile>_<version>_<schematic12>_<variant>.<ext>), so a rerun skips
// what is present, variants never share a volume, and --keep prunes only this site's
// images of the selected profiles. Every API call goes through one path (api.go)
// with a per-attempt timeout and retries of idempotent calls on 5xx, 429 and broken
// connections; uploads end on a stall, not on a total timeout; failed transfers
// leave no debris, and cleanup never removes what a successful task stored. It uses
// go-proxmox v0.8.2's types only: its client drops status codes and Retry-After,
// writes upload fields in map order and has no per-call timeout. TLS pinning and
// token handling keep the secret out of logs and errors.
package proxmox
