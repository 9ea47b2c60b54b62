package upgrade

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// events flattens a plan into the order Talos hops and Kubernetes steps happen:
// "talos:v1.8.4" at a hop's first node upgrade, "k8s:1.31.4" per upgrade-k8s.
func events(p *Plan) []string {
	var out []string
	for _, h := range p.Hops {
		talos := false
		for _, s := range h.Steps {
			switch s.Action {
			case ActionUpgrade:
				if !talos {
					out = append(out, "talos:"+h.Talos)
					talos = true
				}
			case ActionUpgradeK8s:
				out = append(out, "k8s:"+s.Command[strings.LastIndex(s.Command, " ")+1:])
			}
		}
	}
	return out
}

func hopNodes(p *Plan) map[string][]string {
	out := map[string][]string{}
	for _, h := range p.Hops {
		out[h.Talos] = h.Nodes
	}
	return out
}

func planFor(t *testing.T, inventory, yamlText string, opts Options) (*Plan, error) {
	t.Helper()
	m := testMatrix(t)
	cfg := testSite(t)
	var data []byte
	name := inventory
	if yamlText != "" {
		data, name = []byte(yamlText), "inline.yaml"
	} else {
		var err error
		if data, err = os.ReadFile(filepath.Join("testdata", inventory)); err != nil {
			t.Fatal(err)
		}
	}
	inv, err := ParseInventory(name, data)
	if err != nil {
		return nil, err
	}
	opts.KnownProfiles = profileNames(cfg)
	opts.InventoryFile = name
	return NewPlan(m, inv, SiteResolver(m, cfg, "embedded"), opts)
}

