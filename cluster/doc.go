// Package cluster reads a running Talos cluster: the nodes from the Kubernetes API
// (a small typed client over net/http reading /api/v1/nodes with a kubeconfig's
// server, CA, client certificate or token) and, when a talosconfig is given, each
// node's running version and installed extensions from the Talos API (machinery's
// client package). Nodes returns the raw facts per node (labels, OS image,
// annotations, capacity, extensions); Inventory turns them into the upgrade
// package's inventory, matching each node's profile from its running schematic at
// its running version, then the imgpipe.dev/profile label, else marking it unknown.
// Nothing is guessed: a missing annotation leaves the field empty and says so. It is
// an I/O package at the level of factory and upload/*; clustertest holds loopback
// fakes of both APIs for other packages' tests.
package cluster
