package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upgrade"
)

type upgradePlanFlags struct {
	inventory     string
	kubeconfig    string
	kubeContext   string
	talosconfig   string
	to            string
	kubernetes    string
	path          string
	parallel      int
	pre           bool
	output        string
	outDir        string
	healthTimeout time.Duration
	profiles      []string
	profileSet    bool // --profile given, even empty: an empty list must not mean every node
}

// output formats only upgrade-plan has.
const (
	formatScript = "script"
	formatTuppr  = "tuppr"
)

func (a *app) newUpgradePlanCmd() *cobra.Command {
	var f upgradePlanFlags
	cmd := &cobra.Command{
		Use:   "upgrade-plan",
		Short: "Plan a Talos and Kubernetes upgrade hop by hop, with each hop's extensions and installers",
		Long: `upgrade-plan reads an inventory of the cluster's nodes (name, address, role, profile,
running Talos and Kubernetes, optionally schematic and extensions) and plans the way to
--to: the Talos hops machinery allows (conservative: the latest patch of every minor on
the way, as the Talos docs advise; minimal: the fewest hops), Kubernetes steps one minor at
a time where a hop needs them or to reach the target, every profile re-resolved for every
hop (extension versions and digests, NVIDIA pairing, schematic, installer) with its drift,
and the rollout: pre-seed mirrors and pre-warm installers, control-plane nodes one at a
time, GPU workers drained, workers in batches of --parallel, a health gate after each step.

--profile limits the plan to the nodes of those profiles (a canary, or one pool such as the
GPU workers): health gates still run against the control plane, and since Kubernetes
upgrades are cluster-wide the plan keeps the cluster's Kubernetes; a path that needs a
Kubernetes step is refused (exit 3): plan without --profile first.

A plan that Talos does not allow, or that would drop an extension a node runs now, is
refused with the reason (exit 3). Works offline: nothing is contacted.

Output: table; json/yaml (the documented plan contract); script (talosctl and kubectl
commands, every talosctl upgrade with --image pinned to the factory installer); tuppr
(TalosUpgrade and KubernetesUpgrade manifests for in-cluster execution).`,
		Example: `  imgpipe upgrade-plan --inventory cluster.yaml --to v1.10.x
  imgpipe upgrade-plan --inventory cluster.yaml --to v1.13.x --kubernetes 1.35 --path minimal -o json
  imgpipe upgrade-plan --inventory cluster.yaml --to v1.10.x --parallel 3 -o script > upgrade.sh
  imgpipe upgrade-plan --inventory cluster.yaml --to v1.12.x -o tuppr > upgrade.yaml
  imgpipe upgrade-plan --inventory cluster.yaml --to v1.10.x --profile gpu   # one pool; no Kubernetes step`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			f.profileSet = cmd.Flags().Changed("profile")
			return a.runUpgradePlan(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.inventory, "inventory", "i", "", "inventory file of the cluster's nodes (or --kubeconfig)")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "read the inventory from the live cluster, as imgpipe inventory does (instead of -i)")
	fl.StringVar(&f.kubeContext, "kube-context", "", "kubeconfig context (default: its current-context)")
	fl.StringVar(&f.talosconfig, "talosconfig", "", "with --kubeconfig: also read running versions and extensions from the Talos API")
	fl.StringVar(&f.to, "to", "", "target Talos version query (default: the config's talos)")
	fl.StringVar(&f.kubernetes, "kubernetes", "", "target Kubernetes version or query (default: the target release's default, or the running version if newer)")
	fl.StringVar(&f.path, "path", upgrade.PathConservative, "hop strategy: conservative (latest patch of every minor) or minimal (fewest hops Talos allows)")
	fl.IntVar(&f.parallel, "parallel", 1, "workers upgraded at once per batch (control-plane nodes always go one at a time)")
	fl.BoolVar(&f.pre, "pre", false, "let the --to query pick prereleases and unverified releases")
	fl.DurationVar(&f.healthTimeout, "health-timeout", upgrade.DefaultHealthTimeout, "how long each health gate waits (whole seconds, 1s to 24h)")
	fl.StringVarP(&f.output, "output", "o", formatTable, "output format: table, json, yaml, script or tuppr")
	fl.StringSliceVarP(&f.profiles, "profile", "p", nil, "only the nodes of these profiles (repeatable or comma-separated); Kubernetes stays as it runs")
	fl.StringVar(&f.outDir, "out-dir", "", "with -o tuppr: write one file per stage, named in order, and a README, into this directory")
	return cmd
}

