// Command upgradebench times `imgpipe upgrade-plan` end to end (the whole process:
// start, matrix and config parse, inventory parse, plan, render) for clusters of
// several sizes and every output format, 4 hops (v1.7.x -> v1.10.x). Runs are
// interleaved (size x format in rotation, round after round) so load drifts hit every
// cell alike; it prints min and median wall time per cell and the load average.
//
//	go build -o /tmp/imgpipe ./cmd/imgpipe
//	go run ./bench/upgrade -imgpipe /tmp/imgpipe -sizes 1000,10000,100000 -runs 5
package main

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

func main() {
	bin := flag.String("imgpipe", "imgpipe", "imgpipe binary")
	baseline := flag.String("baseline", "", "another imgpipe binary to interleave with (A,B,A,B...): ratio B/A per cell")
	sizes := flag.String("sizes", "1000,10000,100000", "cluster sizes (nodes)")
	runs := flag.Int("runs", 5, "runs per cell")
	formats := flag.String("formats", "table,json,yaml,script,tuppr", "output formats")
	site := flag.String("config", "upgrade/testdata/site.yaml", "site config")
	flag.Parse()
	bins := []string{*bin}
	if *baseline != "" {
		bins = append(bins, *baseline)
	}
	if err := run(bins, *site, *sizes, *formats, *runs); err != nil {
		fmt.Fprintln(os.Stderr, "upgradebench:", err)
		os.Exit(1)
	}
}

func run(bins []string, site, sizeList, formatList string, runs int) error {
	dir, err := os.MkdirTemp("", "upgradebench")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var sizes []int
	for _, s := range strings.Split(sizeList, ",") {
		n, err := strconv.Atoi(s)
		if err != nil {
			return fmt.Errorf("-sizes: %w", err)
		}
		sizes = append(sizes, n)
		if err := os.WriteFile(inventoryPath(dir, n), inventory(n), 0o644); err != nil {
			return err
		}
	}
	formats := strings.Split(formatList, ",")
	times := map[string][]time.Duration{}
	cpu := map[string][]time.Duration{}
	bytesOut := map[string]int{}
	fmt.Printf("load before: %s", loadavg())
	for r := 0; r < runs; r++ {
		for _, n := range sizes {
			for _, f := range formats {
				for bi, bin := range bins {
					d, c, size, err := once(bin, site, inventoryPath(dir, n), f)
					if err != nil {
						return fmt.Errorf("%s, %d nodes, -o %s: %w", bin, n, f, err)
					}
					key := fmt.Sprintf("%d/%s/%d", n, f, bi)
					times[key] = append(times[key], d)
					cpu[key] = append(cpu[key], c)
					bytesOut[key] = size
				}
			}
		}
	}
	fmt.Printf("load after:  %s", loadavg())
	fmt.Printf("%-8s %-7s %-4s %10s %10s %10s %10s %12s  (whole process, %d runs each; bin 0 = -imgpipe, 1 = -baseline)\n",
		"nodes", "format", "bin", "wall min", "wall med", "cpu min", "cpu med", "output bytes", runs)
	ms := func(d time.Duration) string { return d.Round(time.Millisecond).String() }
	for _, n := range sizes {
		for _, f := range formats {
			var med [2]time.Duration
			for bi := range bins {
				key := fmt.Sprintf("%d/%s/%d", n, f, bi)
				ts, cs := times[key], cpu[key]
				slices.Sort(ts)
				slices.Sort(cs)
				med[bi] = cs[len(cs)/2]
				fmt.Printf("%-8d %-7s %-4d %10s %10s %10s %10s %12d\n", n, f, bi, ms(ts[0]), ms(ts[len(ts)/2]), ms(cs[0]), ms(cs[len(cs)/2]), bytesOut[key])
			}
			if len(bins) == 2 {
				fmt.Printf("%-8d %-7s cpu median ratio baseline/new = %.2f\n", n, f, float64(med[1])/float64(med[0]))
			}
		}
	}
	return nil
}

// once runs one upgrade-plan; it returns wall time, CPU time (user+system) and output size.
func once(bin, site, inv, format string) (time.Duration, time.Duration, int, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "upgrade-plan", "--config", site, "-i", inv, "--to", "v1.10.x", "--parallel", "10", "-o", format)
	var out countWriter
	var stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &stderr
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, 0, 0, fmt.Errorf("%w: %s", err, stderr.String())
	}
	return d, cmd.ProcessState.UserTime() + cmd.ProcessState.SystemTime(), out.n, nil
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

var _ io.Writer = (*countWriter)(nil)

func inventoryPath(dir string, n int) string {
	return filepath.Join(dir, fmt.Sprintf("cluster-%d.yaml", n))
}

// inventory is an n-node cluster on v1.7.x: 3 control-plane nodes, n/10 GPU workers
// with their extensions listed, the rest workers (the shape of upgrade's bigInventory).
func inventory(n int) []byte {
	var b bytes.Buffer
	b.WriteString("cluster: big\nnodes:\n")
	for i := range n {
		role, profile := "worker", "worker"
		switch {
		case i < 3:
			role, profile = "controlplane", "controlplane"
		case i < 3+n/10:
			profile = "gpu"
		}
		fmt.Fprintf(&b, "  - {name: node-%06d, address: 10.%d.%d.%d, role: %s, profile: %s, talos: %s, kubernetes: 1.30.3",
			i, i/65536, (i/256)%256, i%256, role, profile, []string{"v1.7.4", "v1.7.5", "v1.7.6"}[i%3])
		if profile == "gpu" {
			b.WriteString(", extensions: [siderolabs/qemu-guest-agent, siderolabs/nvidia-open-gpu-kernel-modules, siderolabs/nvidia-container-toolkit]")
		}
		b.WriteString("}\n")
	}
	return b.Bytes()
}

func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "unknown\n"
	}
	return string(b)
}
