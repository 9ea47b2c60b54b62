package cluster

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"

	"github.com/imgpipe/imgpipe/upgrade"
)

// Node labels and annotations read.
const (
	// SchematicAnnotation is set by Talos on its node with the running schematic ID.
	SchematicAnnotation = "extensions.talos.dev/schematic"
	// ProfileLabel names a node's site profile when its schematic does not decide it.
	ProfileLabel = "imgpipe.dev/profile"
	// ControlPlaneLabel marks control-plane nodes.
	ControlPlaneLabel = "node-role.kubernetes.io/control-plane"
	// GPUPresentLabel is set by NVIDIA's GPU feature discovery.
	GPUPresentLabel = "nvidia.com/gpu.present"
	// GPUResource is the extended resource NVIDIA's device plugin advertises.
	GPUResource = "nvidia.com/gpu"
)

// ErrNotTalos marks a node whose OS image is not Talos.
var ErrNotTalos = errors.New("node does not run Talos")

// Node is one node as the cluster reports it now.
type Node struct {
	Name    string `json:"name"`
	Address string `json:"address"` // InternalIP
	Role    string `json:"role"`    // controlplane | worker (upgrade.RoleControlPlane, upgrade.RoleWorker)
	// Kubelet is the kubelet version without "v" ("1.30.3").
	Kubelet string `json:"kubelet"`
	// OSImage is status.nodeInfo.osImage as reported ("Talos (v1.9.5)").
	OSImage string `json:"os_image"`
	// Talos is the running Talos version ("v1.9.5"): from the Talos API when read
	// (TalosFromAPI), else from OSImage.
	Talos        string `json:"talos"`
	TalosFromAPI bool   `json:"talos_from_api,omitempty"`
	// Schematic is the extensions.talos.dev/schematic annotation ("" when absent).
	Schematic string `json:"schematic,omitempty"`
	// ProfileLabel is the imgpipe.dev/profile label ("" when absent).
	ProfileLabel string `json:"profile_label,omitempty"`
	// GPU is true when the node has the nvidia.com/gpu.present=true label or
	// nvidia.com/gpu capacity.
	GPU bool `json:"gpu,omitempty"`
	// Extensions are the installed extensions (Talos API only; nil when not read).
	Extensions []Extension `json:"extensions,omitempty"`
	// Labels and Annotations are the node's, as served (for drift checks).
	Labels      map[string]string `json:"labels,omitempty"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

// Extension is one installed system extension as the Talos API lists it.
type Extension struct {
	Name    string `json:"name"`
	Version string `json:"version"`
	Image   string `json:"image,omitempty"`
}

var talosImageRE = regexp.MustCompile(`^Talos \((v[0-9]+\.[0-9]+\.[0-9]+[-+.0-9A-Za-z]*)\)$`)

// Nodes lists the cluster's nodes, sorted by name. A node that is not Talos, or
// lacks an InternalIP or kubelet version, fails the call with every such node named
// (ErrNotTalos for OS images); an unreachable API wraps ErrUnreachable.
func (k *Kube) Nodes(ctx context.Context) ([]Node, error) {
	items, err := k.listNodes(ctx)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, fmt.Errorf("listing nodes at %s: the API lists no nodes", k.cfg.Server)
	}
	out := make([]Node, 0, len(items))
	var errs []error
	for i := range items {
		n, err := fromAPI(&items[i])
		if err != nil {
			errs = append(errs, err)
			continue
		}
		out = append(out, n)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("reading nodes from %s:\n%w", k.cfg.Server, Bounded(errs, 10))
	}
	slices.SortFunc(out, func(a, b Node) int { return cmp.Compare(a.Name, b.Name) })
	return out, nil
}

func fromAPI(a *apiNode) (Node, error) {
	n := Node{
		Name: a.Metadata.Name, Role: upgrade.RoleWorker, OSImage: a.Status.NodeInfo.OSImage,
		Schematic: a.Metadata.Annotations[SchematicAnnotation], ProfileLabel: a.Metadata.Labels[ProfileLabel],
		Labels: a.Metadata.Labels, Annotations: a.Metadata.Annotations,
	}
	if _, ok := a.Metadata.Labels[ControlPlaneLabel]; ok {
		n.Role = upgrade.RoleControlPlane
	}
	m := talosImageRE.FindStringSubmatch(n.OSImage)
	if m == nil {
		return n, fmt.Errorf("node %s: %w: its OS image is %q, not \"Talos (vX.Y.Z)\"", n.Name, ErrNotTalos, n.OSImage)
	}
	n.Talos = m[1]
	n.Kubelet = strings.TrimPrefix(a.Status.NodeInfo.KubeletVersion, "v")
	if n.Kubelet == "" {
		return n, fmt.Errorf("node %s: status.nodeInfo.kubeletVersion is empty", n.Name)
	}
	for _, ad := range a.Status.Addresses {
		if ad.Type == "InternalIP" {
			n.Address = ad.Address
			break
		}
	}
	if n.Address == "" {
		return n, fmt.Errorf("node %s: no InternalIP in status.addresses: talosctl needs an address to reach it", n.Name)
	}
	gpus, _ := strconv.Atoi(a.Status.Capacity[GPUResource])
	n.GPU = a.Metadata.Labels[GPUPresentLabel] == "true" || gpus > 0
	return n, nil
}

// Bounded joins errs one per line, the first max of them, then a count of the rest:
// a 10,000-node cluster must not produce a 240 KB message.
func Bounded(errs []error, max int) error {
	if len(errs) == 0 {
		return nil
	}
	return &bounded{errs: errs, max: max}
}

type bounded struct {
	errs []error
	max  int
}

func (b *bounded) Error() string {
	var sb strings.Builder
	for i, err := range b.errs {
		if i == b.max {
			fmt.Fprintf(&sb, "\n  ... and %d more", len(b.errs)-b.max)
			break
		}
		if i > 0 {
			sb.WriteByte('\n')
		}
		sb.WriteString("  - ")
		sb.WriteString(err.Error())
	}
	return sb.String()
}

func (b *bounded) Unwrap() []error { return b.errs }
