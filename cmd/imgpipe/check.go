package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/registry"
)

// formatMarkdown is check's extra output format: a GitHub issue body.
const formatMarkdown = "markdown"

// Where the scheduled workflow's runner keeps its cluster credentials (paths), so the
// workflow passes no flags it would have to build in shell.
const (
	envKubeconfig  = "IMGPIPE_KUBECONFIG"
	envTalosconfig = "IMGPIPE_TALOSCONFIG"
)

// errDrift is returned (as a policy failure, exit 3) when the site has drifted.
var errDrift = errors.New("the site has drifted from the lock")

// errIncomplete is returned (exit 1) when something could not be checked.
var errIncomplete = errors.New("the site could not be fully checked")

type checkFlags struct {
	lock        string
	references  []string
	kubeconfig  string
	talosconfig string
	output      string
	deep        bool
	journal     string
	only        []string
	cacheDir    string
	factory     factoryFlags
}

func (a *app) newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check",
		Short: "Report how the site has drifted from the lock: registries, Proxmox, factory, cluster",
		Long: `check reads the lock and the site and reports each item as ok, missing, different
or stray (made by imgpipe, named by no lock). It only reads.

  registry  every image of the lock's set at its mirror, by digest, with its signature
            where a verify policy requires one. Push targets are read plainly (manifests,
            a HEAD per blob, the tag, the signature tags). Pull-through caches fill
            themselves from whatever is read through them, so by default they are
            checked through the warm journal (imgpipe mirror recorded that the cache
            stored the image, less than the journal's 6 days ago) and a HEAD by digest;
            --deep reads each blob (push: whole, digest checked; cache: its first byte,
            which refills a blob the cache lost).
  proxmox   each profile's ISO on every node (once on shared storage), its import disk
            and template on the first node, names and sizes; this proxmox.site's
            imgpipe volumes and templates that no lock names (and proxmox.keep would
            not keep) are stray. Nothing else is ever called stray (and nothing at all
            without proxmox.site).
  factory   every schematic ID resolves (GET /schematics/<id>).
  cluster   (with --kubeconfig) each node's Talos version and schematic against its
            profile; a node behind is listed with the talosctl command that fixes it.

Exit codes: 0 clean, 3 drift, 1 when something could not be checked (named in the
report; this wins over drift). -o json is a documented contract (check/README.md);
-o markdown is an issue body. ` + "`imgpipe check issue`" + ` opens, updates or closes the
GitHub issue from a JSON report.`,
		Example: `  imgpipe check
  imgpipe check --deep -o json > check.json
  imgpipe check --kubeconfig ~/.kube/config --talosconfig ~/.talos/config -o markdown`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runCheck(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lock, "lock", defaultLockFile, "lockfile the site must match")
	fl.StringArrayVar(&f.references, "reference-lock", nil, "another lock whose Proxmox files and templates are not stray (e.g. the release kept for rollback); repeatable")
	fl.StringVar(&f.kubeconfig, "kubeconfig", "", "kubeconfig of the cluster (the cluster check runs only with it; default $"+envKubeconfig+")")
	fl.StringVar(&f.talosconfig, "talosconfig", "", "talosconfig, to read versions from the Talos API as well (default $"+envTalosconfig+")")
	fl.StringVarP(&f.output, "output", "o", formatTable, "output format: table, json or markdown")
	fl.BoolVar(&f.deep, "deep", false, "read every blob (pull-through caches: this refills what they lost)")
	fl.StringVar(&f.journal, "journal", "", `warm journal that mirror keeps (default: the user cache dir, as mirror's; "off" disables)`)
	fl.StringVar(&f.cacheDir, "cache-dir", "", "download cache imgpipe fetch filled, to size compressed disk images (default: $XDG_CACHE_HOME/imgpipe or ~/.cache/imgpipe)")
	fl.StringSliceVar(&f.only, "checks", nil, "run only these checks: registry, proxmox, factory, cluster (default: every one the site configures)")
	f.factory.bind(fl)
	cmd.AddCommand(a.newCheckIssueCmd())
	return cmd
}

