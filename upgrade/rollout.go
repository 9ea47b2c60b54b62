package upgrade

import (
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/site"
)

// rollout lays out one hop's steps; each method decides one kind of step.
type rollout struct {
	p        *planner
	hop      *Hop
	rel      *compat.Release
	lock     *site.Lock
	health   Step // the gate after every batch and Kubernetes step
	profiles []string
	pinned   map[string]bool
	single   bool
	batch    int
}

// steps lays out a hop's rollout: lock, pre-seed and pre-warm, Kubernetes steps the
// hop needs, control-plane nodes one at a time, GPU workers (drained) then the other
// workers in batches, Kubernetes steps to the target; a health gate after each.
func (p *planner) steps(hop *Hop, rel *compat.Release, lock *site.Lock, part []*node, pre, post []*semver.Version) {
	r := &rollout{p: p, hop: hop, rel: rel, lock: lock, profiles: profilesOf(part), pinned: map[string]bool{},
		single: len(p.inv.Nodes) == 1, // the cluster, not the nodes of a --profile plan
		health: Step{Node: p.cp.Name, Address: p.cp.Address, Action: ActionHealth,
			Command: fmt.Sprintf("talosctl health --nodes %s --wait-timeout %s", q(p.cp.Address), q(FormatDuration(p.opts.HealthTimeout)))}}
	file := r.pins(pre, post)
	r.prewarm(part, file)
	for _, k := range pre {
		r.k8s(k)
	}
	if r.single {
		hop.Notes = append(hop.Notes, "single-node cluster: workloads are down while the node reboots; nothing to drain to")
	}
	var cps, gpus, workers []*node
	for _, n := range part {
		switch {
		case n.Role == RoleControlPlane:
			cps = append(cps, n)
		case n.gpu:
			gpus = append(gpus, n)
		default:
			workers = append(workers, n)
		}
	}
	// Control-plane nodes one at a time (etcd quorum); a GPU control-plane node is
	// drained on its own.
	for _, n := range cps {
		r.group([]*node{n}, 1)
	}
	r.group(gpus, p.opts.Parallel)
	r.group(workers, p.opts.Parallel)
	for _, k := range post {
		r.k8s(k)
	}
}

func (r *rollout) add(s Step) { r.hop.Steps = append(r.hop.Steps, s) }

// pins pins each image set the hop needs in a lockfile (`imgpipe resolve --lock`) and
// mirrors it, before any node moves; it returns the hop's own lockfile.
func (r *rollout) pins(pre, post []*semver.Version) string {
	if len(pre) > 0 {
		prev := r.p.nodes[0].talos // the release the cluster runs while the steps before the hop run
		for _, n := range r.p.nodes {
			if n.talos.LessThan(prev) {
				prev = n.talos
			}
		}
		for _, k := range pre {
			r.pin("v"+prev.String(), k.String(), fmt.Sprintf("Kubernetes %s, needed before Talos %s", k, r.rel.Version))
		}
	}
	file := r.pin(r.rel.Version, r.hop.Kubernetes, fmt.Sprintf("Talos %s as every profile of the hop resolves for it", r.rel.Version))
	for _, k := range post {
		r.pin(r.rel.Version, k.String(), fmt.Sprintf("Kubernetes %s, after Talos %s", k, r.rel.Version))
	}
	return file
}

func (r *rollout) pin(talos, k, why string) string {
	file := fmt.Sprintf("upgrade-%s.lock.json", talos)
	if k != r.hop.Kubernetes || talos != r.rel.Version {
		file = fmt.Sprintf("upgrade-%s-k8s-%s.lock.json", talos, k)
	}
	if r.pinned[file] {
		return file
	}
	r.pinned[file] = true
	im := r.p.opts.Imgpipe
	cmd := fmt.Sprintf("%s resolve --talos %s --kubernetes %s", im, q(talos), q(k))
	if len(r.profiles) > 0 {
		cmd += " --profile " + q(strings.Join(r.profiles, ","))
	}
	r.add(Step{Action: ActionLock, Command: cmd + " --lock " + q(file), Note: why})
	r.add(Step{Action: ActionPreseed, Command: fmt.Sprintf("%s mirror --lock %s", im, q(file)),
		Note: fmt.Sprintf("images of Talos %s with Kubernetes %s into the site mirrors", talos, k)})
	return file
}

