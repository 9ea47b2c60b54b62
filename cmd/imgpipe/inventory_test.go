package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/cluster/clustertest"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upgrade"
)

func runCLI(t *testing.T, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	var out, errb bytes.Buffer
	code = run(context.Background(), args, strings.NewReader(""), &out, &errb, func(string) string { return "" })
	return out.String(), errb.String(), code
}

// siteSchematic is profile's schematic at talos, as the planner's resolver computes it.
func siteSchematic(t *testing.T, talos, profile string) string {
	t.Helper()
	m, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(upgradeTestdata + "/site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := site.ParseConfig("site.yaml", data)
	if err != nil {
		t.Fatal(err)
	}
	lock, err := upgrade.SiteResolver(m, cfg, "embedded")(talos, "", []string{profile})
	if err != nil {
		t.Fatal(err)
	}
	p, _ := lock.Profile(profile)
	return p.Schematic.ID
}

// liveCluster is the fake API of a 4-node cluster on Talos v1.9.x: profiles come
// from the running schematic (cp, gpu), the imgpipe.dev/profile label (worker-2, no
// schematic annotation) or both.
func liveCluster(t *testing.T, extra ...json.RawMessage) *clustertest.KubeAPI {
	t.Helper()
	cp := siteSchematic(t, "v1.9.6", "controlplane")
	worker := siteSchematic(t, "v1.9.5", "worker")
	gpu := siteSchematic(t, "v1.9.6", "gpu")
	nodes := []json.RawMessage{
		clustertest.NodeJSON(clustertest.Node{Name: "cp-1", Address: "10.3.0.11", ControlPlane: true, Talos: "v1.9.6", Kubelet: "v1.31.4", Schematic: cp}),
		clustertest.NodeJSON(clustertest.Node{Name: "worker-1", Address: "10.3.0.21", Talos: "v1.9.5", Kubelet: "v1.31.4", Schematic: worker}),
		clustertest.NodeJSON(clustertest.Node{Name: "worker-2", Address: "10.3.0.22", Talos: "v1.9.5", Kubelet: "v1.31.4",
			Labels: map[string]string{"imgpipe.dev/profile": "worker"}}),
		clustertest.NodeJSON(clustertest.Node{Name: "gpu-1", Address: "10.3.0.31", Talos: "v1.9.6", Kubelet: "v1.31.4", Schematic: gpu, GPUs: 1}),
	}
	return clustertest.NewKubeAPI(t, append(nodes, extra...)...)
}

// TestInventoryMatchesPlanFromCluster is the acceptance: `inventory -o yaml` against
// the fake API prints an inventory upgrade-plan -i accepts, and the plan from it is
// the plan upgrade-plan --kubeconfig makes.
func TestInventoryMatchesPlanFromCluster(t *testing.T) {
	t.Parallel()
	api := liveCluster(t)
	cfg := upgradeTestdata + "/site.yaml"
	out, stderr, code := runCLI(t, "inventory", "--kubeconfig", api.Kubeconfig, "--config", cfg, "-o", "yaml")
	if code != exitOK {
		t.Fatalf("inventory = exit %d\n%s", code, stderr)
	}
	for _, want := range []string{"name: cp-1", "profile: controlplane", "profile: gpu", "gpu: true", "schematic: no extensions.talos.dev/schematic annotation"} {
		if !strings.Contains(out, want) && !strings.Contains(out, strings.Replace(want, "schematic: no", "'schematic: the node has no", 1)) {
			if want != "schematic: no extensions.talos.dev/schematic annotation" || !strings.Contains(out, "the node has no extensions.talos.dev/schematic annotation") {
				t.Errorf("inventory -o yaml lacks %q:\n%s", want, out)
			}
		}
	}
	file := filepath.Join(t.TempDir(), "cluster.yaml")
	if err := os.WriteFile(file, []byte(out), 0o644); err != nil {
		t.Fatal(err)
	}
	plan := []string{"upgrade-plan", "--config", cfg, "--to", "v1.10.x", "-o", "json"}
	fromFile, stderr, code := runCLI(t, append(plan, "-i", file)...)
	if code != exitOK {
		t.Fatalf("upgrade-plan -i <inventory output> = exit %d\n%s", code, stderr)
	}
	fromCluster, stderr, code := runCLI(t, append(plan, "--kubeconfig", api.Kubeconfig)...)
	if code != exitOK {
		t.Fatalf("upgrade-plan --kubeconfig = exit %d\n%s", code, stderr)
	}
	if fromFile != fromCluster {
		t.Errorf("upgrade-plan -i (inventory output) and --kubeconfig differ:\n--- -i\n%s\n--- --kubeconfig\n%s", fromFile, fromCluster)
	}
	// --out writes the same bytes.
	outFile := filepath.Join(t.TempDir(), "inv.yaml")
	if _, stderr, code := runCLI(t, "inventory", "--kubeconfig", api.Kubeconfig, "--config", cfg, "--out", outFile); code != exitOK {
		t.Fatalf("inventory --out = exit %d\n%s", code, stderr)
	}
	if b, _ := os.ReadFile(outFile); string(b) != out {
		t.Errorf("inventory --out wrote\n%s\nwant what stdout had", b)
	}
}

func TestInventoryWithTalosAPI(t *testing.T) {
	t.Parallel()
	api := liveCluster(t)
	tal := clustertest.NewTalosAPI(t, map[string]clustertest.TalosNode{
		"10.3.0.11": {Version: "v1.9.6", Extensions: []clustertest.Extension{{Name: "qemu-guest-agent", Version: "9.2.0"}}},
		"10.3.0.21": {Version: "v1.9.5", Extensions: []clustertest.Extension{{Name: "qemu-guest-agent", Version: "9.2.0"}, {Name: "nfs-utils", Version: "2.6.4"}}},
		"10.3.0.22": {Version: "v1.9.5"},
		"10.3.0.31": {Unreachable: true},
	})
	_, stderr, code := runCLI(t, "inventory", "--kubeconfig", api.Kubeconfig, "--talosconfig", tal.Talosconfig, "--config", upgradeTestdata+"/site.yaml", "-o", "json")
	if code != exitOperational || !strings.Contains(stderr, "gpu-1 (10.3.0.31)") || strings.Contains(stderr, "worker-1") {
		t.Errorf("inventory with gpu-1 unreachable over the Talos API = exit %d, %q; want exit 1 naming only gpu-1", code, stderr)
	}
	if err := tal.SetNodes(map[string]clustertest.TalosNode{
		"10.3.0.11": {Version: "v1.9.6"}, "10.3.0.21": {Version: "v1.9.5", Extensions: []clustertest.Extension{{Name: "nfs-utils", Version: "2.6.4"}}},
		"10.3.0.22": {Version: "v1.9.5"}, "10.3.0.31": {Version: "v1.9.6"},
	}); err != nil {
		t.Fatal(err)
	}
	out, stderr, code := runCLI(t, "inventory", "--kubeconfig", api.Kubeconfig, "--talosconfig", tal.Talosconfig, "--config", upgradeTestdata+"/site.yaml", "-o", "json")
	if code != exitOK {
		t.Fatalf("inventory --talosconfig = exit %d\n%s", code, stderr)
	}
	var inv upgrade.Inventory
	if err := json.Unmarshal([]byte(out), &inv); err != nil {
		t.Fatal(err)
	}
	for _, n := range inv.Nodes {
		if n.Name == "worker-1" && (len(n.Extensions) != 1 || n.Extensions[0] != "nfs-utils") {
			t.Errorf("inventory --talosconfig worker-1 extensions = %v; want [nfs-utils] from the Talos API", n.Extensions)
		}
	}
}

func TestInventoryErrors(t *testing.T) {
	t.Parallel()
	ubuntu := clustertest.NodeJSON(clustertest.Node{Name: "old-1", Address: "10.3.0.99", OSImage: "Ubuntu 24.04.1 LTS", Kubelet: "v1.31.4"})
	unknown := clustertest.NodeJSON(clustertest.Node{Name: "mystery-1", Address: "10.3.0.41", Talos: "v1.9.6", Kubelet: "v1.31.4",
		Schematic: strings.Repeat("ab", 32)})
	cfg := upgradeTestdata + "/site.yaml"
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr string
	}{
		{"not Talos", []string{"inventory", "--kubeconfig", liveCluster(t, ubuntu).Kubeconfig, "--config", cfg}, exitOperational, `node old-1: node does not run Talos: its OS image is "Ubuntu 24.04.1 LTS"`},
		{"unknown profile refused by name", []string{"upgrade-plan", "--kubeconfig", liveCluster(t, unknown).Kubeconfig, "--config", cfg, "--to", "v1.10.x"}, exitPolicy, "node mystery-1: schematic abababababab matches no site profile at v1.9.6"},
		{"no kubeconfig", []string{"inventory"}, exitUsage, "--kubeconfig is required"},
		{"missing kubeconfig", []string{"inventory", "--kubeconfig", filepath.Join(t.TempDir(), "none")}, exitUsage, "reading kubeconfig"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, stderr, code := runCLI(t, tt.args...)
			if code != tt.code || !strings.Contains(stderr, tt.stderr) {
				t.Errorf("imgpipe %v = exit %d, %q; want exit %d mentioning %q", tt.args, code, stderr, tt.code, tt.stderr)
			}
		})
	}
}

