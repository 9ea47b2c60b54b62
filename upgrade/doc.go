// Package upgrade plans version-aligned Talos and Kubernetes upgrades for a cluster
// described by an inventory (a file, or read live by package cluster): the hop path
// (machinery's UpgradeableFrom and Kubernetes support decide what is allowed),
// Kubernetes steps inserted one minor at a time where a hop or the target needs them
// (with a catch-up first when a kubelet would fall outside the skew policy), each node
// profile re-resolved for every hop (extensions, NVIDIA pairing, schematic, installer)
// with the drift of each hop, and the rollout order (pre-seed, control plane one node
// at a time, GPU workers drained, worker batches, health gates). It renders a bash
// script that is safe to re-run (it reads every node before touching it and never
// downgrades) and tuppr stages that mean, by tuppr's own semantics, what the script
// does. SchematicMatcher matches a running schematic to a site profile. Pure: values
// in, values out; no network or disk I/O.
package upgrade