// prewarm has the factory build each installer of the hop before a node pulls it.
func (r *rollout) prewarm(part []*node, file string) {
	seen := map[string]bool{}
	for _, n := range part {
		prof, ok := r.lock.Profile(n.Profile)
		if !ok || seen[prof.Installer] {
			continue
		}
		seen[prof.Installer] = true
		r.add(Step{Profile: n.Profile, Action: ActionPrewarm, Image: prof.Installer,
			Command: fmt.Sprintf("%s schematic prewarm --lock %s --profile %s", r.p.opts.Imgpipe, q(file), q(n.Profile)),
			Note:    "the factory builds an installer on its first pull; build it before the first node needs it"})
	}
}

func (r *rollout) k8s(k *semver.Version) {
	cp := r.p.cp
	r.add(Step{Node: cp.Name, Address: cp.Address, Action: ActionUpgradeK8s, Kubernetes: k.String(),
		Command: fmt.Sprintf("talosctl upgrade-k8s --nodes %s --to %s", q(cp.Address), q(k.String())), Note: r.p.catchUp[k.String()]})
	r.add(r.health)
}

// group upgrades nodes in batches of size: GPU batches drained first and uncordoned
// after the health gate.
func (r *rollout) group(nodes []*node, size int) {
	for len(nodes) > 0 {
		b := nodes[:min(size, len(nodes))]
		nodes = nodes[len(b):]
		r.batch++
		drained := !r.single && b[0].gpu
		if drained {
			for _, n := range b {
				r.add(r.nodeStep(n, ActionDrain, fmt.Sprintf("kubectl drain %s --ignore-daemonsets --delete-emptydir-data --timeout %s",
					q(n.Name), q(FormatDuration(r.p.opts.HealthTimeout))), "GPU node: move GPU workloads off before the driver extensions change"))
			}
		}
		for _, n := range b {
			r.upgrade(n)
		}
		h := r.health
		h.Batch = r.batch
		r.add(h)
		if drained {
			for _, n := range b {
				r.add(r.nodeStep(n, ActionUncordon, "kubectl uncordon "+q(n.Name), ""))
			}
		}
	}
}

func (r *rollout) nodeStep(n *node, action, cmd, note string) Step {
	return Step{Node: n.Name, Address: n.Address, Role: n.Role, Profile: n.Profile, Action: action, Batch: r.batch, GPU: true,
		Command: cmd, Note: note}
}

func (r *rollout) upgrade(n *node) {
	prof, _ := r.lock.Profile(n.Profile)
	cmd := fmt.Sprintf("talosctl upgrade --nodes %s --image %s", q(n.Address), q(prof.Installer))
	var notes []string
	preserve := n.talos.LessThan(v18)
	if preserve {
		// Before v1.8 an upgrade wipes EPHEMERAL unless told not to: that loses
		// local volumes and the images just pre-warmed.
		cmd += " --preserve"
		notes = append(notes, "--preserve: before Talos v1.8 an upgrade wipes EPHEMERAL otherwise")
	}
	from := ""
	reimage := false
	switch {
	case n.talos.Equal(r.rel.Semver()):
		from, reimage = n.schematic, true
		notes = append(notes, fmt.Sprintf("re-image: runs %s already but schematic %s, not the profile's %s", r.rel.Version, short(n.schematic), short(prof.Schematic.ID)))
	case n.schematic != "" && n.schematic != prof.Schematic.ID:
		from = n.schematic
		notes = append(notes, fmt.Sprintf("schematic %s -> %s", short(n.schematic), short(prof.Schematic.ID)))
	}
	r.add(Step{Node: n.Name, Address: n.Address, Role: n.Role, Profile: n.Profile, Action: ActionUpgrade,
		Image: prof.Installer, Command: cmd, Batch: r.batch, Schematic: prof.Schematic.ID, SchematicFrom: from,
		Talos: r.rel.Version, Preserve: preserve, GPU: n.gpu && !r.single, Reimage: reimage,
		Note: strings.Join(notes, "; ")})
}