// check validates every flag before anything is read or contacted.
func (f *upgradePlanFlags) check() error {
	if err := checkFormat(f.output, formatScript, formatTuppr); err != nil {
		return err
	}
	var errs []error
	switch {
	case f.inventory == "" && f.kubeconfig == "":
		errs = append(errs, usageErrorf("--inventory or --kubeconfig is required: a YAML file listing the cluster's nodes (see upgrade/testdata/cluster.yaml), or the live cluster"))
	case f.inventory != "" && f.kubeconfig != "":
		errs = append(errs, usageErrorf("--inventory and --kubeconfig exclude each other: plan from the file or from the live cluster"))
	}
	if f.talosconfig != "" && f.kubeconfig == "" {
		errs = append(errs, usageErrorf("--talosconfig needs --kubeconfig (it adds to what the Kubernetes API says)"))
	}
	if f.path != upgrade.PathConservative && f.path != upgrade.PathMinimal {
		errs = append(errs, usageErrorf("--path %q: use conservative or minimal", f.path))
	}
	if f.parallel < 1 || f.parallel > 1000 {
		errs = append(errs, usageErrorf("--parallel %d: give a batch size from 1 to 1000", f.parallel))
	}
	if err := upgrade.CheckHealthTimeout(f.healthTimeout); err != nil {
		errs = append(errs, err)
	}
	if f.profileSet && len(f.profiles) == 0 {
		errs = append(errs, usageErrorf("--profile needs a profile name (an empty list would plan every node)"))
	}
	if len(f.profiles) > 0 && f.kubernetes != "" {
		errs = append(errs, usageErrorf("--kubernetes and --profile exclude each other: Kubernetes upgrades are cluster-wide; plan them without --profile"))
	}
	if f.outDir != "" && f.output != formatTuppr {
		errs = append(errs, usageErrorf("--out-dir is for -o tuppr (one file per stage)"))
	}
	return errors.Join(errs...)
}