func TestNewPlanScenarios(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name      string
		inventory string // file in testdata
		yaml      string // or inline inventory
		opts      Options
		want      []string // events(plan)
		wantNodes map[string][]string
		wantErr   []error
		wantText  []string // substrings of the error
		check     func(t *testing.T, p *Plan)
	}{
		{
			name:      "v1.7 to v1.10 conservative: latest patch of every minor, then Kubernetes one minor at a time",
			inventory: "cluster.yaml", opts: Options{To: "v1.10.x", Parallel: 2},
			want: []string{"talos:v1.7.7", "talos:v1.8.4", "talos:v1.9.6", "talos:v1.10.9", "k8s:1.31.4", "k8s:1.32.4", "k8s:1.33.6"},
			check: func(t *testing.T, p *Plan) {
				if got := p.To.Kubernetes; !slices.Equal(got, []string{"1.33.6"}) {
					t.Errorf("To.Kubernetes = %v; want [1.33.6] (v1.10.9's default)", got)
				}
				checkInstallers(t, p)
				checkRolloutOrder(t, p)
				// NVIDIA extensions took their -lts names in v1.8: a rename, not a drop.
				h2 := p.Hops[1]
				gpu := findProfile(t, h2, "gpu")
				if gpu.SchematicFrom == "" || !slices.ContainsFunc(gpu.Drift, func(d Drift) bool {
					return d.Change == DriftRenamed && d.Extension == "siderolabs/nvidia-open-gpu-kernel-modules-lts"
				}) {
					t.Errorf("hop v1.8.4 gpu drift = %+v (schematic from %q); want the kernel modules renamed to -lts and a new schematic", gpu.Drift, gpu.SchematicFrom)
				}
				// --preserve exactly where the running release is before v1.8.
				for _, h := range p.Hops {
					for _, s := range h.Steps {
						if s.Action != ActionUpgrade {
							continue
						}
						pre := h.Talos == "v1.7.7" || h.Talos == "v1.8.4"
						if got := strings.Contains(s.Command, "--preserve"); got != pre {
							t.Errorf("hop %s %s: --preserve = %v; want %v", h.Talos, s.Node, got, pre)
						}
					}
				}
			},
		},
		{
			name:      "v1.7 to v1.10 minimal: the fewest hops UpgradeableFrom allows",
			inventory: "cluster.yaml", opts: Options{To: "v1.10.x", Path: PathMinimal},
			want: []string{"talos:v1.8.4", "talos:v1.10.9", "k8s:1.31.4", "k8s:1.32.4", "k8s:1.33.6"},
		},
		{
			name:      "Kubernetes too old for later hops: steps inserted before them",
			inventory: "k8s-old.yaml", opts: Options{To: "v1.13.x"},
			want: []string{"talos:v1.11.6", "k8s:1.30.5", "talos:v1.12.11", "k8s:1.31.4", "talos:v1.13.9",
				"k8s:1.32.4", "k8s:1.33.6", "k8s:1.34.1", "k8s:1.35.4", "k8s:1.36.3"},
			check: func(t *testing.T, p *Plan) {
				if got := p.Hops[1].Kubernetes; got != "1.30.5" {
					t.Errorf("hop v1.12.11 Kubernetes = %s; want 1.30.5 (v1.12 supports 1.30 and newer)", got)
				}
			},
		},
		{
			name:      "Kubernetes target given: no steps past it",
			inventory: "k8s-old.yaml", opts: Options{To: "v1.13.x", Kubernetes: "1.31"},
			want: []string{"talos:v1.11.6", "k8s:1.30.5", "talos:v1.12.11", "k8s:1.31.4", "talos:v1.13.9"},
		},
		{
			name:      "Kubernetes too new for the conservative hop",
			inventory: "k8s-new.yaml", opts: Options{To: "v1.8.x"},
			wantErr:  []error{ErrKubernetesTooNew, fail.ErrPolicy},
			wantText: []string{"Talos v1.8.4", "runs Kubernetes 1.32.0", "1.26 to 1.31"},
		},
		{
			name:      "Kubernetes too new: conservative refuses and points at minimal",
			inventory: "k8s-new.yaml", opts: Options{To: "v1.9.x"},
			wantErr:  []error{ErrKubernetesTooNew, fail.ErrPolicy},
			wantText: []string{"--path minimal"},
		},
		{
			name:      "Kubernetes too new: minimal skips the release that cannot run it",
			inventory: "k8s-new.yaml", opts: Options{To: "v1.9.x", Path: PathMinimal},
			want: []string{"talos:v1.9.6", "k8s:1.32.4"},
		},
		{
			name:      "Kubernetes target older than running is refused",
			inventory: "k8s-new.yaml", opts: Options{To: "v1.9.x", Path: PathMinimal, Kubernetes: "1.31.4"},
			wantErr: []error{ErrKubernetesDowngrad, fail.ErrPolicy},
		},
		{
			name:      "GPU driver constraint without a build in a hop",
			inventory: "gpu-550.yaml", opts: Options{To: "v1.10.x"},
			wantErr:  []error{ErrHopResolve, fail.ErrPolicy},
			wantText: []string{"hop 2 (Talos v1.10.9)", "gpu-1, gpu-2", "550.x"},
		},
		{
			name:      "GPU driver constraint holds while the driver is shipped",
			inventory: "gpu-550.yaml", opts: Options{To: "v1.9.x"},
			want: []string{"talos:v1.9.6", "k8s:1.32.4"},
			check: func(t *testing.T, p *Plan) {
				checkRolloutOrder(t, p)
				if !findProfile(t, p.Hops[0], "gpu-550").GPU {
					t.Errorf("profile gpu-550 GPU = false; want true (it has NVIDIA extensions)")
				}
			},
		},
		{
			name:      "mixed versions: each node joins the hops above it",
			inventory: "mixed.yaml", opts: Options{To: "v1.10.x"},
			want: []string{"talos:v1.9.6", "talos:v1.10.9", "k8s:1.32.4", "k8s:1.33.6"},
			wantNodes: map[string][]string{
				"v1.9.6":  {"worker-a", "worker-b"},
				"v1.10.9": {"cp-1", "worker-a", "worker-b"},
			},
		},
		{
			name:      "single-node cluster",
			inventory: "single.yaml", opts: Options{To: "v1.9.x"},
			want: []string{"talos:v1.9.6", "k8s:1.32.4"},
			check: func(t *testing.T, p *Plan) {
				for _, s := range p.Hops[0].Steps {
					if s.Action == ActionDrain {
						t.Errorf("single-node plan drains %s; want no drain (nowhere to move pods)", s.Node)
					}
				}
				if len(p.Hops[0].Notes) == 0 {
					t.Errorf("single-node hop notes = none; want the downtime note")
				}
			},
		},
		{
			name:      "node already on the target with another schematic is re-imaged, others untouched",
			inventory: "at-target.yaml", opts: Options{To: "v1.10.x"},
			want:      []string{"talos:v1.10.9"},
			wantNodes: map[string][]string{"v1.10.9": {"worker-1"}},
			check: func(t *testing.T, p *Plan) {
				s := p.Hops[0].Steps[slices.IndexFunc(p.Hops[0].Steps, func(s Step) bool { return s.Action == ActionUpgrade })]
				if s.SchematicFrom != "376567988ad370138ad8b2698212367b8edcb69b5fd68c80be1f2ec7d603b4ba" || !strings.Contains(s.Note, "re-image") {
					t.Errorf("re-image step = %+v; want schematic_from set and a re-image note", s)
				}
			},
		},
		{
			name: "everything on the target already: nothing to do",
			yaml: `nodes:
  - {name: cp-1, address: 10.5.0.11, role: controlplane, profile: controlplane, talos: v1.10.9, kubernetes: 1.33.6}
  - {name: w-1, address: 10.5.0.21, role: worker, profile: worker, talos: v1.10.9, kubernetes: 1.33.6}
`, opts: Options{To: "v1.10.x"},
			want: nil,
		},
		{
			name: "on the target Talos, behind on Kubernetes: a Kubernetes-only hop",
			yaml: `nodes:
  - {name: cp-1, address: 10.5.0.11, role: controlplane, profile: controlplane, talos: v1.10.9, kubernetes: 1.32.4}
`, opts: Options{To: "v1.10.x"},
			want: []string{"k8s:1.33.6"},
		},
		{
			name:      "a hop that would drop an extension the node runs is refused",
			inventory: "drop.yaml", opts: Options{To: "v1.10.x"},
			wantErr:  []error{ErrExtensionDropped, fail.ErrPolicy},
			wantText: []string{"hop 1 (Talos v1.10.9)", "node worker-1", "siderolabs/iscsi-tools"},
		},
		{
			name:      "a node newer than the target is a downgrade",
			inventory: "mixed.yaml", opts: Options{To: "v1.9.x"},
			wantErr:  []error{ErrDowngrade, fail.ErrPolicy},
			wantText: []string{"worker-c runs v1.10.9"},
		},
		{
			name: "a profile the site does not declare points at the node's line",
			yaml: `nodes:
  - {name: cp-1, address: 10.5.0.11, role: controlplane, profile: controlplane, talos: v1.10.9, kubernetes: 1.33.6}
  - {name: w-1, address: 10.5.0.21, role: worker, profile: storage, talos: v1.10.9, kubernetes: 1.33.6}
`, opts: Options{To: "v1.10.x"},
			wantErr:  []error{fail.ErrUsage},
			wantText: []string{"inline.yaml:3: node w-1", `profile "storage"`},
		},
		{
			name: "a kubelet newer than the control plane is an inventory error",
			yaml: `nodes:
  - {name: cp-1, address: 10.5.0.11, role: controlplane, profile: controlplane, talos: v1.10.9, kubernetes: 1.32.4}
  - {name: w-1, address: 10.5.0.21, role: worker, profile: worker, talos: v1.10.9, kubernetes: 1.33.6}
`, opts: Options{To: "v1.10.x"},
			wantErr:  []error{fail.ErrUsage},
			wantText: []string{"inline.yaml:3: node w-1: kubelet 1.33.6 is newer"},
		},
		{
			name:      "unknown path strategy",
			inventory: "single.yaml", opts: Options{To: "v1.9.x", Path: "fastest"},
			wantErr: []error{fail.ErrUsage},
		},
		{
			name:      "unknown target release",
			inventory: "single.yaml", opts: Options{To: "v1.9.99"},
			wantErr: []error{fail.ErrPolicy},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			p, err := planFor(t, tt.inventory, tt.yaml, tt.opts)
			if tt.wantErr != nil {
				if err == nil {
					t.Fatalf("NewPlan(%q, to %q) = plan %v; want an error", tt.inventory, tt.opts.To, events(p))
				}
				for _, want := range tt.wantErr {
					if !errors.Is(err, want) {
						t.Errorf("NewPlan(%q, to %q) error = %v; want errors.Is %v", tt.inventory, tt.opts.To, err, want)
					}
				}
				for _, want := range tt.wantText {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("NewPlan(%q, to %q) error = %v; want it to mention %q", tt.inventory, tt.opts.To, err, want)
					}
				}
				return
			}
			if err != nil {
				t.Fatalf("NewPlan(%q, to %q) error = %v; want a plan", tt.inventory, tt.opts.To, err)
			}
			if got := events(p); !slices.Equal(got, tt.want) {
				t.Errorf("NewPlan(%q, to %q) events = %v; want %v", tt.inventory, tt.opts.To, got, tt.want)
			}
			for talos, want := range tt.wantNodes {
				if got := hopNodes(p)[talos]; !slices.Equal(got, want) {
					t.Errorf("NewPlan(%q) hop %s nodes = %v; want %v", tt.inventory, talos, got, want)
				}
			}
			for i, h := range p.Hops {
				if h.Index != i+1 {
					t.Errorf("hop %d Index = %d; want %d", i, h.Index, i+1)
				}
			}
			if tt.check != nil {
				tt.check(t, p)
			}
		})
	}
}

