package main

import (
	"encoding/json"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/cluster/clustertest"
	"github.com/imgpipe/imgpipe/upgrade"
)

// TestUpgradePlanProfileFormats: --profile plans only the pool's nodes, with no
// Kubernetes step, in every output format.
func TestUpgradePlanProfileFormats(t *testing.T) {
	t.Parallel()
	base := []string{"-i", upgradeTestdata + "/cluster.yaml", "--config", upgradeTestdata + "/site.yaml", "--to", "v1.10.x", "--profile", "gpu"}
	tests := []struct {
		output  string
		want    []string
		notWant []string
	}{
		{"table", []string{"(1 nodes, conservative path)", "Kubernetes 1.30.3 -> 1.30.3", "upgrade   gpu-1", "--profile gpu: planning 1 of the inventory's 7 nodes"}, []string{"worker-1", "cp-2", "upgrade-k8s"}},
		{"yaml", []string{"profile_filter:", "- gpu", "nodes: 1"}, []string{"worker-1", "upgrade-k8s", "kubernetes_steps"}},
		{"script", []string{"talosctl upgrade --nodes 10.0.0.31", "--kubernetes 1.30.3 --profile gpu"}, []string{"talosctl upgrade-k8s", "10.0.0.21"}},
		{"tuppr", []string{`name: "homelab-talos-gpu"`, `- "gpu-1"`}, []string{"KubernetesUpgrade", "worker-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.output, func(t *testing.T) {
			t.Parallel()
			out, stderr, code := runUpgradePlan(t, append(slices.Clone(base), "-o", tt.output)...)
			if code != exitOK {
				t.Fatalf("upgrade-plan --profile gpu -o %s = exit %d\n%s", tt.output, code, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("upgrade-plan --profile gpu -o %s lacks %q:\n%s", tt.output, w, out)
				}
			}
			for _, w := range tt.notWant {
				if strings.Contains(out, w) {
					t.Errorf("upgrade-plan --profile gpu -o %s contains %q; want only gpu-1 and no Kubernetes step", tt.output, w)
				}
			}
		})
	}
	out, stderr, code := runUpgradePlan(t, append(slices.Clone(base), "-o", "json")...)
	var plan upgrade.Plan
	if code != exitOK || json.Unmarshal([]byte(out), &plan) != nil {
		t.Fatalf("upgrade-plan --profile gpu -o json = exit %d, %q\n%s", code, out, stderr)
	}
	if !slices.Equal(plan.ProfileFilter, []string{"gpu"}) || plan.Nodes != 1 || !slices.Equal(plan.To.Kubernetes, []string{"1.30.3"}) {
		t.Errorf("upgrade-plan --profile gpu -o json: profile_filter %v, nodes %d, to.kubernetes %v; want [gpu], 1, [1.30.3]", plan.ProfileFilter, plan.Nodes, plan.To.Kubernetes)
	}
	for _, h := range plan.Hops {
		if !slices.Equal(h.Nodes, []string{"gpu-1"}) || len(h.KubernetesSteps) > 0 {
			t.Errorf("hop %s nodes %v, kubernetes steps %v; want [gpu-1] and none", h.Talos, h.Nodes, h.KubernetesSteps)
		}
	}
}

// TestUpgradePlanProfileLive: --profile with --kubeconfig; a node whose profile is
// unknown is left out rather than refused (without --profile it is refused).
func TestUpgradePlanProfileLive(t *testing.T) {
	t.Parallel()
	unknown := clustertest.NodeJSON(clustertest.Node{Name: "mystery-1", Address: "10.3.0.41", Talos: "v1.9.6", Kubelet: "v1.31.4",
		Schematic: strings.Repeat("ab", 32)})
	api := liveCluster(t, unknown)
	out, stderr, code := runCLI(t, "upgrade-plan", "--kubeconfig", api.Kubeconfig, "--config", upgradeTestdata+"/site.yaml", "--to", "v1.10.x", "-p", "worker", "-o", "json")
	var plan upgrade.Plan
	if code != exitOK || json.Unmarshal([]byte(out), &plan) != nil {
		t.Fatalf("upgrade-plan --kubeconfig -p worker = exit %d\n%s", code, stderr)
	}
	var nodes []string
	for _, h := range plan.Hops {
		for _, n := range h.Nodes {
			if !slices.Contains(nodes, n) {
				nodes = append(nodes, n)
			}
		}
	}
	slices.Sort(nodes)
	if !slices.Equal(nodes, []string{"worker-1", "worker-2"}) || !slices.Equal(plan.To.Kubernetes, []string{"1.31.4"}) {
		t.Errorf("upgrade-plan --kubeconfig -p worker upgrades %v to Kubernetes %v; want [worker-1 worker-2], [1.31.4]", nodes, plan.To.Kubernetes)
	}
}

func TestUpgradePlanProfileRefusals(t *testing.T) {
	t.Parallel()
	cfg := upgradeTestdata + "/site.yaml"
	none := filepath.Join(t.TempDir(), "none.yaml") // never read: these fail first
	tests := []struct {
		name   string
		args   []string
		code   int
		stderr []string
	}{
		{"unknown profile", []string{"-i", none, "--config", cfg, "--to", "v1.10.x", "--profile", "gpux"}, exitUsage,
			[]string{`unknown profile "gpux"`, "controlplane, worker, gpu, gpu-550", "did you mean gpu?"}},
		{"one of several unknown", []string{"-i", none, "--config", cfg, "--to", "v1.10.x", "-p", "gpu", "-p", "wroker"}, exitUsage,
			[]string{`"wroker"`, "did you mean worker?"}},
		{"empty profile", []string{"-i", none, "--config", cfg, "--to", "v1.10.x", "--profile", ""}, exitUsage,
			[]string{"--profile needs a profile name"}},
		{"empty item", []string{"-i", none, "--config", cfg, "--to", "v1.10.x", "--profile", "gpu,"}, exitUsage,
			[]string{"empty profile name"}},
		{"with --kubernetes", []string{"-i", none, "--config", cfg, "--to", "v1.10.x", "--profile", "gpu", "--kubernetes", "1.31"}, exitUsage,
			[]string{"--kubernetes and --profile exclude each other"}},
		{"no node of the profile", []string{"-i", upgradeTestdata + "/cluster.yaml", "--config", cfg, "--to", "v1.10.x", "--profile", "gpu-550"}, exitUsage,
			[]string{"no node has profile gpu-550"}},
		{"needs a cluster-wide Kubernetes upgrade", []string{"-i", upgradeTestdata + "/k8s-old.yaml", "--config", cfg, "--to", "v1.13.x", "--profile", "worker"}, exitPolicy,
			[]string{"needs a cluster-wide Kubernetes upgrade", "plan without --profile first"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			stdout, stderr, code := runUpgradePlan(t, tt.args...)
			if code != tt.code || stdout != "" || strings.Contains(stderr, "reading inventory") {
				t.Errorf("upgrade-plan %v = exit %d, %d bytes out, stderr %q; want exit %d, nothing out, before reading the inventory", tt.args, code, len(stdout), stderr, tt.code)
			}
			for _, w := range tt.stderr {
				if !strings.Contains(stderr, w) {
					t.Errorf("upgrade-plan %v stderr = %q; want it to mention %q", tt.args, stderr, w)
				}
			}
		})
	}
}
