// Package upgrade plans version-aligned Talos and Kubernetes upgrades for a cluster
// described by an inventory file: the hop path (machinery's UpgradeableFrom and
// Kubernetes support decide what is allowed), Kubernetes steps inserted one minor at a
// time where a hop or the target needs them, each node profile re-resolved for every
// hop (extensions, NVIDIA pairing, schematic, installer) with the drift of each hop,
// and the rollout order (pre-seed, control plane one node at a time, GPU workers
// drained, worker batches, health gates). Rendering to a shell script and to tuppr
// manifests lives here too. Pure: values in, values out; no network or disk I/O.
package upgrade
