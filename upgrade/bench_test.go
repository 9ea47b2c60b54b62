package upgrade

import (
	"fmt"
	"io"
	"testing"
)

// bigInventory is a 1,000-node cluster on v1.7.x: 3 control-plane nodes, 97 GPU
// workers (with their extensions listed, as `talosctl get extensions` would), 900
// workers on a mix of patches.
func bigInventory(n int) *Inventory {
	inv := &Inventory{Cluster: "big"}
	for i := range n {
		nd := Node{
			Name:       fmt.Sprintf("node-%04d", i),
			Address:    fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256),
			Role:       RoleWorker,
			Profile:    "worker",
			Talos:      []string{"v1.7.4", "v1.7.5", "v1.7.6"}[i%3],
			Kubernetes: "1.30.3",
		}
		switch {
		case i < 3:
			nd.Role, nd.Profile = RoleControlPlane, "controlplane"
		case i < 100:
			nd.Profile = "gpu"
			nd.Extensions = []string{"siderolabs/qemu-guest-agent", "siderolabs/nvidia-open-gpu-kernel-modules", "siderolabs/nvidia-container-toolkit"}
		}
		inv.Nodes = append(inv.Nodes, nd)
	}
	return inv
}

// BenchmarkPlan1000Nodes4Hops plans v1.7.x -> v1.10.x (4 hops) for 1,000 nodes with
// the real resolver (site.Resolve against the embedded matrix). Target: < 200 ms/op.
func BenchmarkPlan1000Nodes4Hops(b *testing.B) {
	m := testMatrix(b)
	cfg := testSite(b)
	resolve := SiteResolver(m, cfg, "embedded")
	opts := Options{To: "v1.10.x", Parallel: 10, KnownProfiles: profileNames(cfg)}
	inv := bigInventory(1000)
	b.ReportAllocs()
	for b.Loop() {
		p, err := NewPlan(m, inv, resolve, opts)
		if err != nil {
			b.Fatal(err)
		}
		if len(p.Hops) != 4 {
			b.Fatalf("NewPlan(1000 nodes) = %d hops; want 4", len(p.Hops))
		}
	}
}

// BenchmarkRender1000Nodes4Hops measures the script and tuppr renderers on the same plan.
func BenchmarkRender1000Nodes4Hops(b *testing.B) {
	m := testMatrix(b)
	cfg := testSite(b)
	p, err := NewPlan(m, bigInventory(1000), SiteResolver(m, cfg, "embedded"), Options{To: "v1.10.x", Parallel: 10, KnownProfiles: profileNames(cfg)})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteScript(io.Discard, p); err != nil {
			b.Fatal(err)
		}
		if err := WriteTuppr(io.Discard, p); err != nil {
			b.Fatal(err)
		}
	}
}