func findProfile(t *testing.T, h Hop, name string) HopProfile {
	t.Helper()
	i := slices.IndexFunc(h.Profiles, func(p HopProfile) bool { return p.Name == name })
	if i < 0 {
		t.Fatalf("hop %s has no profile %s (has %v)", h.Talos, name, h.Profiles)
	}
	return h.Profiles[i]
}

// checkInstallers asserts every upgrade pins the factory installer of its profile for
// that hop, named as the reference says: installer/<id>:<v> before v1.10,
// <platform>-installer/<id>:<v> from v1.10.
func checkInstallers(t *testing.T, p *Plan) {
	t.Helper()
	for _, h := range p.Hops {
		for _, s := range h.Steps {
			if s.Action != ActionUpgrade {
				continue
			}
			hp := findProfile(t, h, s.Profile)
			if s.Image != hp.Installer || !strings.Contains(s.Command, "--image "+hp.Installer) {
				t.Errorf("hop %s %s: image %q, command %q; want --image %s", h.Talos, s.Node, s.Image, s.Command, hp.Installer)
			}
			repo := "factory.talos.dev/installer/"
			if h.Talos == "v1.10.9" {
				repo = "factory.talos.dev/nocloud-installer/"
			}
			if want := repo + hp.Schematic + ":" + h.Talos; hp.Installer != want {
				t.Errorf("hop %s profile %s installer = %s; want %s", h.Talos, hp.Name, hp.Installer, want)
			}
		}
	}
}

