package upgrade

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// tuppr (home-operations/tuppr), API group tuppr.home-operations.com/v1alpha1, both
// kinds cluster-scoped. What the renderer relies on, from tuppr's controller:
//   - A TalosUpgrade upgrades each selected node whose running version differs from
//     spec.talos.version (nodeNeedsUpgrade compares versions only, both ways: a node
//     past it is taken back). So a finished stage's resource must not stay behind
//     with an older version: every stage of a group reuses one resource name.
//   - The install image is <factory-url>/<schematic>:<version> when the node carries
//     the annotation tuppr.home-operations.com/factory-url (schematic from the
//     .../schematic annotation, else the running one); otherwise the running image's
//     repository with the new tag, which drops a platform change such as installer/
//     -> nocloud-installer/ in v1.10. So every Talos stage annotates its nodes with the
//     installer the script uses.
//   - spec.drain is deprecated ("use Talos policy drain configuration"): Talos drains
//     the node itself unless spec.policy.nodrain is set, so no drain field is written.
//   - A KubernetesUpgrade is done when every kubelet reports spec.kubernetes.version,
//     so a catch-up to the control plane's own version does act on lagging kubelets.
const (
	tupprAPIVersion  = "tuppr.home-operations.com/v1alpha1"
	tupprFactoryURL  = "tuppr.home-operations.com/factory-url"
	tupprSchematic   = "tuppr.home-operations.com/schematic"
	tupprManagedBy   = "app.kubernetes.io/managed-by"
	tupprReadyExpr   = `status.conditions.filter(c, c.type == "Ready").all(c, c.status == "True")`
	tupprReadmeIntro = "Apply these files one at a time, in order, and wait until each resource's\nphase is Completed before the next. Never `kubectl apply -f` the directory: a single\napply of every stage would skip hops (each stage updates the same resources).\n"
)

// ErrTupprReimage refuses a tuppr rendering of a plan that re-images nodes at the
// release they run: tuppr compares versions only and would silently do nothing.
var ErrTupprReimage = errors.New("tuppr cannot re-image a node at the release it runs")

// TupprFile is one file of `-o tuppr --out-dir`.
type TupprFile struct {
	Name string
	Data []byte
}

// tupprStage is one unit to apply and wait for.
type tupprStage struct {
	file     string // 01-hop1-kubernetes-1.31.4.yaml
	kind     string // TalosUpgrade | KubernetesUpgrade
	resource string
	hop      Hop
	version  string // Talos (v-prefixed) or Kubernetes (without v) version
	group    string
	steps    []*Step // the group's upgrade steps (into the plan)
	parallel int
	note     string
}

// tupprStages lists the plan's stages in order: per hop, Kubernetes steps before its
// rollout, then the control plane, GPU workers and other workers, then the
// Kubernetes steps after it.
func tupprStages(p *Plan) ([]tupprStage, error) {
	prefix := p.Cluster
	if prefix == "" {
		prefix = "imgpipe"
	}
	var out []tupprStage
	var reimage []string
	k8s := func(h Hop, s Step) {
		out = append(out, tupprStage{kind: "KubernetesUpgrade", resource: prefix + "-kubernetes", hop: h, version: s.Kubernetes, note: s.Note})
	}
	for _, h := range p.Hops {
		talosSeen := false
		for _, s := range h.Steps {
			switch {
			case s.Action == ActionUpgradeK8s && !talosSeen:
				k8s(h, s)
			case s.Action == ActionUpgrade && !talosSeen:
				talosSeen = true
				groups, re := tupprGroups(h)
				reimage = append(reimage, re...)
				for _, g := range groups {
					g.resource = prefix + "-talos-" + g.group
					out = append(out, g)
				}
			case s.Action == ActionUpgradeK8s:
				k8s(h, s)
			}
		}
	}
	if len(reimage) > 0 {
		return nil, fail.Policy(fmt.Errorf("%w (tuppr upgrades a node only when its version differs from the target): %d node(s) would be skipped silently: %s; use -o script for this plan, or re-image them first with talosctl upgrade --image",
			ErrTupprReimage, len(reimage), firstN(reimage, 5)))
	}
	for i := range out {
		st := &out[i]
		if st.kind == "KubernetesUpgrade" {
			st.file = fmt.Sprintf("%02d-hop%d-kubernetes-%s.yaml", i+1, st.hop.Index, st.version)
		} else {
			st.file = fmt.Sprintf("%02d-hop%d-talos-%s-%s.yaml", i+1, st.hop.Index, st.version, st.group)
		}
	}
	return out, nil
}

