package upgrade

import (
	"bufio"
	"fmt"
	"io"
	"regexp"
	"strings"

	"gopkg.in/yaml.v3"
)

// WriteScript renders the plan as a bash script of talosctl and kubectl commands, in
// rollout order. Upgrades of one batch run in parallel and every one of them must
// succeed before the batch's health gate. Every talosctl upgrade pins --image to the
// factory installer of the node's profile for that hop: a generic installer would
// silently strip the node's system extensions.
func WriteScript(w io.Writer, p *Plan) error {
	bw := bufio.NewWriter(w)
	pr := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	pr("#!/usr/bin/env bash\n")
	pr("# imgpipe upgrade plan (%s path)%s: %d nodes\n", p.Path, clusterSuffix(p.Cluster), p.Nodes)
	pr("# from Talos %s, Kubernetes %s\n", strings.Join(p.From.Talos, ", "), strings.Join(p.From.Kubernetes, ", "))
	pr("# to   Talos %s, Kubernetes %s\n", strings.Join(p.To.Talos, ", "), strings.Join(p.To.Kubernetes, ", "))
	pr("#\n# Review before running. Use talosctl %s or newer, and a kubeconfig for kubectl.\n", lastTalos(p))
	pr("# Each hop starts only when the previous one is healthy; a failing command stops the script.\n")
	for _, n := range p.Notes {
		pr("# note: %s\n", n)
	}
	pr("set -euo pipefail\n")
	if len(p.Hops) == 0 {
		pr("\necho 'nothing to do: every node runs the target'\n")
	}
	for _, h := range p.Hops {
		pr("\n# === hop %d/%d: Talos %s, Kubernetes %s", h.Index, len(p.Hops), h.Talos, h.Kubernetes)
		if h.KubernetesAfter != "" {
			pr(" -> %s", h.KubernetesAfter)
		}
		pr(" ===\n")
		for _, n := range h.Notes {
			pr("# note: %s\n", n)
		}
		pr("echo %s\n", ShellQuote(fmt.Sprintf("hop %d/%d: Talos %s", h.Index, len(p.Hops), h.Talos)))
		steps := h.Steps
		for i := 0; i < len(steps); {
			s := steps[i]
			if s.Action != ActionUpgrade {
				if s.Note != "" {
					pr("# %s\n", s.Note)
				}
				pr("%s\n", s.Command)
				i++
				continue
			}
			// A run of upgrades of the same batch.
			j := i
			for j < len(steps) && steps[j].Action == ActionUpgrade && steps[j].Batch == s.Batch {
				j++
			}
			run := steps[i:j]
			for _, u := range run {
				if u.Note != "" {
					pr("# %s: %s\n", u.Node, u.Note)
				}
			}
			if len(run) == 1 {
				pr("%s\n", run[0].Command)
			} else {
				pr("pids=()\n")
				for _, u := range run {
					pr("%s &\npids+=($!)\n", u.Command)
				}
				pr("for pid in \"${pids[@]}\"; do wait \"$pid\"; done\n")
			}
			i = j
		}
	}
	return bw.Flush()
}

func clusterSuffix(c string) string {
	if c == "" {
		return ""
	}
	return " for cluster " + c
}

func lastTalos(p *Plan) string {
	if len(p.Hops) > 0 {
		return p.Hops[len(p.Hops)-1].Talos
	}
	if len(p.To.Talos) > 0 {
		return p.To.Talos[0]
	}
	return "of the target release"
}

var shellSafe = regexp.MustCompile(`^[A-Za-z0-9@%+=:,./_-]+$`)

