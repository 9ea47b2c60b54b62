package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeBigInventory writes an n-node inventory of the shape bench/upgrade uses.
func writeBigInventory(b *testing.B, n int) string {
	b.Helper()
	var sb strings.Builder
	sb.WriteString("cluster: big\nnodes:\n")
	for i := range n {
		role, profile := "worker", "worker"
		switch {
		case i < 3:
			role, profile = "controlplane", "controlplane"
		case i < 3+n/10:
			profile = "gpu"
		}
		fmt.Fprintf(&sb, "  - {name: node-%06d, address: 10.%d.%d.%d, role: %s, profile: %s, talos: %s, kubernetes: 1.30.3",
			i, i/65536, (i/256)%256, i%256, role, profile, []string{"v1.7.4", "v1.7.5", "v1.7.6"}[i%3])
		if profile == "gpu" {
			sb.WriteString(", extensions: [siderolabs/qemu-guest-agent, siderolabs/nvidia-open-gpu-kernel-modules, siderolabs/nvidia-container-toolkit]")
		}
		sb.WriteString("}\n")
	}
	path := filepath.Join(b.TempDir(), "cluster.yaml")
	if err := os.WriteFile(path, []byte(sb.String()), 0o644); err != nil {
		b.Fatal(err)
	}
	return path
}

// BenchmarkUpgradePlanCLI runs `imgpipe upgrade-plan` in-process (flags, matrix and
// config parse, inventory parse, plan, render) for every format, 4 hops:
//
//	go test ./cmd/imgpipe -run '^$' -bench UpgradePlanCLI -benchmem -count 5
func BenchmarkUpgradePlanCLI(b *testing.B) {
	for _, n := range []int{1000, 10000} {
		inv := writeBigInventory(b, n)
		for _, format := range []string{"table", "json", "yaml", "script", "tuppr"} {
			b.Run(fmt.Sprintf("%s/nodes=%d", format, n), func(b *testing.B) {
				b.ReportAllocs()
				for b.Loop() {
					code := run(context.Background(), []string{"upgrade-plan", "--config", upgradeTestdata + "/site.yaml", "-i", inv,
						"--to", "v1.10.x", "--parallel", "10", "-o", format}, strings.NewReader(""), io.Discard, io.Discard, func(string) string { return "" })
					if code != exitOK {
						b.Fatalf("upgrade-plan -o %s = exit %d", format, code)
					}
				}
			})
		}
	}
}