// tupprGroups splits a hop's upgrades into control plane (one at a time), GPU
// workers and other workers (batch size as planned); it also returns re-image nodes.
func tupprGroups(h Hop) ([]tupprStage, []string) {
	groups := []tupprStage{{group: "controlplane"}, {group: "gpu"}, {group: "workers"}}
	batch := map[int]int{}
	var reimage []string
	for i := range h.Steps {
		s := &h.Steps[i]
		if s.Action != ActionUpgrade {
			continue
		}
		if s.Reimage {
			reimage = append(reimage, fmt.Sprintf("%s (%s, schematic %s -> %s)", s.Node, s.Talos, short(s.SchematicFrom), short(s.Schematic)))
		}
		batch[s.Batch]++
		g := &groups[2]
		switch {
		case s.Role == RoleControlPlane:
			g = &groups[0]
		case s.GPU:
			g = &groups[1]
		}
		g.steps = append(g.steps, s)
	}
	var out []tupprStage
	for _, g := range groups {
		if len(g.steps) == 0 {
			continue
		}
		g.kind, g.hop, g.version, g.parallel = "TalosUpgrade", h, h.Talos, 1
		if g.group != "controlplane" {
			for _, s := range g.steps {
				g.parallel = max(g.parallel, batch[s.Batch])
			}
		}
		g.parallel = min(g.parallel, len(g.steps)) // tuppr's webhook rejects more than the selected nodes
		out = append(out, g)
	}
	return out, reimage
}

// WriteTuppr writes the next stage to apply (the first: a plan starts from what runs
// now), with a comment naming the stages that follow: no single apply can skip a hop.
// Re-plan after each stage completes, or use --out-dir for every stage.
func WriteTuppr(w io.Writer, p *Plan) error {
	stages, err := tupprStages(p)
	if err != nil {
		return err
	}
	bw := bufio.NewWriter(w)
	fmt.Fprintf(bw, "# imgpipe upgrade plan (%s path)%s as tuppr manifests (%s).\n", p.Path, clusterSuffix(p.Cluster), tupprAPIVersion)
	if len(stages) == 0 {
		fmt.Fprintf(bw, "# Nothing to do: every node runs the target.\n")
		return bw.Flush()
	}
	fmt.Fprintf(bw, "# This is stage 1 of %d only. Apply it, wait until its phase is Completed, then\n", len(stages))
	fmt.Fprintf(bw, "# re-run imgpipe upgrade-plan for the next (or use --out-dir DIR for every stage).\n")
	if len(stages) > 1 {
		fmt.Fprintf(bw, "# Stages that follow, in order:\n")
		for _, st := range stages[1:] {
			fmt.Fprintf(bw, "#   %s\n", stageTitle(st))
		}
	}
	for _, n := range p.Notes {
		fmt.Fprintf(bw, "# note: %s\n", oneLine(n))
	}
	if err := writeStage(bw, p, stages[0], 1, len(stages)); err != nil {
		return err
	}
	return bw.Flush()
}

// TupprFiles renders every stage as its own file, named in order, with a README.md
// that lists the order and the apply-and-wait commands.
func TupprFiles(p *Plan) ([]TupprFile, error) {
	stages, err := tupprStages(p)
	if err != nil {
		return nil, err
	}
	var readme bytes.Buffer
	fmt.Fprintf(&readme, "# tuppr stages for imgpipe upgrade plan (%s path)%s\n\n", p.Path, clusterSuffix(p.Cluster))
	readme.WriteString(tupprReadmeIntro + "\n")
	for _, n := range p.Notes {
		fmt.Fprintf(&readme, "Note: %s\n\n", oneLine(n))
	}
	files := make([]TupprFile, 0, len(stages)+1)
	for i, st := range stages {
		var buf bytes.Buffer
		bw := bufio.NewWriter(&buf)
		if err := writeStage(bw, p, st, i+1, len(stages)); err != nil {
			return nil, err
		}
		if err := bw.Flush(); err != nil {
			return nil, err
		}
		files = append(files, TupprFile{Name: st.file, Data: buf.Bytes()})
		// A stage updates the resource the previous stage of its group completed:
		// wait until tuppr has seen the new spec (it resets the phase then), or the
		// old Completed phase would pass the wait at once.
		obj := strings.ToLower(st.kind) + "/" + st.resource
		fmt.Fprintf(&readme, "%d. %s\n\n       kubectl apply -f %s\n       gen=$(kubectl get %s -o jsonpath='{.metadata.generation}')\n"+
			"       kubectl wait %s --for=jsonpath='{.status.observedGeneration}'=\"$gen\" --timeout=10m\n"+
			"       kubectl wait %s --for=jsonpath='{.status.phase}'=Completed --timeout=-1s\n\n",
			i+1, stageTitle(st), st.file, obj, obj, obj)
	}
	if len(stages) == 0 {
		readme.WriteString("Nothing to do: every node runs the target.\n")
	}
	return append(files, TupprFile{Name: "README.md", Data: readme.Bytes()}), nil
}