func (a *app) runUpgradePlan(ctx context.Context, f upgradePlanFlags) error {
	if err := f.check(); err != nil {
		return fail.Usage(err)
	}
	m, mname, err := a.loadMatrix()
	if err != nil {
		return err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	known := make([]string, len(cfg.Profiles))
	for i, p := range cfg.Profiles {
		known[i] = p.Name
	}
	if err := upgrade.CheckProfiles(known, f.profiles); err != nil {
		return err
	}
	to := f.to
	if to == "" {
		to = cfg.Talos
	}
	if to == "" {
		return usageErrorf("--to is required (the site config sets no talos): give a version query like v1.10.x")
	}
	// The queries are checked before the cluster is read: a typo costs no API calls.
	target, err := m.Resolve(to, compat.ResolveOptions{Pre: f.pre})
	if err != nil {
		return fmt.Errorf("resolving --to: %w", err)
	}
	if f.kubernetes != "" {
		if _, err := m.ResolveKubernetes(f.kubernetes, target); err != nil {
			return fmt.Errorf("resolving --kubernetes: %w", err)
		}
	}
	resolve := upgrade.SiteResolver(m, cfg, mname)
	inv, source, err := a.upgradeInventory(ctx, f, resolve, cfg)
	if err != nil {
		return err
	}
	// The plan's lock/mirror/prewarm steps must resolve what was planned here.
	im := "imgpipe"
	if a.configPath != "" {
		im += " --config " + upgrade.ShellQuote(a.configPath)
	}
	if a.matrixPath != "" {
		im += " --matrix " + upgrade.ShellQuote(a.matrixPath)
	}
	opts := upgrade.Options{
		To: to, Kubernetes: f.kubernetes, Path: f.path, Pre: f.pre, Parallel: f.parallel,
		HealthTimeout: f.healthTimeout, InventoryFile: source, GPU: map[string]bool{}, Imgpipe: im,
		Profiles: f.profiles,
	}
	for _, p := range cfg.Profiles {
		opts.KnownProfiles = append(opts.KnownProfiles, p.Name)
		if p.GPU != nil {
			opts.GPU[p.Name] = *p.GPU
		}
	}
	a.log.Debug("planning upgrade", "inventory", source, "nodes", len(inv.Nodes), "to", to, "path", f.path, "profiles", f.profiles)
	plan, err := upgrade.NewPlan(m, inv, resolve, opts)
	if err != nil {
		return err
	}
	switch f.output {
	case formatScript:
		return upgrade.WriteScript(a.stdout, plan)
	case formatTuppr:
		if f.outDir != "" {
			return a.writeTupprDir(plan, f.outDir)
		}
		return upgrade.WriteTuppr(a.stdout, plan)
	case formatYAML:
		return writeYAML(a.stdout, plan) // render's yaml.Node round trip is slow at 10,000 nodes
	}
	return render(a.stdout, f.output, plan, func(w io.Writer) error { return upgradePlanTable(w, plan) })
}

// upgradeInventory reads -i, or the live cluster; it returns the inventory and the
// name errors use for its source.
func (a *app) upgradeInventory(ctx context.Context, f upgradePlanFlags, resolve upgrade.Resolver, cfg *site.Config) (*upgrade.Inventory, string, error) {
	if f.kubeconfig != "" {
		inv, err := readCluster(ctx, clusterSource(f.kubeconfig, f.kubeContext, f.talosconfig, ""), resolve, cfg)
		return inv, "cluster (" + f.kubeconfig + ")", err
	}
	data, err := os.ReadFile(f.inventory)
	if err != nil {
		return nil, "", fail.Usage(fmt.Errorf("reading inventory: %w", err))
	}
	inv, err := upgrade.ParseInventory(f.inventory, data)
	return inv, f.inventory, err
}

// writeTupprDir writes the tuppr stages as files, all or nothing: into a temporary
// sibling directory renamed to dir at the end. dir must not exist or be empty, so no
// stage of an earlier plan is left among the new ones.
func (a *app) writeTupprDir(plan *upgrade.Plan, dir string) error {
	files, err := upgrade.TupprFiles(plan)
	if err != nil {
		return err
	}
	if entries, err := os.ReadDir(dir); err == nil && len(entries) > 0 {
		return usageErrorf("--out-dir %s is not empty: give a new directory (stages of another plan must not mix with these)", dir)
	}
	parent := filepath.Dir(filepath.Clean(dir))
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("creating --out-dir: %w", err)
	}
	tmp, err := os.MkdirTemp(parent, ".imgpipe-tuppr-*")
	if err != nil {
		return fmt.Errorf("creating --out-dir: %w", err)
	}
	defer os.RemoveAll(tmp) // a no-op once renamed
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(tmp, f.Name), f.Data, 0o644); err != nil {
			return fmt.Errorf("writing tuppr stage: %w", err)
		}
	}
	if err := os.Chmod(tmp, 0o755); err != nil {
		return fmt.Errorf("writing tuppr stages: %w", err)
	}
	_ = os.Remove(dir) // empty or absent
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("writing tuppr stages to %s: %w", dir, err)
	}
	fmt.Fprintf(a.stderr, "wrote %d file(s) to %s: apply them one at a time, in order (see README.md there)\n", len(files), dir)
	return nil
}