// TestUpgradePlanFlagsValidated (issue 12 item 16): every flag is checked before
// anything is read, and the health timeout is a duration, never pasted raw.
func TestUpgradePlanFlagsValidated(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	marker := filepath.Join(dir, "X")
	none := filepath.Join(dir, "none.yaml") // never read: flags fail first
	tests := []struct {
		name   string
		args   []string
		stderr string
	}{
		{"shell injection", []string{"--health-timeout", "10m; touch " + marker + " #"}, "--health-timeout"},
		{"banana", []string{"--health-timeout", "banana"}, "--health-timeout"},
		{"sub-second", []string{"--health-timeout", "1500ms"}, "whole seconds"},
		{"zero parallel", []string{"--parallel", "0"}, "--parallel 0"},
		{"negative parallel", []string{"--parallel", "-3"}, "--parallel -3"},
		{"out-dir without tuppr", []string{"--out-dir", dir}, "--out-dir is for -o tuppr"},
		{"both sources", []string{"--kubeconfig", none}, "exclude each other"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			args := append([]string{"-i", none, "--to", "v1.10.x", "-o", "script"}, tt.args...)
			stdout, stderr, code := runUpgradePlan(t, args...)
			if code != exitUsage || !strings.Contains(stderr, tt.stderr) || strings.Contains(stderr, "reading inventory") || stdout != "" {
				t.Errorf("upgrade-plan %v = exit %d, stderr %q, %d bytes out; want exit 2 mentioning %q, before reading anything", tt.args, code, stderr, len(stdout), tt.stderr)
			}
		})
	}
	// A --to no release matches fails before the inventory is read too (exit 3 as ever).
	if _, stderr, code := runUpgradePlan(t, "-i", none, "--to", "v9.x"); code != exitPolicy || !strings.Contains(stderr, "resolving --to") {
		t.Errorf("upgrade-plan --to v9.x = exit %d, %q; want exit 3 from resolving --to, before reading the inventory", code, stderr)
	}
	if _, err := os.Stat(marker); err == nil {
		t.Errorf("the injected command ran")
	}
	// A valid duration reaches the script as a quoted, typed value.
	stdout, stderr, code := runUpgradePlan(t, "-i", upgradeTestdata+"/cluster.yaml", "--config", upgradeTestdata+"/site.yaml",
		"--to", "v1.10.x", "--health-timeout", "1h30m", "-o", "script")
	if code != exitOK || !strings.Contains(stdout, "\nHEALTH_TIMEOUT=1h30m\n") {
		t.Errorf("upgrade-plan --health-timeout 1h30m = exit %d (%s); want HEALTH_TIMEOUT=1h30m in the script", code, stderr)
	}
}

