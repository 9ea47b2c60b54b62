package upgrade

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// noKubernetes asserts a --profile plan changes no Kubernetes: no upgrade-k8s step,
// every hop (and every lock it pins) at the cluster's version k.
func noKubernetes(t *testing.T, p *Plan, k string) {
	t.Helper()
	if !slices.Equal(p.To.Kubernetes, []string{k}) {
		t.Errorf("To.Kubernetes = %v; want [%s] (pinned to the cluster's)", p.To.Kubernetes, k)
	}
	for _, h := range p.Hops {
		if h.Kubernetes != k || h.KubernetesAfter != "" || len(h.KubernetesSteps) > 0 {
			t.Errorf("hop %s Kubernetes = %s, after %q, steps %v; want %s and no steps", h.Talos, h.Kubernetes, h.KubernetesAfter, h.KubernetesSteps, k)
		}
		for _, s := range h.Steps {
			if s.Action == ActionUpgradeK8s || s.Action == ActionLock && !strings.Contains(s.Command, "--kubernetes "+k+" ") {
				t.Errorf("hop %s step %s %q; want no Kubernetes change from %s", h.Talos, s.Action, s.Command, k)
			}
		}
	}
}

func TestNewPlanProfiles(t *testing.T) {
	t.Parallel()
	// cp-1 runs Kubernetes 1.30.5; worker-1's kubelet lags at 1.29.5 (within the skew policy).
	const lagging = `nodes:
  - {name: cp-1, address: 10.6.0.11, role: controlplane, profile: controlplane, talos: v1.11.6, kubernetes: 1.30.5}
  - {name: worker-1, address: 10.6.0.21, role: worker, profile: worker, talos: v1.10.9, kubernetes: 1.29.5}
  - {name: gpu-1, address: 10.6.0.31, role: worker, profile: gpu, talos: v1.11.6, kubernetes: 1.30.5}
`
	const unmatched = `nodes:
  - {name: cp-1, address: 10.7.0.11, role: controlplane, profile: controlplane, talos: v1.9.6, kubernetes: 1.31.4}
  - {name: w-1, address: 10.7.0.21, role: worker, profile: worker, talos: v1.9.6, kubernetes: 1.31.4}
  - {name: mystery-1, address: 10.7.0.22, role: worker, profile: "", unknown: ["profile: schematic abab matches no site profile"], talos: v1.9.6, kubernetes: 1.31.4}
  - {name: s-1, address: 10.7.0.23, role: worker, profile: storage, talos: v1.9.6, kubernetes: 1.31.4}
`
	tests := []struct {
		name      string
		inventory string
		yaml      string
		opts      Options
		want      []string // events(plan)
		wantNodes map[string][]string
		wantErr   []error
		wantText  []string
		check     func(t *testing.T, p *Plan)
	}{
		{
			name:      "GPU workers only: every Talos hop, no Kubernetes step, gated on the control plane",
			inventory: "cluster.yaml", opts: Options{To: "v1.10.x", Profiles: []string{"gpu"}},
			want:      []string{"talos:v1.7.7", "talos:v1.8.4", "talos:v1.9.6", "talos:v1.10.9"},
			wantNodes: map[string][]string{"v1.7.7": {"gpu-1"}, "v1.10.9": {"gpu-1"}},
			check: func(t *testing.T, p *Plan) {
				noKubernetes(t, p, "1.30.3")
				if p.Nodes != 1 || !slices.Equal(p.ProfileFilter, []string{"gpu"}) {
					t.Errorf("Nodes = %d, ProfileFilter = %v; want 1, [gpu]", p.Nodes, p.ProfileFilter)
				}
				if !slices.Equal(p.From.Talos, []string{"v1.7.6"}) {
					t.Errorf("From.Talos = %v; want [v1.7.6] (the selected node only)", p.From.Talos)
				}
				var drained, gated bool
				for _, s := range p.Hops[0].Steps {
					drained = drained || s.Action == ActionDrain && s.Node == "gpu-1"
					gated = gated || s.Action == ActionHealth && s.Node == "cp-1"
				}
				if !drained || !gated {
					t.Errorf("hop 1 drains gpu-1 = %v, health gate on cp-1 = %v; want both (one selected node is not a single-node cluster)", drained, gated)
				}
				if len(p.Notes) == 0 || !strings.Contains(p.Notes[0], "planning 1 of the inventory's 7 nodes") {
					t.Errorf("Notes = %q; want the filter noted", p.Notes)
				}
			},
		},
		{
			name:      "several profiles, repeated: sorted once",
			inventory: "cluster.yaml", opts: Options{To: "v1.8.x", Path: PathMinimal, Profiles: []string{"worker", "gpu", "worker"}},
			want:      []string{"talos:v1.8.4"},
			wantNodes: map[string][]string{"v1.8.4": {"gpu-1", "worker-1", "worker-2", "worker-3"}},
			check: func(t *testing.T, p *Plan) {
				noKubernetes(t, p, "1.30.3")
				if !slices.Equal(p.ProfileFilter, []string{"gpu", "worker"}) {
					t.Errorf("ProfileFilter = %v; want [gpu worker]", p.ProfileFilter)
				}
			},
		},
		{
			name: "nodes of unknown or undeclared profiles are left out, not refused",
			yaml: unmatched, opts: Options{To: "v1.10.x", Profiles: []string{"worker"}},
			want:      []string{"talos:v1.10.9"},
			wantNodes: map[string][]string{"v1.10.9": {"w-1"}},
			check:     func(t *testing.T, p *Plan) { noKubernetes(t, p, "1.31.4") },
		},
		{
			name: "without --profile the same inventory is refused",
			yaml: unmatched, opts: Options{To: "v1.10.x"},
			wantErr: []error{ErrUnknownProfile, fail.ErrPolicy},
		},
		{
			name: "a kubelet behind the control plane is noted, not upgraded",
			yaml: lagging, opts: Options{To: "v1.11.x", Profiles: []string{"worker"}},
			want:      []string{"talos:v1.11.6"},
			wantNodes: map[string][]string{"v1.11.6": {"worker-1"}},
			check: func(t *testing.T, p *Plan) {
				noKubernetes(t, p, "1.30.5")
				if !slices.ContainsFunc(p.Notes, func(n string) bool { return strings.Contains(n, "worker-1 (1.29.5)") }) {
					t.Errorf("Notes = %q; want worker-1's lagging kubelet noted", p.Notes)
				}
			},
		},
		{
			name: "a hop the selected kubelets cannot run needs a cluster-wide Kubernetes step",
			yaml: lagging, opts: Options{To: "v1.12.x", Profiles: []string{"worker"}},
			wantErr:  []error{ErrClusterKubernetes, fail.ErrPolicy},
			wantText: []string{"hop 2 (Talos v1.12.11) needs Kubernetes 1.30", "worker-1 (1.29.5)", "plan without --profile first"},
		},
		{
			name:      "a target the cluster's Kubernetes is too old for needs a cluster-wide step",
			inventory: "k8s-old.yaml", opts: Options{To: "v1.13.x", Profiles: []string{"worker"}},
			wantErr:  []error{ErrClusterKubernetes, fail.ErrPolicy},
			wantText: []string{"Talos v1.13.9 supports Kubernetes 1.31", "runs 1.29.5", "plan without --profile first"},
		},
		{
			name:      "a target too old for the cluster's Kubernetes is no Kubernetes step",
			inventory: "k8s-new.yaml", opts: Options{To: "v1.8.x", Profiles: []string{"controlplane"}},
			wantErr:  []error{ErrKubernetesTooNew, fail.ErrPolicy},
			wantText: []string{"runs Kubernetes 1.32.0"},
		},
		{
			name:      "--kubernetes with --profile",
			inventory: "cluster.yaml", opts: Options{To: "v1.10.x", Kubernetes: "1.31", Profiles: []string{"gpu"}},
			wantErr:  []error{fail.ErrUsage},
			wantText: []string{"cluster-wide"},
		},
		{
			name:      "a profile the site does not declare",
			inventory: "cluster.yaml", opts: Options{To: "v1.10.x", Profiles: []string{"gpux"}},
			wantErr:  []error{site.ErrUnknownProfile, fail.ErrUsage},
			wantText: []string{`"gpux"`, "controlplane, worker, gpu, gpu-550", "did you mean gpu?"},
		},
		{
			name:      "an empty profile name",
			inventory: "cluster.yaml", opts: Options{To: "v1.10.x", Profiles: []string{"gpu", ""}},
			wantErr:  []error{fail.ErrUsage},
			wantText: []string{"empty profile name"},
		},
		{
			name:      "no node of the profile",
			inventory: "cluster.yaml", opts: Options{To: "v1.10.x", Profiles: []string{"gpu-550"}},
			wantErr:  []error{fail.ErrUsage},
			wantText: []string{"no node has profile gpu-550", "controlplane, gpu, worker"},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := planFor(t, tt.inventory, tt.yaml, tt.opts)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("NewPlan(%q, profiles %q) = plan %v; want an error", tt.inventory, tt.opts.Profiles, events(p))
				}
				for _, want := range tt.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("NewPlan(%q, profiles %q) error = %v; want errors.Is %v", tt.inventory, tt.opts.Profiles, err, want)
					}
				}
				for _, want := range tt.wantText {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("NewPlan(%q, profiles %q) error = %v; want it to mention %q", tt.inventory, tt.opts.Profiles, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPlan(%q, profiles %q) error = %v; want a plan", tt.inventory, tt.opts.Profiles, err)
			}
			if got := events(p); !slices.Equal(got, tt.want) {
				t.Errorf("NewPlan(%q, profiles %q) events = %v; want %v", tt.inventory, tt.opts.Profiles, got, tt.want)
			}
			for talos, want := range tt.wantNodes {
				if got := hopNodes(p)[talos]; !slices.Equal(got, want) {
					t.Errorf("NewPlan(%q, profiles %q) hop %s nodes = %v; want %v", tt.inventory, tt.opts.Profiles, talos, got, want)
				}
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func TestCheckProfiles(t *testing.T) {
	t.Parallel()
	known := []string{"controlplane", "worker", "gpu"}
	tests := []struct {
		names    []string
		wantErr  bool
		wantText string
	}{
		{nil, false, ""},
		{[]string{"gpu", "worker"}, false, ""},
		{[]string{"wroker"}, true, "did you mean worker?"},
		{[]string{"GPU"}, true, "did you mean gpu?"},
		{[]string{"storage"}, true, "the site declares controlplane, worker, gpu"},
		{[]string{" "}, true, "empty profile name"},
	}
	for _, tt := range tests {
		err := CheckProfiles(known, tt.names)
		if (err != nil) != tt.wantErr || err != nil && (!errors.Is(err, fail.ErrUsage) || !strings.Contains(err.Error(), tt.wantText)) {
			t.Errorf("CheckProfiles(%q) = %v; want error %v mentioning %q", tt.names, err, tt.wantErr, tt.wantText)
		}
		if err != nil && strings.Contains(tt.wantText, "did you mean") && !errors.Is(err, site.ErrUnknownProfile) {
			t.Errorf("CheckProfiles(%q) = %v; want errors.Is site.ErrUnknownProfile", tt.names, err)
		}
	}
	if got := nearestProfile(known, "storage"); got != "" {
		t.Errorf("nearestProfile(%q) = %q; want none (nothing is close)", "storage", got)
	}
}
