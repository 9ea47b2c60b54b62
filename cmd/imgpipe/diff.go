package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/site"
)

func (a *app) newDiffCmd() *cobra.Command {
	var (
		output   string
		profiles []string
		pre      bool
	)
	cmd := &cobra.Command{
		Use:   "diff A B",
		Short: "Show extension drift between two Talos versions or two lockfiles",
		Long: `diff resolves A and B (each a Talos version query or a lockfile written by
resolve --lock) and prints, per profile, the extensions whose version or digest
changed, and those added or removed (a removed extension is stripped from a node
upgraded with the new installer).`,
		Example: `  imgpipe diff v1.9.6 v1.10.x
  imgpipe diff old.lock.json imgpipe.lock.json -o json`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			var locks [2]*site.Lock
			for i, arg := range args {
				l, err := a.lockOrResolve(cmd.Context(), arg, resolveFlags{profiles: profiles, pre: pre})
				if err != nil {
					return err
				}
				locks[i] = l
			}
			d := site.Diff(locks[0], locks[1])
			return render(a.stdout, output, d, func(w io.Writer) error { return diffTable(w, d) })
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table, json or yaml")
	cmd.Flags().StringSliceVarP(&profiles, "profile", "p", nil, "only these profiles")
	cmd.Flags().BoolVar(&pre, "pre", false, "let range queries pick prereleases")
	return cmd
}

// lockOrResolve reads arg as a lockfile when such a file exists, else resolves it as a version query.
func (a *app) lockOrResolve(ctx context.Context, arg string, f resolveFlags) (*site.Lock, error) {
	if st, err := os.Stat(arg); err == nil && !st.IsDir() {
		return site.ReadLock(arg)
	} else if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading %s: %w", arg, err)
	}
	f.talos = arg
	return a.resolveLock(ctx, f)
}

func diffTable(w io.Writer, d *site.Drift) error {
	fmt.Fprintf(w, "Talos %s -> %s\n", d.From, d.To)
	for _, p := range d.Profiles {
		fmt.Fprintf(w, "\nprofile %s: %s\n", p.Name, p.Status)
		if p.SchematicFrom != p.SchematicTo && p.SchematicFrom != "" && p.SchematicTo != "" {
			fmt.Fprintf(w, "  schematic %s -> %s\n", p.SchematicFrom[:12], p.SchematicTo[:12])
		}
		if len(p.Changes) == 0 {
			continue
		}
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "  EXTENSION\tCHANGE\tFROM\tTO")
		for _, c := range p.Changes {
			from, to := c.FromVersion, c.ToVersion
			if c.Change == "digest" {
				from, to = short(c.FromDigest), short(c.ToDigest)
			}
			fmt.Fprintf(tw, "  %s\t%s\t%s\t%s\n", c.Name, c.Change, dash(from), dash(to))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	return nil
}

func short(d string) string {
	if d == "" {
		return "(unknown)"
	}
	return d[:min(len(d), 19)]
}
