package upgrade

import (
	"fmt"
	"io"
	"testing"
)

// bigInventory is an n-node cluster on v1.7.x: 3 control-plane nodes, n/10 GPU
// workers (with their extensions listed, as `talosctl get extensions` would), the
// rest workers on a mix of patches.
func bigInventory(n int) *Inventory {
	inv := &Inventory{Cluster: "big", Nodes: make([]Node, 0, n)}
	for i := range n {
		nd := Node{
			Name:       fmt.Sprintf("node-%06d", i),
			Address:    fmt.Sprintf("10.%d.%d.%d", i/65536, (i/256)%256, i%256),
			Role:       RoleWorker,
			Profile:    "worker",
			Talos:      []string{"v1.7.4", "v1.7.5", "v1.7.6"}[i%3],
			Kubernetes: "1.30.3",
		}
		switch {
		case i < 3:
			nd.Role, nd.Profile = RoleControlPlane, "controlplane"
		case i < 3+n/10:
			nd.Profile = "gpu"
			nd.Extensions = []string{"siderolabs/qemu-guest-agent", "siderolabs/nvidia-open-gpu-kernel-modules", "siderolabs/nvidia-container-toolkit"}
		}
		inv.Nodes = append(inv.Nodes, nd)
	}
	return inv
}

var benchSizes = []int{1000, 10000, 100000}

// BenchmarkPlan plans v1.7.x -> v1.10.x (4 hops) with the real resolver (site.Resolve
// against the embedded matrix) for 1k, 10k and 100k nodes.
//
//	go test ./upgrade -run '^$' -bench 'Plan|Render' -benchmem -count 5
func BenchmarkPlan(b *testing.B) {
	m := testMatrix(b)
	cfg := testSite(b)
	resolve := SiteResolver(m, cfg, "embedded")
	opts := Options{To: "v1.10.x", Parallel: 10, KnownProfiles: profileNames(cfg)}
	for _, n := range benchSizes {
		inv := bigInventory(n)
		b.Run(fmt.Sprintf("nodes=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				p, err := NewPlan(m, inv, resolve, opts)
				if err != nil {
					b.Fatal(err)
				}
				if len(p.Hops) != 4 {
					b.Fatalf("NewPlan(%d nodes) = %d hops; want 4", n, len(p.Hops))
				}
			}
		})
	}
}

// BenchmarkRender measures the script and tuppr renderers (stdout's next stage and
// every stage as files) on the same plans. JSON, YAML and the table render in
// cmd/imgpipe; bench/upgrade times every format end to end.
func BenchmarkRender(b *testing.B) {
	m := testMatrix(b)
	cfg := testSite(b)
	for _, n := range benchSizes {
		p, err := NewPlan(m, bigInventory(n), SiteResolver(m, cfg, "embedded"), Options{To: "v1.10.x", Parallel: 10, KnownProfiles: profileNames(cfg)})
		if err != nil {
			b.Fatal(err)
		}
		for _, f := range []struct {
			name string
			fn   func() error
		}{
			{"script", func() error { return WriteScript(io.Discard, p) }},
			{"tuppr", func() error { return WriteTuppr(io.Discard, p) }},
			{"tuppr-files", func() error { _, err := TupprFiles(p); return err }},
		} {
			b.Run(fmt.Sprintf("%s/nodes=%d", f.name, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					if err := f.fn(); err != nil {
						b.Fatal(err)
					}
				}
			})
		}
	}
}
