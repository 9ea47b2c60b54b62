package cluster_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/cluster"
	"github.com/imgpipe/imgpipe/cluster/clustertest"
	"github.com/imgpipe/imgpipe/upgrade"
)

const (
	schemA = "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba"
	schemB = "ee21ef4a5ef808a9b7484cc0dda0f25075021691c8c09a276591eedb638ea1f9"
)

func fixture() []json.RawMessage {
	return []json.RawMessage{
		clustertest.NodeJSON(clustertest.Node{Name: "cp-1", Address: "10.0.0.11", ControlPlane: true, Talos: "v1.9.5", Kubelet: "v1.32.3", Schematic: schemA}),
		clustertest.NodeJSON(clustertest.Node{Name: "gpu-1", Address: "10.0.0.21", Talos: "v1.9.5", Kubelet: "v1.32.3", Schematic: schemB, GPUs: 1}),
		clustertest.NodeJSON(clustertest.Node{Name: "w-1", Address: "10.0.0.31", Talos: "v1.9.4", Kubelet: "v1.31.4",
			Labels: map[string]string{cluster.ProfileLabel: "worker"}}),
		clustertest.NodeJSON(clustertest.Node{Name: "w-2", Address: "10.0.0.32", Talos: "v1.9.4", Kubelet: "v1.31.4", Schematic: schemB}),
	}
}