// ShellQuote quotes s for a POSIX shell when it needs quoting.
func ShellQuote(s string) string {
	if shellSafe.MatchString(s) {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// tuppr (home-operations/tuppr) resources, API group tuppr.home-operations.com/v1alpha1,
// as its CRDs define them: TalosUpgrade{spec.talos.version, nodeSelector, parallelism,
// drain.enabled, healthChecks[]} and KubernetesUpgrade{spec.kubernetes.version,
// healthChecks[]}. Both are cluster-scoped. Versions carry the "v" prefix.
const tupprAPIVersion = "tuppr.home-operations.com/v1alpha1"

type tupprObject struct {
	APIVersion string    `yaml:"apiVersion"`
	Kind       string    `yaml:"kind"`
	Metadata   tupprMeta `yaml:"metadata"`
	Spec       any       `yaml:"spec"`
}

type tupprMeta struct {
	Name   string            `yaml:"name"`
	Labels map[string]string `yaml:"labels,omitempty"`
}

type talosUpgradeSpec struct {
	Talos        tupprVersion      `yaml:"talos"`
	NodeSelector *labelSelector    `yaml:"nodeSelector,omitempty"`
	Parallelism  int               `yaml:"parallelism,omitempty"`
	Drain        *tupprDrain       `yaml:"drain,omitempty"`
	HealthChecks []tupprHealthSpec `yaml:"healthChecks,omitempty"`
}

type kubernetesUpgradeSpec struct {
	Kubernetes   tupprVersion      `yaml:"kubernetes"`
	HealthChecks []tupprHealthSpec `yaml:"healthChecks,omitempty"`
}

type tupprVersion struct {
	Version string `yaml:"version"`
}

type tupprDrain struct {
	Enabled bool `yaml:"enabled"`
}

type tupprHealthSpec struct {
	APIVersion  string `yaml:"apiVersion"`
	Kind        string `yaml:"kind"`
	Expr        string `yaml:"expr"`
	Timeout     string `yaml:"timeout,omitempty"`
	Description string `yaml:"description,omitempty"`
}

type labelSelector struct {
	MatchExpressions []labelRequirement `yaml:"matchExpressions"`
}

type labelRequirement struct {
	Key      string   `yaml:"key"`
	Operator string   `yaml:"operator"`
	Values   []string `yaml:"values"`
}

// WriteTuppr renders the plan as tuppr manifests for in-cluster execution: per hop,
// a KubernetesUpgrade per Kubernetes step and a TalosUpgrade per node group (control
// plane one at a time, GPU workers drained, other workers in batches), each selecting
// its nodes by name. Resource names are stable across hops: each stage updates the same
// resources, so a finished hop's resource never pulls nodes back to its release.
// Apply the documents stage by stage, waiting for each to reach phase Completed.
func WriteTuppr(w io.Writer, p *Plan, healthTimeout string) error {
	if healthTimeout == "" {
		healthTimeout = "10m"
	}
	bw := bufio.NewWriter(w)
	pr := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	prefix := p.Cluster
	if prefix == "" {
		prefix = "imgpipe"
	}
	labels := map[string]string{"app.kubernetes.io/managed-by": "imgpipe"}
	health := []tupprHealthSpec{{
		APIVersion: "v1", Kind: "Node", Timeout: healthTimeout,
		Expr:        `status.conditions.filter(c, c.type == "Ready").all(c, c.status == "True")`,
		Description: "every node Ready",
	}}
	pr("# imgpipe upgrade plan (%s path)%s as tuppr manifests (%s).\n", p.Path, clusterSuffix(p.Cluster), tupprAPIVersion)
	pr("# Apply one stage at a time, in order, and wait until the resource's phase is Completed\n")
	pr("# (kubectl get talosupgrades,kubernetesupgrades) before the next: tuppr does not chain hops.\n")
	pr("# Nodes are selected by kubernetes.io/hostname, which must equal the inventory's node names.\n")
	for _, n := range p.Notes {
		pr("# note: %s\n", n)
	}
	stage := 0
	doc := func(comment string, obj tupprObject) error {
		stage++
		pr("---\n# stage %d: %s\n", stage, comment)
		enc := yaml.NewEncoder(bw)
		enc.SetIndent(2)
		if err := enc.Encode(obj); err != nil {
			return fmt.Errorf("encoding tuppr %s: %w", obj.Kind, err)
		}
		return enc.Close()
	}
	k8s := func(h Hop, v string) error {
		return doc(fmt.Sprintf("hop %d: Kubernetes %s", h.Index, v), tupprObject{
			APIVersion: tupprAPIVersion, Kind: "KubernetesUpgrade",
			Metadata: tupprMeta{Name: prefix + "-kubernetes", Labels: labels},
			Spec:     kubernetesUpgradeSpec{Kubernetes: tupprVersion{Version: "v" + v}, HealthChecks: health},
		})
	}
	lastURL := map[string]string{} // profile -> factory-url of its installer in the previous hop
	for _, h := range p.Hops {
		pre, post := splitK8s(h)
		for _, v := range pre {
			if err := k8s(h, v); err != nil {
				return err
			}
		}
		groups := tupprGroups(h)
		for _, g := range groups {
			var annotate []string
			for _, s := range h.Steps {
				if s.Action != ActionUpgrade || !g.has(s.Node) {
					continue
				}
				url, id, ok := factoryURL(s.Image)
				if !ok {
					continue
				}
				// tuppr swaps only the version of a node's install image, so a new
				// schematic, or a new installer repository (installer/ became
				// <platform>-installer/ in v1.10; installer/ still means metal), needs
				// its per-node override.
				prev, known := lastURL[s.Profile]
				if s.SchematicFrom != "" || profileSchematicChanges(h, s.Profile) || (known && prev != url) {
					annotate = append(annotate, fmt.Sprintf("kubectl annotate node %s --overwrite tuppr.home-operations.com/factory-url=%s tuppr.home-operations.com/schematic=%s", s.Node, url, id))
				}
			}
			comment := fmt.Sprintf("hop %d: Talos %s, %s (%s)", h.Index, h.Talos, g.name, strings.Join(g.nodes, ", "))
			if len(annotate) > 0 {
				comment += "\n# The schematic or installer repository changes in this hop: tuppr keeps a node's\n# running install image unless annotated, so first run:\n#   " + strings.Join(annotate, "\n#   ")
			}
			spec := talosUpgradeSpec{
				Talos:        tupprVersion{Version: h.Talos},
				NodeSelector: &labelSelector{MatchExpressions: []labelRequirement{{Key: "kubernetes.io/hostname", Operator: "In", Values: g.nodes}}},
				Parallelism:  min(g.parallel, len(g.nodes)),
				HealthChecks: health,
			}
			if g.drain {
				spec.Drain = &tupprDrain{Enabled: true}
			}
			if err := doc(comment, tupprObject{
				APIVersion: tupprAPIVersion, Kind: "TalosUpgrade",
				Metadata: tupprMeta{Name: prefix + "-" + g.name, Labels: labels},
				Spec:     spec,
			}); err != nil {
				return err
			}
		}
		for _, hp := range h.Profiles {
			if url, _, ok := factoryURL(hp.Installer); ok {
				lastURL[hp.Name] = url
			}
		}
		for _, v := range post {
			if err := k8s(h, v); err != nil {
				return err
			}
		}
	}
	return bw.Flush()
}

// profileSchematicChanges reports whether a profile's schematic changes in the hop.
func profileSchematicChanges(h Hop, profile string) bool {
	for _, hp := range h.Profiles {
		if hp.Name == profile {
			return hp.SchematicFrom != ""
		}
	}
	return false
}

// factoryURL splits a factory installer ref into tuppr's factory-url and schematic:
// factory.talos.dev/metal-installer/<id>:v1.10.9 -> factory.talos.dev/metal-installer, <id>.
func factoryURL(image string) (url, id string, ok bool) {
	i := strings.LastIndex(image, "/")
	if i < 0 {
		return "", "", false
	}
	id, _, _ = strings.Cut(image[i+1:], ":")
	return image[:i], id, id != ""
}

// splitK8s separates a hop's Kubernetes steps into those before its Talos rollout and
// those after it, by where they appear among the steps.
func splitK8s(h Hop) (pre, post []string) {
	talosSeen := false
	for _, s := range h.Steps {
		switch s.Action {
		case ActionUpgrade:
			talosSeen = true
		case ActionUpgradeK8s:
			v := s.Command[strings.LastIndex(s.Command, " ")+1:]
			if talosSeen {
				post = append(post, v)
			} else {
				pre = append(pre, v)
			}
		}
	}
	return pre, post
}

type tupprGroup struct {
	name     string
	nodes    []string
	parallel int
	drain    bool
}

func (g tupprGroup) has(n string) bool {
	for _, x := range g.nodes {
		if x == n {
			return true
		}
	}
	return false
}

// tupprGroups splits a hop's upgraded nodes into control plane (one at a time), GPU
// workers (drained; batch size as planned) and other workers.
func tupprGroups(h Hop) []tupprGroup {
	cp := tupprGroup{name: "controlplane", parallel: 1}
	gpu := tupprGroup{name: "gpu", drain: true}
	workers := tupprGroup{name: "workers"}
	drained := map[string]bool{}
	batchSize := map[int]int{}
	for _, s := range h.Steps {
		if s.Action == ActionDrain {
			drained[s.Node] = true
		}
		if s.Action == ActionUpgrade {
			batchSize[s.Batch]++
		}
	}
	seen := map[string]bool{}
	for _, s := range h.Steps {
		if s.Action != ActionUpgrade || seen[s.Node] {
			continue
		}
		seen[s.Node] = true
		g := &workers
		switch {
		case s.Role == RoleControlPlane:
			g = &cp
		case drained[s.Node]:
			g = &gpu
		}
		g.nodes = append(g.nodes, s.Node)
		if g != &cp {
			g.parallel = max(g.parallel, batchSize[s.Batch])
		}
	}
	var out []tupprGroup
	for _, g := range []tupprGroup{cp, gpu, workers} {
		if len(g.nodes) > 0 {
			g.parallel = max(g.parallel, 1)
			out = append(out, g)
		}
	}
	return out
}