// upgradePlanTable is the human plan: a summary, then per hop a header, the profiles
// with their installer and drift, and the ordered steps.
func upgradePlanTable(w io.Writer, p *upgrade.Plan) error {
	name := "cluster"
	if p.Cluster != "" {
		name = p.Cluster
	}
	fmt.Fprintf(w, "Upgrade plan for %s (%d nodes, %s path): Talos %s -> %s, Kubernetes %s -> %s, %d hop(s)\n",
		name, p.Nodes, p.Path, strings.Join(p.From.Talos, ", "), strings.Join(p.To.Talos, ", "),
		strings.Join(p.From.Kubernetes, ", "), strings.Join(p.To.Kubernetes, ", "), len(p.Hops))
	for _, n := range p.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	if len(p.Hops) == 0 {
		fmt.Fprintln(w, "\nNothing to do: every node runs the target.")
		return nil
	}
	for _, h := range p.Hops {
		k := "Kubernetes " + h.Kubernetes
		if len(h.KubernetesSteps) > 0 {
			k += " (steps: " + strings.Join(h.KubernetesSteps, " -> ") + ")"
		}
		fmt.Fprintf(w, "\nHOP %d/%d  Talos %s  %s  upgrades %d node(s)\n", h.Index, len(p.Hops), h.Talos, k, len(h.Nodes))
		for _, n := range h.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
		if len(h.Profiles) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  PROFILE\tNODES\tSCHEMATIC\tDRIFT")
			for _, hp := range h.Profiles {
				drift := driftLines(hp.Drift)
				schem := shortID(hp.Schematic)
				if hp.SchematicFrom != "" {
					schem = shortID(hp.SchematicFrom) + " -> " + schem
				}
				fmt.Fprintf(tw, "  %s\t%d\t%s\t%s\n", hp.Name, len(hp.Nodes), schem, drift[0])
				for _, d := range drift[1:] {
					fmt.Fprintf(tw, "  \t\t\t%s\n", d)
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			for _, hp := range h.Profiles {
				fmt.Fprintf(w, "  installer %s: %s\n", hp.Name, hp.Installer)
			}
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  STEP\tBATCH\tACTION\tNODE\tDETAIL")
		for i, s := range h.Steps {
			batch := ""
			if s.Batch > 0 {
				batch = fmt.Sprint(s.Batch)
			}
			node := s.Node
			if s.Action == upgrade.ActionHealth || s.Action == upgrade.ActionUpgradeK8s {
				node = "(cluster)"
			}
			detail := s.Command
			if s.Action == upgrade.ActionUpgrade {
				detail = s.Profile + " installer " + shortID(s.Schematic)
				if strings.Contains(s.Command, "--preserve") {
					detail += " --preserve"
				}
				if s.SchematicFrom != "" {
					detail += " (was " + shortID(s.SchematicFrom) + ")"
				}
			}
			fmt.Fprintf(tw, "  %d\t%s\t%s\t%s\t%s\n", i+1, batch, s.Action, dash(node), detail)
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func driftLines(ds []upgrade.Drift) []string {
	if len(ds) == 0 {
		return []string{"unchanged"}
	}
	out := make([]string, 0, len(ds))
	for _, d := range ds {
		name := strings.TrimPrefix(d.Extension, "siderolabs/")
		switch d.Change {
		case upgrade.DriftUpdated:
			out = append(out, fmt.Sprintf("%s %s -> %s", name, d.From, d.To))
		case upgrade.DriftAdded:
			out = append(out, fmt.Sprintf("+ %s %s", name, d.To))
		case upgrade.DriftRemoved:
			out = append(out, fmt.Sprintf("- %s %s", name, d.From))
		case upgrade.DriftRenamed:
			out = append(out, fmt.Sprintf("%s -> %s", strings.TrimPrefix(d.From, "siderolabs/"), strings.TrimPrefix(d.To, "siderolabs/")))
		}
	}
	return out
}

// shortID abbreviates a schematic ID the way the factory UI does.
func shortID(id string) string {
	return id[:min(len(id), 12)]
}