// TestUpgradePlanTupprOutDir writes one file per stage and a README.
func TestUpgradePlanTupprOutDir(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "stages")
	_, stderr, code := runUpgradePlan(t, "-i", upgradeTestdata+"/cluster.yaml", "--config", upgradeTestdata+"/site.yaml",
		"--to", "v1.10.x", "--parallel", "2", "-o", "tuppr", "--out-dir", dir)
	if code != exitOK {
		t.Fatalf("upgrade-plan -o tuppr --out-dir = exit %d\n%s", code, stderr)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 16 || entries[0].Name() != "01-hop1-talos-v1.7.7-controlplane.yaml" || entries[15].Name() != "README.md" {
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		t.Errorf("--out-dir holds %v; want 15 stages in order and README.md", names)
	}
	// A second run into the same, now full, directory is refused and changes nothing.
	_, stderr, code = runUpgradePlan(t, "-i", upgradeTestdata+"/cluster.yaml", "--config", upgradeTestdata+"/site.yaml",
		"--to", "v1.10.x", "-o", "tuppr", "--out-dir", dir)
	if code != exitUsage || !strings.Contains(stderr, "not empty") {
		t.Errorf("upgrade-plan --out-dir <full dir> = exit %d, %q; want exit 2, not empty", code, stderr)
	}
	if again, _ := os.ReadDir(dir); len(again) != 16 {
		t.Errorf("--out-dir holds %d files after the refused run; want the 16 of the first", len(again))
	}
}