func readNodes(t *testing.T, api *clustertest.KubeAPI) ([]cluster.Node, error) {
	t.Helper()
	cfg, err := cluster.LoadKubeconfig(api.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	return cluster.NewKube(cfg).Nodes(context.Background())
}

func TestNodesFromFakeAPI(t *testing.T) {
	t.Parallel()
	api := clustertest.NewKubeAPI(t, fixture()...)
	nodes, err := readNodes(t, api)
	if err != nil {
		t.Fatalf("Nodes() error: %v", err)
	}
	got := map[string]cluster.Node{}
	for _, n := range nodes {
		got[n.Name] = n
	}
	want := []struct {
		name, addr, role, talos, kubelet, schem string
		gpu                                     bool
	}{
		{"cp-1", "10.0.0.11", upgrade.RoleControlPlane, "v1.9.5", "1.32.3", schemA, false},
		{"gpu-1", "10.0.0.21", upgrade.RoleWorker, "v1.9.5", "1.32.3", schemB, true},
		{"w-1", "10.0.0.31", upgrade.RoleWorker, "v1.9.4", "1.31.4", "", false},
	}
	for _, w := range want {
		n := got[w.name]
		if n.Address != w.addr || n.Role != w.role || n.Talos != w.talos || n.Kubelet != w.kubelet || n.Schematic != w.schem || n.GPU != w.gpu {
			t.Errorf("Nodes()[%s] = %+v; want %+v", w.name, n, w)
		}
	}
	if got["w-1"].ProfileLabel != "worker" {
		t.Errorf("Nodes()[w-1].ProfileLabel = %q; want worker", got["w-1"].ProfileLabel)
	}
}

// TestNodesRealJSON reads a Node object as kube-apiserver serves a Talos node.
func TestNodesRealJSON(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(filepath.Join("testdata", "node-talos.json"))
	if err != nil {
		t.Fatal(err)
	}
	nodes, err := readNodes(t, clustertest.NewKubeAPI(t, raw))
	if err != nil {
		t.Fatalf("Nodes() error: %v", err)
	}
	n := nodes[0]
	if n.Name != "talos-cp-1" || n.Talos != "v1.9.5" || n.Kubelet != "1.32.3" || n.Role != upgrade.RoleControlPlane || n.Address != "192.168.10.11" || n.Schematic != schemA {
		t.Errorf("Nodes(node-talos.json) = %+v", n)
	}
}

func TestNodesPaged(t *testing.T) {
	t.Parallel()
	var raw []json.RawMessage
	for i := range 1203 {
		raw = append(raw, clustertest.NodeJSON(clustertest.Node{Name: fmt.Sprintf("n-%04d", i), Address: fmt.Sprintf("10.1.%d.%d", i/256, i%256), Talos: "v1.9.5", Kubelet: "v1.32.3"}))
	}
	api := clustertest.NewKubeAPI(t, raw...)
	nodes, err := readNodes(t, api)
	if err != nil {
		t.Fatal(err)
	}
	if len(nodes) != 1203 || api.Calls() != 3 {
		t.Errorf("Nodes(1203 nodes) = %d nodes in %d requests; want 1203 in 3", len(nodes), api.Calls())
	}
}

func TestNodesErrors(t *testing.T) {
	t.Parallel()
	ubuntu := clustertest.NodeJSON(clustertest.Node{Name: "legacy-1", Address: "10.0.0.99", OSImage: "Ubuntu 22.04.4 LTS", Kubelet: "v1.30.1"})
	api := clustertest.NewKubeAPI(t, append(fixture(), ubuntu)...)
	_, err := readNodes(t, api)
	if !errors.Is(err, cluster.ErrNotTalos) || !strings.Contains(err.Error(), "legacy-1") || !strings.Contains(err.Error(), "Ubuntu 22.04.4 LTS") {
		t.Errorf("Nodes(with an Ubuntu node) = %v; want ErrNotTalos naming legacy-1 and its OS image", err)
	}

	// No InternalIP: talosctl could not reach it; named.
	noIP := clustertest.NodeJSON(clustertest.Node{Name: "w-9", Talos: "v1.9.5", Kubelet: "v1.32.3"})
	if _, err := readNodes(t, clustertest.NewKubeAPI(t, noIP)); err == nil || !strings.Contains(err.Error(), "node w-9: no InternalIP") {
		t.Errorf("Nodes(no InternalIP) = %v; want an error naming w-9", err)
	}

	// Unreachable: a server that is gone.
	gone := clustertest.NewKubeAPI(t)
	cfg, err := cluster.LoadKubeconfig(gone.Kubeconfig, "")
	if err != nil {
		t.Fatal(err)
	}
	cfg.Server = "https://127.0.0.1:1"
	_, err = cluster.NewKube(cfg).Nodes(context.Background())
	if !errors.Is(err, cluster.ErrUnreachable) || !strings.Contains(err.Error(), "127.0.0.1:1") {
		t.Errorf("Nodes(unreachable) = %v; want ErrUnreachable naming the server", err)
	}

	// Unauthorized: no token, no client certificate.
	cfg, _ = cluster.LoadKubeconfig(api.Kubeconfig, "")
	cfg.Token, cfg.TLS.Certificates = "", nil
	_, err = cluster.NewKube(cfg).Nodes(context.Background())
	var he *cluster.HTTPError
	if !errors.As(err, &he) || he.Code != 401 || !strings.Contains(err.Error(), "list on nodes") {
		t.Errorf("Nodes(no credentials) = %v; want *HTTPError 401 with a hint", err)
	}
}

func TestLoadKubeconfigRefuses(t *testing.T) {
	t.Parallel()
	tests := []struct{ name, body, want string }{
		{"exec", "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'https://10.0.0.1:6443'}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n", "exec plugins"},
		{"creds in URL", "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'https://a:b@10.0.0.1:6443'}}]\n", "carries credentials"},
		{"http", "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: 'http://10.0.0.1:6443'}}]\n", "https://"},
		{"no context", "clusters: []\n", "current-context"},
		{"missing cluster", "current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\n", `cluster "k"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p := filepath.Join(t.TempDir(), "kubeconfig")
			if err := os.WriteFile(p, []byte(tt.body), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := cluster.LoadKubeconfig(p, "")
			if err == nil || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), p) {
				t.Errorf("LoadKubeconfig(%s) = %v; want an error naming the file and %q", tt.name, err, tt.want)
			}
		})
	}
}

func TestEnrichFromTalosAPI(t *testing.T) {
	t.Parallel()
	api := clustertest.NewKubeAPI(t, fixture()...)
	nodes, err := readNodes(t, api)
	if err != nil {
		t.Fatal(err)
	}
	tal := clustertest.NewTalosAPI(t, map[string]clustertest.TalosNode{
		"10.0.0.11": {Version: "v1.9.5", Extensions: []clustertest.Extension{{Name: "qemu-guest-agent", Version: "9.2.0"}, {Name: "schematic", Version: schemA}}},
		"10.0.0.21": {Version: "v1.9.5", Extensions: []clustertest.Extension{{Name: "nvidia-open-gpu-kernel-modules-lts", Version: "535.247.01-v1.9.5"}}},
		"10.0.0.31": {Unreachable: true},
		"10.0.0.32": {Version: "v1.9.4"},
	})
	tc, err := cluster.NewTalos(context.Background(), tal.Talosconfig)
	if err != nil {
		t.Fatal(err)
	}
	defer tc.Close()
	err = tc.Enrich(context.Background(), nodes)
	var ne *cluster.NodeError
	if !errors.As(err, &ne) || ne.Node != "w-1" || !errors.Is(err, cluster.ErrUnreachable) || strings.Contains(err.Error(), "cp-1") {
		t.Fatalf("Enrich() = %v; want a NodeError naming only w-1, wrapping ErrUnreachable", err)
	}
	got := map[string]cluster.Node{}
	for _, n := range nodes {
		got[n.Name] = n
	}
	cp := got["cp-1"]
	wantExt := []cluster.Extension{{Name: "qemu-guest-agent", Version: "9.2.0"}, {Name: "schematic", Version: schemA}}
	if !cp.TalosFromAPI || cp.Talos != "v1.9.5" || !reflect.DeepEqual(cp.Extensions, wantExt) {
		t.Errorf("Enrich()[cp-1] = %+v; want Talos v1.9.5 from the API with %v", cp, wantExt)
	}
	if got["w-2"].Extensions == nil || len(got["w-2"].Extensions) != 0 {
		t.Errorf("Enrich()[w-2].Extensions = %#v; want an empty, non-nil list (read, none installed)", got["w-2"].Extensions)
	}
}

type fakeMatcher map[[2]string]string

func (f fakeMatcher) Match(talos, schematic, _ string) (string, string) {
	if p, ok := f[[2]string{talos, schematic}]; ok {
		return p, ""
	}
	return "", "schematic " + schematic[:12] + " matches no site profile at " + talos
}

func TestInventoryProfiles(t *testing.T) {
	t.Parallel()
	nodes, err := readNodes(t, clustertest.NewKubeAPI(t, fixture()...))
	if err != nil {
		t.Fatal(err)
	}
	m := fakeMatcher{{"v1.9.5", schemA}: "controlplane"}
	inv := cluster.Inventory("lab", nodes, m)
	got := map[string]upgrade.Node{}
	for _, n := range inv.Nodes {
		got[n.Name] = n
	}
	if got["cp-1"].Profile != "controlplane" || got["w-1"].Profile != "worker" {
		t.Errorf("Inventory() profiles cp-1=%q w-1=%q; want controlplane (schematic) and worker (label)", got["cp-1"].Profile, got["w-1"].Profile)
	}
	why, unknown := func() (string, bool) { n := got["gpu-1"]; return n.ProfileUnknown() }()
	if !unknown || !strings.Contains(why, "matches no site profile at v1.9.5") {
		t.Errorf("Inventory()[gpu-1] unknown = %v %q; want unknown with the reason", unknown, why)
	}
	if u := got["w-1"].Unknown; len(u) != 1 || !strings.HasPrefix(u[0], "schematic: ") {
		t.Errorf("Inventory()[w-1].Unknown = %q; want the missing schematic annotation said", u)
	}
	// The plan refuses the unknown node by name.
	_, err = upgrade.NewPlan(nil, inv, nil, upgrade.Options{To: "v1.10.x"})
	if !errors.Is(err, upgrade.ErrUnknownProfile) || !strings.Contains(err.Error(), "gpu-1") {
		t.Errorf("NewPlan(unknown profile) = %v; want ErrUnknownProfile naming gpu-1", err)
	}
}