// checkRolloutOrder asserts the rollout rules: pre-seed and pre-warm first; control-plane
// nodes one per batch; GPU nodes drained before and uncordoned after their upgrade, and
// before other workers; a health gate ending every batch.
func checkRolloutOrder(t *testing.T, p *Plan) {
	t.Helper()
	for _, h := range p.Hops {
		firstNode := slices.IndexFunc(h.Steps, func(s Step) bool { return s.Batch > 0 })
		for i, s := range h.Steps {
			if (s.Action == ActionLock || s.Action == ActionPreseed || s.Action == ActionPrewarm) && firstNode >= 0 && i > firstNode {
				t.Errorf("hop %s: %s at step %d after node step %d", h.Talos, s.Action, i, firstNode)
			}
		}
		perBatch := map[int][]Step{}
		var order []int
		for _, s := range h.Steps {
			if s.Batch == 0 {
				continue
			}
			if _, ok := perBatch[s.Batch]; !ok {
				order = append(order, s.Batch)
			}
			perBatch[s.Batch] = append(perBatch[s.Batch], s)
		}
		seenWorker, seenPlainWorker := false, false
		for _, b := range order {
			steps := perBatch[b]
			var ups []Step
			for _, s := range steps {
				if s.Action == ActionUpgrade {
					ups = append(ups, s)
				}
			}
			if len(ups) == 0 {
				t.Errorf("hop %s batch %d has no upgrade", h.Talos, b)
				continue
			}
			cp := ups[0].Role == RoleControlPlane
			if cp && (len(ups) != 1 || seenWorker) {
				t.Errorf("hop %s batch %d: control-plane batch with %d nodes after workers=%v; want one node, before workers", h.Talos, b, len(ups), seenWorker)
			}
			drained := steps[0].Action == ActionDrain
			if !cp {
				seenWorker = true
				if drained && seenPlainWorker {
					t.Errorf("hop %s batch %d: GPU batch after plain workers", h.Talos, b)
				}
				if !drained {
					seenPlainWorker = true
				}
			}
			last := steps[len(steps)-1]
			if drained {
				if last.Action != ActionUncordon || steps[len(steps)-1-len(ups)].Action != ActionHealth {
					t.Errorf("hop %s batch %d: drained batch ends %s; want health then uncordon", h.Talos, b, last.Action)
				}
			} else if last.Action != ActionHealth {
				t.Errorf("hop %s batch %d ends with %s; want a health gate", h.Talos, b, last.Action)
			}
		}
	}
}

