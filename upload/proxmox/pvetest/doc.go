// Package pvetest is a fake Proxmox VE API for tests and benchmarks: an
// httptest TLS server that answers the endpoints imgpipe uses (version, cluster
// resources, storage status/content/upload/download-url, tasks, qemu create,
// template and delete) with {"data": …} replies and real 9-part UPIDs. It checks
// parameters the way PVE does (required, unknown rejected, enums, patterns,
// property strings; 400 {"errors": …}), parses uploads with PVE's strict
// multipart rules (content, checksum-algorithm, checksum, then the file part
// named "filename"; Content-Length required) and streams them without keeping
// the data, and runs tasks that succeed, warn or fail. One-shot faults (HTTP 500,
// an upload cut off, a failed task, a checksum mismatch, a half-written volume)
// let tests drive every error path.
package pvetest
