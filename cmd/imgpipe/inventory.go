package main

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/cluster"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upgrade"
)

type inventoryFlags struct {
	kubeconfig, kubeContext, talosconfig, cluster string
	output, out                                   string
}

func (a *app) newInventoryCmd() *cobra.Command {
	var f inventoryFlags
	cmd := &cobra.Command{
		Use:   "inventory",
		Short: "Read the cluster's nodes into the inventory upgrade-plan reads",
		Long: `inventory reads the running cluster and prints its inventory, in the format
upgrade-plan --inventory reads. From the Kubernetes API: each node's name, role
(control-plane label), InternalIP, kubelet version, Talos version (osImage
"Talos (v1.9.5)"), schematic (annotation extensions.talos.dev/schematic) and GPU
(nvidia.com/gpu.present label or nvidia.com/gpu capacity). With --talosconfig, the
Talos API's running version and installed extensions too.

A node's profile is the site profile whose schematic, at the node's running release, is
the node's running schematic; failing that its imgpipe.dev/profile label; else it is
unknown (left empty, with the reason under unknown:) and upgrade-plan refuses the node.
Nothing is guessed. A node that is not Talos, an unreachable API and Talos nodes that
cannot be read are errors (exit 1), each naming the nodes.`,
		Example: `  imgpipe inventory --kubeconfig ~/.kube/config -o yaml --out cluster.yaml
  imgpipe inventory --kubeconfig kubeconfig --talosconfig talosconfig -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runInventory(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (required)")
	fl.StringVar(&f.kubeContext, "kube-context", "", "kubeconfig context (default: its current-context)")
	fl.StringVar(&f.talosconfig, "talosconfig", "", "talosconfig: also read running versions and extensions from the Talos API")
	fl.StringVar(&f.cluster, "cluster", "", "cluster name to record in the inventory")
	fl.StringVarP(&f.output, "output", "o", formatYAML, "output format: yaml, json or table")
	fl.StringVar(&f.out, "out", "", "write the inventory to this file instead of stdout")
	return cmd
}

func (a *app) runInventory(ctx context.Context, f inventoryFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	if f.kubeconfig == "" {
		return usageErrorf("--kubeconfig is required: the kubeconfig of the cluster to read")
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	m, mname, err := a.loadMatrix()
	if err != nil {
		return err
	}
	inv, err := readCluster(ctx, clusterSource(f.kubeconfig, f.kubeContext, f.talosconfig, f.cluster), upgrade.SiteResolver(m, cfg, mname), cfg)
	if err != nil {
		return err
	}
	w := a.stdout
	if f.out == "" {
		return renderInventory(w, f.output, inv)
	}
	var buf bytes.Buffer
	if err := renderInventory(&buf, f.output, inv); err != nil {
		return err
	}
	if err := site.WriteFileAtomic(f.out, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("writing inventory: %w", err)
	}
	fmt.Fprintf(a.stderr, "wrote %s (%d nodes)\n", f.out, len(inv.Nodes))
	return nil
}

func clusterSource(kubeconfig, kubeContext, talosconfig, name string) cluster.Source {
	return cluster.Source{Kubeconfig: kubeconfig, Context: kubeContext, Talosconfig: talosconfig, Cluster: name}
}

// readCluster reads the live cluster into an inventory, matching profiles against
// the site config; upgrade-plan --kubeconfig and inventory share it, so both plan
// from the same inventory.
func readCluster(ctx context.Context, src cluster.Source, resolve upgrade.Resolver, cfg *site.Config) (*upgrade.Inventory, error) {
	var names []string
	roles := map[string]string{}
	for _, p := range cfg.Profiles {
		names = append(names, p.Name)
		roles[p.Name] = p.Role
	}
	inv, _, err := cluster.Read(ctx, src, upgrade.NewSchematicMatcher(resolve, names, roles))
	if err != nil {
		return nil, fmt.Errorf("reading the cluster: %w", err)
	}
	return inv, nil
}

func renderInventory(w io.Writer, format string, inv *upgrade.Inventory) error {
	if format == formatYAML {
		return writeYAML(w, inv)
	}
	return render(w, format, inv, func(w io.Writer) error {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "NAME\tROLE\tADDRESS\tTALOS\tKUBERNETES\tPROFILE\tSCHEMATIC\tGPU")
		for _, n := range inv.Nodes {
			prof := n.Profile
			if _, unknown := n.ProfileUnknown(); unknown {
				prof = "(unknown)"
			}
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%v\n", n.Name, n.Role, n.Address, n.Talos, n.Kubernetes, prof, dash(shortID(n.Schematic)), n.GPU)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
		for _, n := range inv.Nodes {
			for _, u := range n.Unknown {
				fmt.Fprintf(w, "  %s: %s\n", n.Name, u)
			}
		}
		return nil
	})
}
