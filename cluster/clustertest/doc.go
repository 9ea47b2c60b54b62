// Package clustertest runs loopback fakes of the two APIs package cluster reads, for
// tests anywhere in the module: a Kubernetes API (httptest, TLS, bearer token)
// serving real Node JSON from /api/v1/nodes with pagination, and a Talos API (gRPC
// over TLS on 127.0.0.1) implementing machinery's MachineService.Version and COSI's
// State service, answering per node as apid does when proxying. Each writes the
// kubeconfig or talosconfig a real client uses to reach it.
package clustertest