func TestNewPlanParallelBatches(t *testing.T) {
	t.Parallel()
	for _, parallel := range []int{1, 2, 3, 10} {
		t.Run(fmt.Sprint(parallel), func(t *testing.T) {
			t.Parallel()
			p, err := planFor(t, "cluster.yaml", "", Options{To: "v1.7.x", Parallel: parallel})
			if err != nil {
				t.Fatal(err)
			}
			checkRolloutOrder(t, p)
			sizes := map[int]int{}
			for _, s := range p.Hops[0].Steps {
				if s.Action == ActionUpgrade && s.Role == RoleWorker && s.Profile == "worker" {
					sizes[s.Batch]++
				}
			}
			total := 0
			for b, n := range sizes {
				total += n
				if n > parallel {
					t.Errorf("--parallel %d: batch %d upgrades %d workers; want at most %d", parallel, b, n, parallel)
				}
			}
			if want := (3 + parallel - 1) / parallel; len(sizes) != want || total != 3 {
				t.Errorf("--parallel %d: %d worker batches with %d workers; want %d batches with 3", parallel, len(sizes), total, want)
			}
		})
	}
}

func TestNewPlanRejectsBadOptions(t *testing.T) {
	t.Parallel()
	for _, opts := range []Options{{To: "v1.9.x", Parallel: -1}, {To: "", Parallel: 1}} {
		_, err := planFor(t, "single.yaml", "", opts)
		if err == nil {
			t.Errorf("NewPlan(%+v) = nil error; want one", opts)
		}
	}
}

func TestNewPlanLeavesInventoryAlone(t *testing.T) {
	t.Parallel()
	m := testMatrix(t)
	cfg := testSite(t)
	inv := readInventory(t, "cluster.yaml")
	before := slices.Clone(inv.Nodes)
	for i := range 2 {
		p, err := NewPlan(m, inv, SiteResolver(m, cfg, "embedded"), Options{To: "v1.10.x"})
		if err != nil {
			t.Fatal(err)
		}
		if len(p.Hops) != 4 {
			t.Errorf("NewPlan run %d = %d hops; want 4 (the same plan each time)", i+1, len(p.Hops))
		}
	}
	for i := range before {
		if !reflect.DeepEqual(before[i], inv.Nodes[i]) {
			t.Errorf("NewPlan changed inventory node %d: %+v -> %+v", i, before[i], inv.Nodes[i])
		}
	}
}

