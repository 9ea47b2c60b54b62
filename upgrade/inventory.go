package upgrade

import (
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"strings"

	"github.com/Masterminds/semver/v3"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/internal/yamlx"
)

// Node roles in an inventory.
const (
	RoleControlPlane = "controlplane"
	RoleWorker       = "worker"
)

// Inventory is a cluster's nodes as they run now (cluster.yaml). Unknown keys are
// rejected. Reading it live from a cluster can come later; the file is the contract.
type Inventory struct {
	// Cluster names the cluster in plans and tuppr resource names (optional).
	Cluster string `yaml:"cluster,omitempty" json:"cluster,omitempty"`
	Nodes   []Node `yaml:"nodes" json:"nodes"`

	src []byte         // the file's bytes, for line numbers in errors
	loc *yamlx.Locator // parsed from src on the first error that needs a line
}

// lineOf is the line nodes[i] starts at in the file it was parsed from, 0 when
// unknown. The file is parsed for lines only when an error needs one: a second
// YAML parse of a 10,000-node inventory is a fifth of planning it.
func (inv *Inventory) lineOf(i int) int {
	if i < len(inv.Nodes) && inv.Nodes[i].Line > 0 {
		return inv.Nodes[i].Line
	}
	if inv.src == nil {
		return 0
	}
	if inv.loc == nil {
		inv.loc = yamlx.NewLocator(inv.src)
	}
	return inv.loc.Line("nodes", i)
}

// Node is one machine as it runs now.
type Node struct {
	// Name is the Kubernetes node name (kubectl drain, tuppr node selectors use it).
	Name string `yaml:"name" json:"name"`
	// Address is what talosctl --nodes reaches: an IP address or a host name.
	Address string `yaml:"address" json:"address"`
	Role    string `yaml:"role" json:"role"` // controlplane | worker
	// Profile names a profile of the site config; it decides extensions and installer.
	// It may be empty only when Unknown says why (an inventory read from a cluster
	// whose node matches no profile); the plan then refuses the node.
	Profile string `yaml:"profile" json:"profile"`
	// Talos is the running Talos version ("v1.7.6"); "1.7.6" is accepted.
	Talos string `yaml:"talos" json:"talos"`
	// Kubernetes is the node's running kubelet version ("1.30.3"); "v1.30.3" is accepted.
	Kubernetes string `yaml:"kubernetes" json:"kubernetes"`
	// Schematic is the running schematic ID (node annotation extensions.talos.dev/schematic), if known.
	Schematic string `yaml:"schematic,omitempty" json:"schematic,omitempty"`
	// Extensions are the extensions the node runs now (`talosctl get extensions`), if
	// known; a hop that would drop one of them is refused.
	Extensions []string `yaml:"extensions,omitempty" json:"extensions,omitempty"`
	// GPU marks a node to drain before its upgrade even when its profile has no NVIDIA extension.
	GPU bool `yaml:"gpu,omitempty" json:"gpu,omitempty"`
	// Unknown lists facts that could not be read, each "field: why" ("profile: ...",
	// "schematic: ..."): nothing is guessed. `imgpipe inventory` writes it.
	Unknown []string `yaml:"unknown,omitempty" json:"unknown,omitempty"`

	// Line is where the node starts in the inventory file, when a caller knows it
	// (0: ParseInventory finds it from the file when an error needs it).
	Line int `yaml:"-" json:"-"`
}

// ProfileUnknown reports whether the node's profile is unknown, and why.
func (n *Node) ProfileUnknown() (string, bool) {
	if n.Profile != "" {
		return "", false
	}
	for _, u := range n.Unknown {
		if why, ok := strings.CutPrefix(u, "profile: "); ok {
			return why, true
		}
	}
	return "", false
}

