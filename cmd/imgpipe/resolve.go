package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/site"
)

type resolveFlags struct {
	talos      string
	kubernetes string
	profiles   []string
	pre        bool
	output     string
	lock       string
	online     bool
	factory    factoryFlags
}

func (a *app) newResolveCmd() *cobra.Command {
	var f resolveFlags
	cmd := &cobra.Command{
		Use:   "resolve",
		Short: "Resolve a Talos version and the site's profiles into schematics, extensions and image URLs",
		Long: `resolve picks the newest Talos release matching --talos from the compatibility matrix
(embedded, or --matrix), checks Kubernetes support, resolves every profile's extensions
(required ones must exist; optional ones are left out with a reason), applies the NVIDIA
pairing gate, and computes each profile's Image Factory schematic ID locally.

Queries: v1.9.x, 1.9, ~1.9, ">=1.9.3 <1.10", v1.9.5, latest. Works offline.`,
		Example: `  imgpipe resolve --talos v1.9.x
  imgpipe resolve --talos latest --profile gpu -o json
  imgpipe resolve --talos v1.12.x --lock imgpipe.lock.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runResolve(cmd, f)
		},
	}
	fl := cmd.Flags()
	fl.StringVarP(&f.talos, "talos", "t", "", "Talos version query (default: the config's talos, else latest)")
	fl.StringVar(&f.kubernetes, "kubernetes", "", "Kubernetes version or query (default: the release's default)")
	fl.StringSliceVarP(&f.profiles, "profile", "p", nil, "only these profiles (repeatable or comma-separated)")
	fl.BoolVar(&f.pre, "pre", false, "let range queries pick prereleases and unverified releases")
	fl.StringVarP(&f.output, "output", "o", formatTable, "output format: table, json or yaml")
	fl.StringVar(&f.lock, "lock", "", "also write the result to this lockfile (atomically; unchanged on error)")
	fl.BoolVar(&f.online, "online", false, "resolve against the factory's live catalogs and report what differs from the matrix")
	f.factory.bind(fl)
	return cmd
}

func (a *app) resolveLock(ctx context.Context, f resolveFlags) (*site.Lock, error) {
	var (
		m      *compat.Matrix
		mname  string
		report *factory.RefreshReport
		err    error
	)
	if f.online {
		m, mname, report, err = a.resolveMatrixOnline(ctx, f.factory)
	} else {
		m, mname, err = a.loadMatrix()
	}
	if err != nil {
		return nil, err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, err
	}
	if f.factory.url != "" {
		// Online or not, every derived reference follows --factory.
		if err := cfg.OverrideFactory(f.factory.url); err != nil {
			return nil, err
		}
	}
	lock, err := site.Resolve(m, cfg, site.ResolveOptions{
		Talos: f.talos, Kubernetes: f.kubernetes, Pre: f.pre, Profiles: f.profiles, MatrixName: mname, Now: a.clock(),
	})
	if err != nil {
		return nil, err
	}
	if report != nil {
		lock.Notes = append(lock.Notes, onlineNotes(report, lock.Talos)...)
	}
	return lock, nil
}

func (a *app) runResolve(cmd *cobra.Command, f resolveFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	lock, err := a.resolveLock(cmd.Context(), f)
	if err != nil {
		return err
	}
	// Resolving is pure and does not watch ctx: a Ctrl-C or SIGTERM that came
	// meanwhile must still stop the run before the lock is written (exit 130).
	if err := cmd.Context().Err(); err != nil {
		return fmt.Errorf("resolve interrupted: %w", err)
	}
	if f.lock != "" {
		if err := site.WriteLock(f.lock, lock); err != nil {
			return err
		}
		a.log.Info("wrote lock", "path", f.lock)
	}
	return render(a.stdout, f.output, lock, func(w io.Writer) error { return resolveTable(w, lock) })
}

func resolveTable(w io.Writer, l *site.Lock) error {
	fmt.Fprintf(w, "Talos %s (query %s)  Kubernetes %s (supported %s–%s)\n", l.Talos, l.Query, l.Kubernetes.Version, l.Kubernetes.Min, l.Kubernetes.MaxMinor)
	for _, n := range l.Notes {
		fmt.Fprintf(w, "  note: %s\n", n)
	}
	for _, p := range l.Profiles {
		fmt.Fprintf(w, "\nprofile %s (%s-%s)\n", p.Name, p.Platform, p.Arch)
		fmt.Fprintf(w, "  schematic  %s\n", p.Schematic.ID)
		fmt.Fprintf(w, "  installer  %s\n", p.Installer)
		fmt.Fprintf(w, "  iso        %s\n", p.ISO)
		fmt.Fprintf(w, "  disk image %s\n", p.DiskImage)
		if o := p.Overlay; o != nil {
			fmt.Fprintf(w, "  overlay    %s (%s)\n", o.Name, cmp.Or(o.Ref, o.Image))
		}
		if len(p.Extensions) > 0 {
			tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
			fmt.Fprintln(tw, "  EXTENSION\tVERSION\tTIER\tDIGEST")
			for _, e := range p.Extensions {
				d := e.Digest
				if d == "" {
					d = "(unknown)"
				} else {
					d = d[:min(len(d), 19)] + "…"
				}
				fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", e.Name, e.Version, e.Tier, d)
			}
			if err := tw.Flush(); err != nil {
				return err
			}
		}
		for _, o := range p.Omitted {
			fmt.Fprintf(w, "  omitted %s: %s\n", o.Name, o.Reason)
		}
		for _, n := range p.Notes {
			fmt.Fprintf(w, "  note: %s\n", n)
		}
	}
	return nil
}

func checkFormat(f string, extra ...string) error {
	switch f {
	case formatTable, formatJSON, formatYAML:
		return nil
	}
	for _, e := range extra {
		if f == e {
			return nil
		}
	}
	return usageErrorf("unknown output format %q: use %s", f, strings.Join(append([]string{formatTable, formatJSON, formatYAML}, extra...), ", "))
}
