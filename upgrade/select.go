package upgrade

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/textdist"
	"github.com/imgpipe/imgpipe/site"
)

// ErrClusterKubernetes refuses a plan limited to some profiles (Options.Profiles) whose
// path needs a Kubernetes upgrade: Kubernetes upgrades are cluster-wide, so they
// belong in a plan of the whole cluster. It comes wrapped with fail.ErrPolicy.
var ErrClusterKubernetes = errors.New("the path needs a cluster-wide Kubernetes upgrade")

// CheckProfiles checks an upgrade-plan --profile list against the site's profiles
// (known): an empty or unknown name is a usage error that lists the known profiles
// and suggests the nearest one. It wraps site.ErrUnknownProfile for unknown names.
func CheckProfiles(known, names []string) error {
	if len(names) == 0 {
		return nil
	}
	var errs []error
	for _, n := range names {
		switch {
		case strings.TrimSpace(n) == "":
			errs = append(errs, errors.New("--profile: empty profile name (give names like --profile gpu,worker)"))
		case !slices.Contains(known, n):
			hint := ""
			if near := nearestProfile(known, n); near != "" {
				hint = fmt.Sprintf(" (did you mean %s?)", near)
			}
			errs = append(errs, fmt.Errorf("--profile: %w %q: the site declares %s%s", site.ErrUnknownProfile, n, strings.Join(known, ", "), hint))
		}
	}
	if len(errs) == 0 {
		return nil
	}
	return fail.Usage(errors.Join(errs...))
}

// nearestProfile is the known name closest to name (case-insensitive edit distance at
// most 2, or a prefix either way), "" when none is close.
func nearestProfile(known []string, name string) string {
	best, bestD := "", 3
	ln := strings.ToLower(name)
	for _, k := range known {
		lk := strings.ToLower(k)
		d := textdist.Levenshtein(ln, lk)
		if strings.HasPrefix(lk, ln) || strings.HasPrefix(ln, lk) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = k, d
		}
	}
	return best
}

// selected reports whether a node takes part in the plan: every node without
// Options.Profiles, else the nodes of those profiles (never a node whose profile is
// unknown: its Profile is empty).
func (p *planner) selected(n *Node) bool {
	return len(p.opts.Profiles) == 0 || n.Profile != "" && slices.Contains(p.opts.Profiles, n.Profile)
}

// narrow keeps the selected nodes once all are loaded. The control plane the health
// gates run against, and the cluster's Kubernetes, come from the whole inventory: a
// plan of the GPU workers still gates on the control plane. The Kubernetes version is
// pinned, since no step of such a plan changes it.
func (p *planner) narrow() error {
	if len(p.opts.Profiles) == 0 {
		return nil
	}
	ck := p.clusterK()
	var keep []*node
	for _, n := range p.nodes {
		if p.selected(n.Node) {
			keep = append(keep, n)
		}
	}
	if len(keep) == 0 {
		return fail.Usage(fmt.Errorf("%s: no node has profile %s: nothing to plan (node profiles: %s)",
			p.opts.InventoryFile, strings.Join(p.opts.Profiles, ", "), strings.Join(inventoryProfiles(p.inv), ", ")))
	}
	if len(keep) < len(p.inv.Nodes) {
		p.notef("--profile %s: planning %d of the inventory's %d nodes; Kubernetes stays at %s (it is upgraded cluster-wide, by a plan without --profile)",
			strings.Join(p.opts.Profiles, ","), len(keep), len(p.inv.Nodes), ck)
	}
	p.fixedK = ck
	p.nodes = keep
	return nil
}

// inventoryProfiles lists the distinct profiles of the inventory's nodes, sorted
// ("(unknown)" for nodes whose profile could not be matched).
func inventoryProfiles(inv *Inventory) []string {
	var out []string
	for i := range inv.Nodes {
		name := inv.Nodes[i].Profile
		if name == "" {
			name = "(unknown)"
		}
		if !slices.Contains(out, name) {
			out = append(out, name)
		}
	}
	slices.Sort(out)
	return out
}

// keepKubernetes is the Kubernetes target of a plan limited to some profiles: the
// cluster's own version, which the target release must support.
func (p *planner) keepKubernetes(target string) (*semver.Version, error) {
	ck := p.clusterK()
	if err := p.k8sSupported(target, ck); err != nil {
		return nil, p.needsKubernetes(target, ck)
	}
	return ck, nil
}

// needsKubernetes is the refusal of a plan limited to some profiles when Talos rel
// cannot run Kubernetes k: too new is ErrKubernetesTooNew (no plan fixes that), too
// old needs a cluster-wide Kubernetes upgrade first.
func (p *planner) needsKubernetes(rel string, k *semver.Version) error {
	rng := compat.SupportedKubernetes(rel)
	if k.Minor() > minorOf(rng.MaxMinor) {
		return fail.Policy(fmt.Errorf("%w: the cluster runs Kubernetes %s, Talos %s supports %s to %s, and Kubernetes cannot be downgraded",
			ErrKubernetesTooNew, k, rel, rng.MinMinor, rng.MaxMinor))
	}
	return fail.Policy(fmt.Errorf("%w: Talos %s supports Kubernetes %s to %s and the cluster runs %s: plan without --profile first (that plan upgrades Kubernetes), then plan the profiles %s",
		ErrClusterKubernetes, rel, rng.MinMinor, rng.MaxMinor, k, strings.Join(p.opts.Profiles, ", ")))
}

// lagRefusal refuses a hop of a plan limited to some profiles whose nodes run a
// Kubernetes older than the hop's Talos supports: catching up is a cluster-wide step.
func (p *planner) lagRefusal(label, minK string, part []*node, minMinor uint64) error {
	var lag []*node
	for _, n := range part {
		if n.k8s.Minor() < minMinor {
			lag = append(lag, n)
		}
	}
	return fmt.Errorf("%w: %s needs Kubernetes %s or newer and %s: plan without --profile first (that plan upgrades Kubernetes), then plan the profiles %s",
		ErrClusterKubernetes, label, minK, nodeVersions(lag, 5), strings.Join(p.opts.Profiles, ", "))
}

// noteKubeletSkew notes selected nodes whose kubelet is behind the cluster's
// Kubernetes k: a plan without --profile would align them with upgrade-k8s.
func (p *planner) noteKubeletSkew(k *semver.Version) {
	var behind []*node
	for _, n := range p.nodes {
		if !n.k8s.Equal(k) {
			behind = append(behind, n)
		}
	}
	if len(behind) > 0 {
		p.notef("%s differ from the control plane's Kubernetes %s; --profile plans no Kubernetes step: a plan without --profile aligns them",
			nodeVersions(behind, 5), k)
	}
}