var (
	// Kubernetes node names are DNS-1123 subdomains.
	nodeNameRE  = regexp.MustCompile(`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`)
	hostnameRE  = regexp.MustCompile(`^[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?(\.[A-Za-z0-9]([-A-Za-z0-9]*[A-Za-z0-9])?)*$`)
	schematicRE = regexp.MustCompile(`^[0-9a-f]{64}$`)
	profileRE   = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]*$`)
	extRE       = regexp.MustCompile(`^([a-z0-9-]+/)?[a-z0-9][a-z0-9-]*[a-z0-9]$`)
)

// ParseInventory decodes an inventory strictly and validates every node. file names
// the source in errors ("cluster.yaml:12: nodes[2].talos: ..."); all problems are
// reported at once. Versions are normalized (Talos with "v", Kubernetes without).
// Errors wrap fail.ErrUsage.
func ParseInventory(file string, data []byte) (*Inventory, error) {
	var inv Inventory
	if err := yamlx.Decode(file, data, &inv); err != nil {
		return nil, fail.Usage(fmt.Errorf("parsing inventory: %w", err))
	}
	if err := inv.validate(file, data); err != nil {
		return nil, fail.Usage(fmt.Errorf("validating inventory: %w", err))
	}
	return &inv, nil
}

func (inv *Inventory) validate(file string, data []byte) error {
	inv.src = data
	at := func(msg string, path ...any) error {
		if inv.loc == nil {
			inv.loc = yamlx.NewLocator(data)
		}
		return yamlx.At(file, inv.loc, msg, path...)
	}
	var errs []error
	if inv.Cluster != "" && !nodeNameRE.MatchString(inv.Cluster) {
		errs = append(errs, at(fmt.Sprintf("cluster name %q must be lower-case letters, digits, '-' and '.'", inv.Cluster), "cluster"))
	}
	if len(inv.Nodes) == 0 {
		return errors.Join(append(errs, at("no nodes: list every node with name, address, role, profile, talos and kubernetes", "nodes"))...)
	}
	names := map[string]int{}
	addrs := map[string]int{}
	controlPlanes := 0
	for i := range inv.Nodes {
		n := &inv.Nodes[i]
		field := func(msg, f string) { errs = append(errs, at(msg, "nodes", i, f)) }
		switch {
		case n.Name == "":
			field("missing: the Kubernetes node name", "name")
		case len(n.Name) > 253 || !nodeNameRE.MatchString(n.Name):
			field(fmt.Sprintf("%q is not a Kubernetes node name (lower-case letters, digits, '-' and '.')", n.Name), "name")
		default:
			if j, dup := names[n.Name]; dup {
				field(fmt.Sprintf("node %q is listed twice (also nodes[%d])", n.Name, j), "name")
			}
			names[n.Name] = i
		}
		switch {
		case n.Address == "":
			field("missing: the address talosctl reaches the node at", "address")
		case !validAddress(n.Address):
			field(fmt.Sprintf("%q is neither an IP address nor a host name", n.Address), "address")
		default:
			if j, dup := addrs[n.Address]; dup {
				field(fmt.Sprintf("address %s is used twice (also nodes[%d])", n.Address, j), "address")
			}
			addrs[n.Address] = i
		}
		switch n.Role {
		case RoleControlPlane:
			controlPlanes++
		case RoleWorker:
		case "":
			field("missing: controlplane or worker", "role")
		default:
			field(fmt.Sprintf("%q is not controlplane or worker", n.Role), "role")
		}
		switch {
		case n.Profile == "":
			if _, unknown := n.ProfileUnknown(); !unknown {
				field("missing: the site profile the node was built from", "profile")
			}
		case !profileRE.MatchString(n.Profile):
			field(fmt.Sprintf("%q is not a profile name", n.Profile), "profile")
		}
		if v, err := parseTalosVersion(n.Talos); err != nil {
			field(err.Error(), "talos")
		} else {
			n.Talos = v
		}
		if v, err := parseKubernetesVersion(n.Kubernetes); err != nil {
			field(err.Error(), "kubernetes")
		} else {
			n.Kubernetes = v
		}
		if n.Schematic != "" && !schematicRE.MatchString(n.Schematic) {
			field(fmt.Sprintf("%q is not a schematic ID (64 lower-case hex digits)", n.Schematic), "schematic")
		}
		seen := map[string]bool{}
		for j, e := range n.Extensions {
			if !extRE.MatchString(e) {
				errs = append(errs, at(fmt.Sprintf("%q is not an extension name like siderolabs/qemu-guest-agent", e), "nodes", i, "extensions", j))
				continue
			}
			if seen[e] {
				errs = append(errs, at(fmt.Sprintf("extension %q is listed twice", e), "nodes", i, "extensions", j))
			}
			seen[e] = true
		}
	}
	if controlPlanes == 0 && len(errs) == 0 {
		errs = append(errs, at("no controlplane node: Kubernetes upgrades run against a control-plane node, list at least one", "nodes"))
	}
	return errors.Join(errs...)
}

func validAddress(s string) bool {
	if _, err := netip.ParseAddr(s); err == nil {
		return true
	}
	return len(s) <= 253 && hostnameRE.MatchString(s)
}

// parseTalosVersion normalizes "1.7.6" or "v1.7.6" to "v1.7.6".
func parseTalosVersion(s string) (string, error) {
	if s == "" {
		return "", errors.New("missing: the running Talos version, like v1.7.6")
	}
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return "", fmt.Errorf("Talos version %q: %v (want like v1.7.6)", s, err)
	}
	return "v" + v.String(), nil
}

// parseKubernetesVersion normalizes "v1.30.3" or "1.30.3" to "1.30.3".
func parseKubernetesVersion(s string) (string, error) {
	if s == "" {
		return "", errors.New("missing: the running Kubernetes (kubelet) version, like 1.30.3")
	}
	v, err := semver.StrictNewVersion(strings.TrimPrefix(s, "v"))
	if err != nil {
		return "", fmt.Errorf("Kubernetes version %q: %v (want like 1.30.3)", s, err)
	}
	return v.String(), nil
}