func (a *app) runCheck(cmd *cobra.Command, f checkFlags) error {
	if f.output != formatTable && f.output != formatJSON && f.output != formatMarkdown {
		return usageErrorf("unknown output format %q: use table, json or markdown", f.output)
	}
	for _, c := range f.only {
		if !slices.Contains(check.Names, c) {
			return usageErrorf("--checks %q: use %s", c, strings.Join(check.Names, ", "))
		}
	}
	if f.kubeconfig == "" {
		f.kubeconfig = a.getenv(envKubeconfig)
	}
	if f.talosconfig == "" {
		f.talosconfig = a.getenv(envTalosconfig)
	}
	lock, err := a.loadLock(f.lock)
	if err != nil {
		return err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	// The lock names fetched files by digest; the Proxmox check measures a compressed
	// disk image's raw size from this machine's copy when there is one.
	if err := a.locateArtifacts(lock, f.cacheDir); err != nil {
		return err
	}
	var refs []*site.Lock
	for _, p := range f.references {
		l, err := site.ReadLock(p)
		if err != nil {
			return err
		}
		refs = append(refs, l)
	}
	sources, cleanup, err := a.checkSources(cmd, f, lock, cfg, refs)
	defer cleanup()
	if err != nil {
		return err
	}
	lockName := f.lock
	if lockName == "" {
		lockName = defaultLockFile
	}
	rep := check.Run(cmd.Context(), lock, lockName, sources, nil)
	if err := renderCheck(a.stdout, f.output, rep); err != nil {
		return err
	}
	if cmd.Context().Err() != nil {
		return cmd.Context().Err()
	}
	switch rep.ExitCode {
	case check.ExitDrift:
		return fail.Policy(fmt.Errorf("%w: %d items", errDrift, rep.Totals.Drifted()))
	case check.ExitIncomplete:
		return fmt.Errorf("%w: %d items unchecked", errIncomplete, rep.Totals.Unchecked)
	}
	return nil
}

// checkSources builds the sources the site configures; a check that is left out says why.
func (a *app) checkSources(cmd *cobra.Command, f checkFlags, lock *site.Lock, cfg *site.Config, refs []*site.Lock) ([]check.Source, func(), error) {
	cleanups := []func(){}
	cleanup := func() {
		for _, c := range cleanups {
			c()
		}
	}
	want := func(name string) bool { return len(f.only) == 0 || slices.Contains(f.only, name) }
	var out []check.Source
	skip := func(name, why string) { out = append(out, check.Skip(name, why)) }

	switch src, err := a.registrySource(f, lock, cfg); {
	case !want(check.CheckRegistry):
		skip(check.CheckRegistry, "left out by --checks")
	case errors.Is(err, registry.ErrNothingToMirror):
		skip(check.CheckRegistry, "no registries configured (registries.host or registries.mirrors)")
	case err != nil:
		return nil, cleanup, err
	default:
		out = append(out, src)
	}

	switch {
	case !want(check.CheckProxmox):
		skip(check.CheckProxmox, "left out by --checks")
	case cfg.Proxmox.URL == "":
		skip(check.CheckProxmox, "proxmox.url is not set")
	default:
		c, closeIdle, err := a.proxmoxClient(cfg.Proxmox)
		if err != nil {
			return nil, cleanup, err
		}
		cleanups = append(cleanups, closeIdle)
		out = append(out, check.Proxmox(c, cfg.Proxmox, lock, proxmox.CheckOptions{Referenced: refs}))
	}

	if want(check.CheckFactory) {
		t, err := a.newFactory(f.factory, lock.Factory)
		if err != nil {
			return nil, cleanup, err
		}
		out = append(out, check.Factory(t.client, lock))
	} else {
		skip(check.CheckFactory, "left out by --checks")
	}

	src, closeCluster, err := a.clusterSource(cmd, f, lock, cfg, want(check.CheckCluster))
	if err != nil {
		return nil, cleanup, err
	}
	cleanups = append(cleanups, closeCluster)
	out = append(out, src)
	return out, cleanup, nil
}

// registrySource plans the lock's images on the site's mirrors and says which must
// be signed there (the verify policies that name a key or identity).
func (a *app) registrySource(f checkFlags, lock *site.Lock, cfg *site.Config) (check.Source, error) {
	placements, err := registry.PlanLock(lock, cfg, "")
	if err != nil {
		return check.Source{}, err
	}
	policies, err := verify.PoliciesFromConfig(cfg.Verify, os.ReadFile)
	if err != nil {
		return check.Source{}, err
	}
	policies = append(policies, verify.SideroPolicy())
	factoryURL := lock.Factory
	if factoryURL == "" {
		factoryURL = cfg.Factory.URL
	}
	hosts, err := verify.FactoryHosts(factoryURL, cfg.Factory.Registry)
	if err != nil {
		return check.Source{}, err
	}
	if len(hosts) > 0 {
		policies = append(policies, verify.FactoryPolicy(hosts, nil))
	}
	// A check reads a few hundred small things: three quick attempts each, so an
	// unreachable mirror is reported in seconds, not after mirror's long schedule.
	b := registry.Backoff{Initial: 200 * time.Millisecond, Max: 2 * time.Second, Steps: 3}
	m := registry.New(registry.WithKeychain(authn.DefaultKeychain), registry.WithJournal(a.journalPath(f.journal), 0),
		registry.WithLogger(a.log), registry.WithBackoff(b))
	return check.Registry(m, placements, registry.CheckOptions{Deep: f.deep, Signed: check.SignedByPolicy(policies)}), nil
}

func renderCheck(w io.Writer, format string, rep *check.Report) error {
	switch format {
	case formatMarkdown:
		return checkMarkdown(w, rep)
	case formatJSON:
		return render(w, formatJSON, rep, nil)
	}
	return checkTable(w, rep)
}

func checkTable(w io.Writer, rep *check.Report) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "CHECK\tKIND\tITEM\tWHERE\tSTATUS\tDETAIL")
	for _, it := range rep.Items {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", it.Check, it.Kind, it.Name, dash(it.Where), it.Status, dash(itemDetail(it)))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	fmt.Fprintln(w)
	for _, s := range rep.Checks {
		line := fmt.Sprintf("%s: %s", s.Name, s.Result)
		if s.Result != check.ResultSkipped {
			line += fmt.Sprintf(" (%d ok, %d missing, %d different, %d stray, %d unchecked; %.1fs)",
				s.Counts.OK, s.Counts.Missing, s.Counts.Different, s.Counts.Stray, s.Counts.Unchecked, s.Seconds)
		}
		fmt.Fprintln(w, line)
		for _, n := range s.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	for _, it := range rep.Items {
		if it.Fix != "" && it.Status != check.OK {
			fmt.Fprintf(w, "fix %s %s: %s\n", it.Kind, it.Name, it.Fix)
		}
	}
	fmt.Fprintf(w, "\n%s: Talos %s, %s (%d drifted, %d unchecked), %.1fs\n", rep.Lock, rep.Talos, rep.Result, rep.Totals.Drifted(), rep.Totals.Unchecked, rep.Seconds)
	return nil
}

func itemDetail(it check.Item) string {
	var parts []string
	if it.Status != check.OK && (it.Want != "" || it.Got != "") {
		parts = append(parts, fmt.Sprintf("want %s, got %s", dash(it.Want), dash(it.Got)))
	}
	if it.Detail != "" {
		parts = append(parts, it.Detail)
	}
	return strings.Join(parts, "; ")
}

// checkMarkdown renders the report as a GitHub issue body: what drifted first, each
// with its fix, then the per-check summary.
func checkMarkdown(w io.Writer, rep *check.Report) error {
	var b strings.Builder
	fmt.Fprintf(&b, "## imgpipe check: %s\n\n", rep.Result)
	fmt.Fprintf(&b, "Lock `%s` (Talos %s), checked %s: %d drifted, %d unchecked, %d ok.\n\n",
		rep.Lock, rep.Talos, rep.CheckedAt.Format("2006-01-02 15:04 UTC"), rep.Totals.Drifted(), rep.Totals.Unchecked, rep.Totals.OK)
	if d := rep.Drifted(); len(d) > 0 {
		b.WriteString("| check | kind | item | where | status | detail | fix |\n|---|---|---|---|---|---|---|\n")
		for _, it := range d {
			fmt.Fprintf(&b, "| %s | %s | %s | %s | **%s** | %s | %s |\n", it.Check, it.Kind, mdCode(it.Name), mdCode(it.Where),
				it.Status, mdCell(itemDetail(it)), mdCode(it.Fix))
		}
		b.WriteString("\n")
	}
	b.WriteString("| check | result | ok | missing | different | stray | unchecked |\n|---|---|---|---|---|---|---|\n")
	for _, s := range rep.Checks {
		fmt.Fprintf(&b, "| %s | %s | %d | %d | %d | %d | %d |\n", s.Name, s.Result, s.Counts.OK, s.Counts.Missing, s.Counts.Different, s.Counts.Stray, s.Counts.Unchecked)
	}
	var notes []string
	for _, s := range rep.Checks {
		for _, n := range s.Notes {
			notes = append(notes, fmt.Sprintf("- %s: %s", s.Name, n))
		}
	}
	if len(notes) > 0 {
		b.WriteString("\n" + strings.Join(notes, "\n") + "\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// mdCell keeps a value inside its table cell.
func mdCell(s string) string {
	return strings.NewReplacer("|", `\|`, "\n", " ").Replace(s)
}

// mdCode renders a value as inline code (or nothing).
func mdCode(s string) string {
	if s == "" {
		return ""
	}
	return "`" + strings.ReplaceAll(mdCell(s), "`", "'") + "`"
}
