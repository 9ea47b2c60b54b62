package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/imgpipe/imgpipe/cluster/clustertest"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

const benchProfiles = `profiles:
  - name: controlplane
    role: controlplane
    extensions:
      - name: qemu-guest-agent
  - name: worker
    extensions:
      - name: qemu-guest-agent
      - name: nfs-utils
        optional: true
  - name: storage
    extensions:
      - name: qemu-guest-agent
      - name: iscsi-tools
      - name: util-linux-tools
  - name: edge
    extensions:
      - name: qemu-guest-agent
      - name: util-linux-tools
`

// BenchmarkCheckSite times a whole `imgpipe check` (in-process, every check) of a
// site on loopback: 30 images mirrored into a real docker-registry (push), 3 PVE
// nodes holding 4 profiles' ISOs, import disks and templates, the factory fake, and
// 8 nodes behind the Kubernetes and Talos fakes. Each iteration runs the default
// check and the --deep one back to back (interleaved pairs); it reports the min and
// median of each. Re-run: go test ./cmd/imgpipe -run '^$' -bench CheckSite -benchtime 7x
func BenchmarkCheckSite(b *testing.B) {
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest))
	if err != nil {
		b.Fatal(err)
	}
	f := factorytest.New(b, factorytest.Options{Catalog: factorytest.ReferenceCatalog(), ImageSize: 64 << 10,
		Content: func(id, version, path string) []byte {
			if strings.HasSuffix(path, ".raw.zst") {
				return enc.EncodeAll(bytes.Repeat([]byte(id[:16]), 8<<10), nil)
			}
			return nil
		}})
	pve := pvetest.New(pvetest.WithTaskPolls(0), pvetest.WithNodes("pve1", "pve2", "pve3"))
	b.Cleanup(pve.Close)
	ca := filepath.Join(b.TempDir(), "pve-ca.pem")
	writeFileTB(b, ca, pve.CertPEM())
	more := fmt.Sprintf("proxmox:\n  site: lab\n  url: %s\n  caFile: %s\n  nodes: [pve1, pve2, pve3]\n  storage: local\n  isoMethod: download-url\n", pve.URL, ca)
	s := newRegCheckSite(b, regOpts{total: 30, profiles: benchProfiles, factoryURL: f.URL(), more: more})
	s.env[proxmox.TokenEnv] = pve.Token()
	for _, args := range [][]string{{"schematic", "push"}, {"fetch"}, {"upload", "iso"}, {"upload", "template"}} {
		args = append(args, "--config", s.config, "--lock", s.lockPath)
		if _, stderr, code := runImgpipeTB(b, s.env, args...); code != 0 {
			b.Fatalf("imgpipe %s = exit %d\n%s", strings.Join(args, " "), code, stderr)
		}
	}
	s.lock = readLockTB(b, s.lockPath)
	kube := clustertest.NewKubeAPI(b)
	talos := clustertest.NewTalosAPI(b, nil)
	var nodes []json.RawMessage
	tn := map[string]clustertest.TalosNode{}
	for i, p := range s.lock.Profiles {
		for j := range 2 {
			addr := fmt.Sprintf("10.5.%d.%d", i, j+2)
			nodes = append(nodes, clustertest.NodeJSON(clustertest.Node{Name: fmt.Sprintf("%s-%d", p.Name, j), Address: addr,
				ControlPlane: p.Name == "controlplane", Talos: s.lock.Talos, Kubelet: "v" + s.lock.Kubernetes.Version, Schematic: p.Schematic.ID}))
			tn[addr] = clustertest.TalosNode{Version: s.lock.Talos}
		}
	}
	kube.SetNodes(nodes...)
	if err := talos.SetNodes(tn); err != nil {
		b.Fatal(err)
	}
	args := []string{"check", "-o", "json", "--config", s.config, "--lock", s.lockPath, "--kubeconfig", kube.Kubeconfig, "--talosconfig", talos.Talosconfig}
	once := func(extra ...string) time.Duration {
		start := time.Now()
		stdout, stderr, code := runImgpipeTB(b, s.env, append(args, extra...)...)
		d := time.Since(start)
		if code != 0 {
			b.Fatalf("imgpipe check %v = exit %d\n%s\n%s", extra, code, stdout, stderr)
		}
		return d
	}
	var rep check.Report
	stdout, _, _ := runImgpipeTB(b, s.env, args...)
	if err := json.Unmarshal([]byte(stdout), &rep); err != nil {
		b.Fatal(err)
	}
	counts := map[string]int{}
	for _, it := range rep.Items {
		if it.Status == check.OK {
			counts[it.Check+"/"+it.Kind]++
		}
	}
	b.Logf("site: %v ok items (%d in all)", counts, len(rep.Items))
	var plain, deep []time.Duration
	b.ResetTimer()
	for range b.N {
		plain = append(plain, once())
		deep = append(deep, once("--deep"))
	}
	b.StopTimer()
	ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
	slices.Sort(plain)
	slices.Sort(deep)
	b.ReportMetric(ms(plain[0]), "min-ms")
	b.ReportMetric(ms(plain[len(plain)/2]), "median-ms")
	b.ReportMetric(ms(deep[0]), "deep-min-ms")
	b.ReportMetric(ms(deep[len(deep)/2]), "deep-median-ms")
}

func writeFileTB(t testing.TB, path string, data []byte) {
	t.Helper()
	if err := os.WriteFile(path, data, 0o644); err != nil {
		t.Fatal(err)
	}
}