// TestNewPlanRefusesOmittedOptional drops an optional extension from one hop through a
// resolver wrapper (the real catalog has no such gap): the plan must be refused, naming
// the hop, the nodes, the extension and the resolver's reason.
func TestNewPlanRefusesOmittedOptional(t *testing.T) {
	t.Parallel()
	m := testMatrix(t)
	cfg := testSite(t)
	real := SiteResolver(m, cfg, "embedded")
	omitting := func(talos, k8s string, profiles []string) (*site.Lock, error) {
		l, err := real(talos, k8s, profiles)
		if err != nil || talos != "v1.9.6" {
			return l, err
		}
		for i := range l.Profiles {
			p := &l.Profiles[i]
			if p.Name != "worker" {
				continue
			}
			p.Extensions = slices.DeleteFunc(p.Extensions, func(e site.Extension) bool { return e.Name == "siderolabs/qemu-guest-agent" })
			p.Omitted = append(p.Omitted, site.Omitted{Name: "siderolabs/qemu-guest-agent", Reason: "qemu-guest-agent is not in the Talos v1.9.6 catalog"})
		}
		return l, nil
	}
	inv := readInventory(t, "cluster.yaml")
	_, err := NewPlan(m, inv, omitting, Options{To: "v1.10.x", KnownProfiles: profileNames(cfg)})
	if !errors.Is(err, ErrExtensionDropped) || !errors.Is(err, fail.ErrPolicy) {
		t.Fatalf("NewPlan(worker loses qemu-guest-agent at v1.9.6) error = %v; want ErrExtensionDropped and fail.ErrPolicy", err)
	}
	for _, want := range []string{"hop 3 (Talos v1.9.6)", "node worker-1", "node worker-3", "siderolabs/qemu-guest-agent",
		"the profile omits there: qemu-guest-agent is not in the Talos v1.9.6 catalog"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("NewPlan error =\n%v\nwant it to mention %q", err, want)
		}
	}
	if strings.Contains(err.Error(), "node cp-1") {
		t.Errorf("NewPlan error names cp-1, whose profile keeps the extension:\n%v", err)
	}
}

// TestKubeletSkewCatchUp: a kubelet 3 minors behind the control plane is brought up to
// the control plane's version before the control plane's next minor, and the plan says so.
func TestKubeletSkewCatchUp(t *testing.T) {
	t.Parallel()
	p, err := planFor(t, "skew.yaml", "", Options{To: "v1.9.x", Kubernetes: "1.32"})
	if err != nil {
		t.Fatal(err)
	}
	var steps []string
	for _, h := range p.Hops {
		steps = append(steps, h.KubernetesSteps...)
	}
	if want := []string{"1.31.4", "1.32.4"}; !slices.Equal(steps, want) {
		t.Errorf("NewPlan(skew) Kubernetes steps = %v; want %v (catch-up first)", steps, want)
	}
	note := strings.Join(p.Notes, "\n")
	if !strings.Contains(note, "kubelet skew catch-up") || !strings.Contains(note, "worker-1 (1.28.0)") || strings.Contains(note, "worker-2") {
		t.Errorf("NewPlan(skew) notes = %q; want the catch-up named with worker-1 only", note)
	}
}

// TestRefusalsBounded: a refusal at 10,000 nodes names the first nodes and counts
// the rest, instead of listing every node on one line.
func TestRefusalsBounded(t *testing.T) {
	t.Parallel()
	m := testMatrix(t)
	cfg := testSite(t)
	tests := []struct {
		name string
		edit func(n *Node)
		want error
	}{
		{"downgrade", func(n *Node) { n.Talos = "v1.11.6"; n.Kubernetes = "1.33.6" }, ErrDowngrade},
		{"unknown profile", func(n *Node) {
			if n.Role == RoleWorker {
				n.Profile, n.Unknown = "", []string{"profile: schematic abc matches no site profile"}
			}
		}, ErrUnknownProfile},
		{"extension dropped", func(n *Node) {
			if n.Role == RoleWorker {
				n.Extensions = []string{"siderolabs/qemu-guest-agent", "siderolabs/iscsi-tools"}
			}
		}, ErrExtensionDropped},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			inv := bigInventory(10000)
			for i := range inv.Nodes {
				tt.edit(&inv.Nodes[i])
			}
			_, err := NewPlan(m, inv, SiteResolver(m, cfg, "embedded"), Options{To: "v1.10.x", KnownProfiles: profileNames(cfg)})
			if !errors.Is(err, tt.want) {
				t.Fatalf("NewPlan(10,000 nodes, %s) = %v; want %v", tt.name, err, tt.want)
			}
			if msg := err.Error(); len(msg) > 8<<10 || !strings.Contains(msg, "more") {
				t.Errorf("NewPlan(10,000 nodes, %s) error is %d bytes; want a bounded message ending in a count:\n%.600s", tt.name, len(msg), msg)
			}
		})
	}
}