func stageTitle(st tupprStage) string {
	if st.kind == "KubernetesUpgrade" {
		return fmt.Sprintf("%s: hop %d, Kubernetes %s", st.file, st.hop.Index, st.version)
	}
	return fmt.Sprintf("%s: hop %d, Talos %s, %s (%d node(s))", st.file, st.hop.Index, st.version, st.group, len(st.steps))
}

// writeStage writes one stage's documents. Strings are written double-quoted (a
// JSON string is a YAML scalar), so no value can change the document's structure.
func writeStage(bw *bufio.Writer, p *Plan, st tupprStage, n, total int) error {
	pr := func(format string, args ...any) { fmt.Fprintf(bw, format, args...) }
	pr("---\n# stage %d/%d: %s\n", n, total, stageTitle(st))
	if st.note != "" {
		pr("# %s\n", oneLine(st.note))
	}
	if st.kind == "KubernetesUpgrade" {
		pr("apiVersion: %s\nkind: KubernetesUpgrade\nmetadata:\n  name: %s\n  labels:\n    %s: imgpipe\n", tupprAPIVersion, yq(st.resource), tupprManagedBy)
		pr("spec:\n  kubernetes:\n    version: %s\n", yq("v"+st.version))
		writeHealth(pr, p.HealthTimeout)
		return nil
	}
	for _, s := range st.steps {
		if s.Preserve {
			pr("# WARNING: these nodes run Talos < v1.8 and tuppr passes no --preserve: this upgrade wipes\n")
			pr("# their EPHEMERAL partition (local volumes, pulled images). The script preserves it.\n")
			break
		}
	}
	// The installer of every node, as the script installs it: tuppr reads these
	// annotations when it builds each node's upgrade image.
	pr("# Each node carries the installer this hop installs (tuppr builds <factory-url>/<schematic>:<version>).\n")
	annotations := map[string]string{} // installer -> its annotation lines, built once
	for _, s := range st.steps {
		ann, ok := annotations[s.Image]
		if !ok {
			base, id, err := splitInstaller(s.Image, s.Talos)
			if err != nil {
				return fmt.Errorf("hop %d node %s: %w", st.hop.Index, s.Node, err)
			}
			ann = "  annotations:\n    " + tupprFactoryURL + ": " + yq(base) + "\n    " + tupprSchematic + ": " + yq(id) + "\n---\n"
			annotations[s.Image] = ann
		}
		bw.WriteString("apiVersion: v1\nkind: Node\nmetadata:\n  name: ")
		bw.WriteString(yq(s.Node))
		bw.WriteByte('\n')
		bw.WriteString(ann)
	}
	pr("apiVersion: %s\nkind: TalosUpgrade\nmetadata:\n  name: %s\n  labels:\n    %s: imgpipe\n", tupprAPIVersion, yq(st.resource), tupprManagedBy)
	pr("spec:\n  talos:\n    version: %s\n  parallelism: %d\n", yq(st.version), st.parallel)
	pr("  nodeSelector:\n    matchExpressions:\n      - key: kubernetes.io/hostname\n        operator: In\n        values:\n")
	for _, s := range st.steps {
		bw.WriteString("          - ")
		bw.WriteString(yq(s.Node))
		bw.WriteByte('\n')
	}
	writeHealth(pr, p.HealthTimeout)
	return nil
}

func writeHealth(pr func(string, ...any), timeout string) {
	pr("  healthChecks:\n    - apiVersion: v1\n      kind: Node\n      expr: %s\n      timeout: %s\n      description: %s\n",
		yq(tupprReadyExpr), yq(timeout), yq("every node Ready"))
}

// splitInstaller splits <base>/<schematic>:<version> into tuppr's factory-url and
// schematic, checking the tag is the hop's version: else tuppr would build another image.
func splitInstaller(image, version string) (base, id string, err error) {
	i := strings.LastIndex(image, "/")
	if i < 0 {
		return "", "", fmt.Errorf("installer %q has no <repository>/<schematic> form tuppr can rebuild", image)
	}
	id, tag, _ := strings.Cut(image[i+1:], ":")
	if !schematicRE.MatchString(id) || tag != version {
		return "", "", fmt.Errorf("installer %q is not <factory-url>/<schematic>:%s, which is all tuppr can install", image, version)
	}
	return image[:i], id, nil
}

// yq quotes s as a YAML double-quoted scalar (Go's quoting is a subset of YAML's escapes).
func yq(s string) string { return strconv.Quote(s) }

func firstN(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
