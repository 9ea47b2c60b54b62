// Package compat is the compatibility matrix: the model of matrix.yaml (Talos
// releases, their default Kubernetes, core images, every catalog extension's tag,
// digest and tier, and the official overlay images), strict parsing with file:line
// errors (a fast reader for the canonical form, the YAML decoder for anything
// else), deterministic encoding, Talos version
// queries (`v1.9.x`, `~1.9`, `>=1.9.3 <1.10`, `latest`), and Kubernetes support and
// upgradeability taken from Talos machinery's compatibility package rather than
// copied tables. Pure: bytes in, values out; no network or disk I/O.
package compat
