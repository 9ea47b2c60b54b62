package check

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/cluster"
	"github.com/imgpipe/imgpipe/site"
)

// Node is what the cluster says about one node.
type Node struct {
	Name    string
	Address string
	// Talos is the running version ("v1.12.0"); "" when unknown.
	Talos string
	// Schematic is the running schematic ID; "" when unknown.
	Schematic string
	// Profile is the node's imgpipe profile when the cluster names one (label
	// imgpipe.dev/profile); "" otherwise, and the running schematic decides.
	Profile string
	// Unreadable says why the node could not be read (Talos API); it is then unchecked.
	Unreadable string
}

// LiveCluster reads the nodes from the Kubernetes API and, with Talos set, their
// running versions from the Talos API.
type LiveCluster struct {
	Kube  *cluster.Kube
	Talos *cluster.Talos
}

// Nodes lists the cluster's nodes. A node the Talos API does not answer for is
// returned Unreadable, not dropped, so the report names it.
func (l LiveCluster) Nodes(ctx context.Context) ([]Node, error) {
	cn, err := l.Kube.Nodes(ctx)
	if err != nil {
		return nil, err
	}
	var terr error
	if l.Talos != nil {
		terr = l.Talos.Enrich(ctx, cn)
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
	}
	out := make([]Node, 0, len(cn))
	for _, n := range cn {
		node := Node{Name: n.Name, Address: n.Address, Talos: n.Talos, Schematic: n.Schematic, Profile: n.ProfileLabel}
		if l.Talos != nil && !n.TalosFromAPI {
			node.Unreadable = "the Talos API did not answer for this node"
			for _, e := range unwrapAll(terr) {
				var ne *cluster.NodeError
				if errors.As(e, &ne) && ne.Node == n.Name {
					node.Unreadable = "Talos API: " + ne.Err.Error()
				}
			}
		}
		out = append(out, node)
	}
	return out, nil
}

// unwrapAll flattens joined and wrapped errors.
func unwrapAll(err error) []error {
	if err == nil {
		return nil
	}
	out := []error{err}
	switch u := err.(type) {
	case interface{ Unwrap() []error }:
		for _, e := range u.Unwrap() {
			out = append(out, unwrapAll(e)...)
		}
	case interface{ Unwrap() error }:
		out = append(out, unwrapAll(u.Unwrap())...)
	}
	return out
}

// NodeReader lists the cluster's nodes (the live inventory).
type NodeReader interface {
	Nodes(ctx context.Context) ([]Node, error)
}

// Cluster compares every node's Talos version and schematic with its lock profile.
func Cluster(r NodeReader, lock *site.Lock) Source {
	return Source{Name: CheckCluster, Run: func(ctx context.Context) ([]Item, []string, error) {
		nodes, err := r.Nodes(ctx)
		if err != nil {
			return nil, nil, err
		}
		items := make([]Item, 0, len(nodes))
		for _, n := range nodes {
			items = append(items, compareNode(lock, n))
		}
		return items, nil, nil
	}}
}

// profileOf finds the node's lock profile: the cluster's label first, else the
// profile whose schematic the node runs.
func profileOf(lock *site.Lock, n Node) (*site.Profile, string) {
	if n.Profile != "" {
		if p, ok := lock.Profile(n.Profile); ok {
			return p, "label imgpipe.dev/profile"
		}
		return nil, fmt.Sprintf("label imgpipe.dev/profile=%s names no profile of the lock", n.Profile)
	}
	if n.Schematic != "" {
		for i := range lock.Profiles {
			if lock.Profiles[i].Schematic.ID == n.Schematic {
				return &lock.Profiles[i], "running schematic"
			}
		}
	}
	return nil, "no imgpipe.dev/profile label and no lock profile has the node's schematic"
}

func compareNode(lock *site.Lock, n Node) Item {
	it := Item{Kind: "node", Name: n.Name, Where: n.Address, Got: strings.TrimSpace(n.Talos + " " + short(n.Schematic))}
	p, how := profileOf(lock, n)
	if p == nil {
		it.Status, it.Detail = Stray, "the lock has no profile for this node: "+how
		return it
	}
	it.Profile = p.Name
	it.Want = lock.Talos + " " + short(p.Schematic.ID)
	target := n.Address
	if target == "" {
		target = n.Name
	}
	fix := fmt.Sprintf("talosctl -n %s upgrade --image %s", target, p.Installer)
	var diffs []string
	switch {
	case n.Unreadable != "":
		it.Status, it.Detail = Unchecked, n.Unreadable
		return it
	case n.Talos == "":
		it.Status, it.Detail = Unchecked, "the node's Talos version is unknown"
		return it
	case n.Talos != lock.Talos:
		diffs = append(diffs, fmt.Sprintf("runs Talos %s, %s", n.Talos, relation(n.Talos, lock.Talos)))
	}
	switch {
	case n.Schematic == "" && len(diffs) == 0:
		it.Status, it.Detail = Unchecked, "the node's schematic is unknown (no extensions.talos.dev/schematic annotation)"
		return it
	case n.Schematic != "" && n.Schematic != p.Schematic.ID:
		diffs = append(diffs, fmt.Sprintf("runs schematic %s, profile %s has %s", short(n.Schematic), p.Name, short(p.Schematic.ID)))
	}
	if len(diffs) == 0 {
		it.Status, it.Detail = OK, "profile from the "+how
		return it
	}
	it.Status, it.Fix = Different, fix
	it.Detail = strings.Join(diffs, "; ") + " (profile from the " + how + ")"
	return it
}

// relation says whether a running version is behind or ahead of the lock's.
func relation(running, want string) string {
	a, err1 := semver.NewVersion(running)
	b, err2 := semver.NewVersion(want)
	switch {
	case err1 != nil || err2 != nil:
		return "the lock says " + want
	case a.LessThan(b):
		return "behind the lock's " + want
	default:
		return "ahead of the lock's " + want
	}
}

func short(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}
