package cluster

import (
	"context"
	"fmt"
	"slices"

	"github.com/imgpipe/imgpipe/upgrade"
)

// Matcher finds the profile a node's running schematic belongs to at its running
// Talos release (role breaks ties); upgrade.SchematicMatcher is one.
type Matcher interface {
	Match(talos, schematic, role string) (profile, why string)
}

// Source says where to read a cluster from.
type Source struct {
	// Kubeconfig is the kubeconfig file (required); Context its context ("" = current).
	Kubeconfig, Context string
	// Talosconfig, when set, adds the Talos API's running version and extensions.
	Talosconfig string
	// Cluster names the cluster in the inventory (optional).
	Cluster string
}

// Read lists the nodes of src (Kubernetes API, then the Talos API when a
// talosconfig is given) and builds the inventory with m. It is what `imgpipe
// inventory` prints and what `upgrade-plan --kubeconfig` plans from.
func Read(ctx context.Context, src Source, m Matcher) (*upgrade.Inventory, []Node, error) {
	cfg, err := LoadKubeconfig(src.Kubeconfig, src.Context)
	if err != nil {
		return nil, nil, err
	}
	nodes, err := NewKube(cfg).Nodes(ctx)
	if err != nil {
		return nil, nil, err
	}
	if src.Talosconfig != "" {
		t, err := NewTalos(ctx, src.Talosconfig)
		if err != nil {
			return nil, nil, err
		}
		defer t.Close()
		if err := t.Enrich(ctx, nodes); err != nil {
			return nil, nil, err
		}
	}
	return Inventory(src.Cluster, nodes, m), nodes, nil
}

// Inventory turns nodes into an upgrade inventory. Each node's profile is the one
// its running schematic matches at its running release, else its imgpipe.dev/profile
// label, else unknown (Profile "", with the reason in Unknown: the plan refuses it).
// m may be nil (no site config): then only the label decides.
func Inventory(name string, nodes []Node, m Matcher) *upgrade.Inventory {
	inv := &upgrade.Inventory{Cluster: name, Nodes: make([]upgrade.Node, 0, len(nodes))}
	for i := range nodes {
		inv.Nodes = append(inv.Nodes, inventoryNode(&nodes[i], m))
	}
	return inv
}

func inventoryNode(n *Node, m Matcher) upgrade.Node {
	out := upgrade.Node{
		Name: n.Name, Address: n.Address, Role: n.Role, Talos: n.Talos, Kubernetes: n.Kubelet,
		Schematic: n.Schematic, GPU: n.GPU,
	}
	if n.Extensions != nil {
		for _, e := range n.Extensions {
			if !slices.Contains(out.Extensions, e.Name) {
				out.Extensions = append(out.Extensions, e.Name)
			}
		}
		slices.Sort(out.Extensions)
	}
	var why string
	switch {
	case n.Schematic == "":
		out.Unknown = append(out.Unknown, fmt.Sprintf("schematic: the node has no %s annotation", SchematicAnnotation))
		why = "no running schematic to match"
	case m == nil:
		why = "no site profiles to match the schematic against"
	default:
		out.Profile, why = m.Match(n.Talos, n.Schematic, n.Role)
	}
	if out.Profile == "" && n.ProfileLabel != "" {
		out.Profile = n.ProfileLabel
	}
	if out.Profile == "" {
		out.Unknown = append(out.Unknown, fmt.Sprintf("profile: %s, and the node has no %s label", why, ProfileLabel))
	}
	return out
}
