package upgrade

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/imgpipe/imgpipe/internal/fail"
)

func TestParseInventory(t *testing.T) {
	t.Parallel()
	const good = `cluster: lab
nodes:
  - name: cp-1
    address: 10.0.0.11
    role: controlplane
    profile: controlplane
    talos: 1.9.5
    kubernetes: v1.32.3
    schematic: 376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba
  - name: w-1.lab
    address: fd00::21
    role: worker
    profile: worker
    talos: v1.9.5
    kubernetes: 1.32.3
    extensions: [siderolabs/qemu-guest-agent, iscsi-tools]
`
	inv, err := ParseInventory("cluster.yaml", []byte(good))
	if err != nil {
		t.Fatalf("ParseInventory(good) error = %v; want nil", err)
	}
	if got := inv.Nodes[0].Talos; got != "v1.9.5" {
		t.Errorf("ParseInventory(good) nodes[0].talos = %q; want v1.9.5 (normalized)", got)
	}
	if got := inv.Nodes[0].Kubernetes; got != "1.32.3" {
		t.Errorf("ParseInventory(good) nodes[0].kubernetes = %q; want 1.32.3 (normalized)", got)
	}
	// Lines are found from the file when an error needs them.
	if got := inv.lineOf(1); got != 10 {
		t.Errorf("ParseInventory(good) lineOf(1) = %d; want 10", got)
	}

	tests := []struct {
		name string
		doc  string
		want []string // every substring must appear in the error
	}{
		{"empty", ``, []string{"cluster.yaml", "empty"}},
		{"no nodes", "cluster: lab\nnodes: []\n", []string{"no nodes"}},
		{"unknown field", "nodes:\n  - name: a\n    adress: 1.2.3.4\n", []string{"cluster.yaml:3", "adress", "unknown field"}},
		{"wrong type", "nodes:\n  - name: [a]\n", []string{"cluster.yaml:2"}},
		{"second document", good + "---\nnodes: []\n", []string{"second YAML document"}},
		{"missing fields", "nodes:\n  - name: cp-1\n", []string{
			"cluster.yaml:2: nodes[0].address: missing", "nodes[0].role: missing", "nodes[0].profile: missing",
			"nodes[0].talos: missing", "nodes[0].kubernetes: missing"}},
		{"bad values", `nodes:
  - name: CP_1
    address: "10.0.0.1 ; rm -rf /"
    role: master
    profile: "a b"
    talos: v1.9
    kubernetes: latest
    schematic: abc
    extensions: ["Bad Name"]
`, []string{
			`cluster.yaml:2: nodes[0].name: "CP_1" is not a Kubernetes node name`,
			`cluster.yaml:3: nodes[0].address`, `cluster.yaml:4: nodes[0].role: "master"`,
			`nodes[0].profile`, `cluster.yaml:6: nodes[0].talos: Talos version "v1.9"`,
			`cluster.yaml:7: nodes[0].kubernetes`, `cluster.yaml:8: nodes[0].schematic`,
			`nodes[0].extensions[0]`}},
		{"duplicates", `nodes:
  - {name: a, address: 10.0.0.1, role: controlplane, profile: p, talos: v1.9.5, kubernetes: 1.32.3, extensions: [x-y, x-y]}
  - {name: a, address: 10.0.0.1, role: worker, profile: p, talos: v1.9.5, kubernetes: 1.32.3}
`, []string{`cluster.yaml:3: nodes[1].name: node "a" is listed twice (also nodes[0])`,
			"nodes[1].address: address 10.0.0.1 is used twice", `extension "x-y" is listed twice`}},
		{"no control plane", `nodes:
  - {name: a, address: 10.0.0.1, role: worker, profile: p, talos: v1.9.5, kubernetes: 1.32.3}
`, []string{"no controlplane node"}},
		{"bad cluster name", "cluster: My Lab\nnodes:\n  - {name: a, address: 10.0.0.1, role: controlplane, profile: p, talos: v1.9.5, kubernetes: 1.32.3}\n",
			[]string{"cluster.yaml:1: cluster"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv, err := ParseInventory("cluster.yaml", []byte(tt.doc))
			if err == nil {
				t.Fatalf("ParseInventory(%q) = %+v; want an error", tt.name, inv)
			}
			if !errors.Is(err, fail.ErrUsage) {
				t.Errorf("ParseInventory(%q) error = %v; want errors.Is fail.ErrUsage", tt.name, err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("ParseInventory(%q) error =\n%v\nwant it to contain %q", tt.name, err, w)
				}
			}
		})
	}
}

// inventorySeeds are the testdata inventories (every YAML file with a nodes: list).
func inventorySeeds(t testing.TB) map[string][]byte {
	t.Helper()
	files, err := filepath.Glob(filepath.Join("testdata", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if strings.Contains(string(data), "\nnodes:") || strings.HasPrefix(string(data), "nodes:") {
			out[filepath.Base(f)] = data
		}
	}
	if len(out) < 5 {
		t.Fatalf("found %d inventories in testdata; want the scenario files", len(out))
	}
	return out
}

func TestTestdataInventoriesParse(t *testing.T) {
	t.Parallel()
	for name, data := range inventorySeeds(t) {
		if _, err := ParseInventory(name, data); err != nil {
			t.Errorf("ParseInventory(%s) error = %v; want nil", name, err)
		}
	}
}

// FuzzParseInventory checks that the parser never panics, that whatever it accepts
// is valid and normalized, and that an accepted inventory survives a YAML round trip
// unchanged.
func FuzzParseInventory(f *testing.F) {
	for _, data := range inventorySeeds(f) {
		f.Add(data)
	}
	f.Add([]byte("nodes:\n  - {name: a, address: a, role: controlplane, profile: p, talos: 1.0.0, kubernetes: 1.0.0}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		inv, err := ParseInventory("fuzz.yaml", data)
		if err != nil {
			if !errors.Is(err, fail.ErrUsage) {
				t.Fatalf("ParseInventory error = %v; want errors.Is fail.ErrUsage", err)
			}
			return
		}
		cp := 0
		for i, n := range inv.Nodes {
			if !strings.HasPrefix(n.Talos, "v") || strings.HasPrefix(n.Kubernetes, "v") {
				t.Fatalf("nodes[%d] versions %q, %q; want normalized", i, n.Talos, n.Kubernetes)
			}
			if n.Role == RoleControlPlane {
				cp++
			}
		}
		if cp == 0 {
			t.Fatalf("ParseInventory accepted an inventory without a control-plane node")
		}
		out, err := yaml.Marshal(inv)
		if err != nil {
			t.Fatalf("re-encoding accepted inventory: %v", err)
		}
		again, err := ParseInventory("again.yaml", out)
		if err != nil {
			t.Fatalf("ParseInventory(re-encoded) error = %v; want nil\n%s", err, out)
		}
		for i := range again.Nodes {
			again.Nodes[i].Line, inv.Nodes[i].Line = 0, 0
		}
		if !reflect.DeepEqual(again.Nodes, inv.Nodes) || again.Cluster != inv.Cluster {
			t.Fatalf("round trip changed the inventory:\n%+v\n%+v", inv, again)
		}
	})
}
