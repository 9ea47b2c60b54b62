package main

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/cluster/clustertest"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/pipeline/check"
)

// clusterCheckSite is a lock and a three-node cluster behind the fake Kubernetes and
// Talos APIs, every node at the lock's release and its profile's schematic.
type clusterCheckSite struct {
	*checkSite
	kube        *clustertest.KubeAPI
	talos       *clustertest.TalosAPI
	nodes       []clustertest.Node
	unreachable map[string]bool // by address
}

func newClusterCheckSite(t *testing.T) *clusterCheckSite {
	t.Helper()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	s := &clusterCheckSite{checkSite: newCheckSite(t, fmt.Sprintf("version: 1\ntalos: v1.12.x\nfactory:\n  url: %s\n", f.URL())+checkProfiles)}
	cp, _ := s.lock.Profile("controlplane")
	w, _ := s.lock.Profile("worker")
	kv := "v" + s.lock.Kubernetes.Version
	s.nodes = []clustertest.Node{
		{Name: "cp-1", Address: "10.5.0.2", ControlPlane: true, Talos: s.lock.Talos, Kubelet: kv, Schematic: cp.Schematic.ID},
		{Name: "worker-1", Address: "10.5.0.3", Talos: s.lock.Talos, Kubelet: kv, Schematic: w.Schematic.ID},
		// This one says which profile it is by label, as nodes booted from a generic image do.
		{Name: "worker-2", Address: "10.5.0.4", Talos: s.lock.Talos, Kubelet: kv, Schematic: w.Schematic.ID,
			Labels: map[string]string{"imgpipe.dev/profile": "worker"}},
	}
	s.kube = clustertest.NewKubeAPI(t)
	s.talos = clustertest.NewTalosAPI(t, nil)
	s.apply(t)
	return s
}

// apply serves s.nodes from both fakes.
func (s *clusterCheckSite) apply(t *testing.T) {
	t.Helper()
	var js []json.RawMessage
	tn := map[string]clustertest.TalosNode{}
	for _, n := range s.nodes {
		js = append(js, clustertest.NodeJSON(n))
		tn[n.Address] = clustertest.TalosNode{Version: n.Talos, Unreachable: s.unreachable[n.Address]}
	}
	s.kube.SetNodes(js...)
	if err := s.talos.SetNodes(tn); err != nil {
		t.Fatal(err)
	}
}

func (s *clusterCheckSite) check(t *testing.T) (check.Report, int, string) {
	t.Helper()
	return checkRun(t, nil, "--config", s.config, "--lock", s.lockPath, "--checks", "cluster",
		"--kubeconfig", s.kube.Kubeconfig, "--talosconfig", s.talos.Talosconfig)
}

// TestCheckClusterEndToEnd: every node at its profile's release and schematic is ok;
// a node left behind is "different" with the talosctl command that brings it in line;
// a node on another schematic likewise; upgraded, it is ok again.
func TestCheckClusterEndToEnd(t *testing.T) {
	t.Parallel()
	s := newClusterCheckSite(t)
	rep, code, stderr := s.check(t)
	wantClean(t, "cluster at the lock", rep, code, stderr, check.CheckCluster)

	w, _ := s.lock.Profile("worker")
	s.nodes[2].Talos = "v1.11.5"
	s.apply(t)
	rep, code, stderr = s.check(t)
	wantDrift(t, "worker-2 behind", rep, code, stderr, "cluster/node worker-2 @10.5.0.4: different")
	it := rep.Drifted()[0]
	if want := "talosctl -n 10.5.0.4 upgrade --image " + w.Installer; it.Fix != want || !strings.Contains(it.Detail, "behind") {
		t.Errorf("behind node: fix %q, detail %q; want fix %q and a detail saying it is behind", it.Fix, it.Detail, want)
	}
	s.nodes[2].Talos = s.lock.Talos
	s.apply(t)
	rep, code, stderr = s.check(t)
	wantClean(t, "worker-2 upgraded", rep, code, stderr, check.CheckCluster)

	s.nodes[1].Schematic = strings.Repeat("0", 64)
	s.nodes[1].Labels = map[string]string{"imgpipe.dev/profile": "worker"}
	s.apply(t)
	rep, code, stderr = s.check(t)
	wantDrift(t, "worker-1 on another schematic", rep, code, stderr, "cluster/node worker-1 @10.5.0.3: different")

	s.nodes[1].Schematic = w.Schematic.ID
	s.apply(t)
	rep, code, stderr = s.check(t)
	wantClean(t, "worker-1 re-imaged", rep, code, stderr, check.CheckCluster)

	// A node the Talos API cannot reach is named as unchecked, and the check is incomplete.
	s.unreachable = map[string]bool{"10.5.0.2": true}
	s.apply(t)
	rep, code, _ = s.check(t)
	var unchecked []string
	for _, it := range rep.Drifted() {
		unchecked = append(unchecked, itemKey(it))
	}
	if code != 1 || rep.Result != check.ResultIncomplete || len(unchecked) != 1 || unchecked[0] != "cluster/node cp-1 @10.5.0.2: unchecked" {
		t.Errorf("Talos API unreachable for cp-1: exit %d, result %s, not ok %v; want exit 1, incomplete, only cp-1 unchecked", code, rep.Result, unchecked)
	}
}
