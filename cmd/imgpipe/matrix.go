package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"text/tabwriter"

	"github.com/Masterminds/semver/v3"
	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

func (a *app) newMatrixCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "matrix",
		Short: "Maintain the compatibility matrix (matrix.yaml)",
	}
	cmd.AddCommand(a.newMatrixRefreshCmd())
	return cmd
}

// refreshOutput is `imgpipe matrix refresh -o json`.
type refreshOutput struct {
	Matrix  string `json:"matrix"`
	Written bool   `json:"written"`
	*factory.RefreshReport
}

func (a *app) newMatrixRefreshCmd() *cobra.Command {
	var (
		ff         factoryFlags
		since      string
		crossCheck bool
		dryRun     bool
		output     string
	)
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Rebuild the matrix's extension catalogs from the Image Factory",
		Long: `refresh reads the factory's versions, broken versions and each release's official
extension catalog (/version/<v>/extensions/official) and merges them into the matrix:
tags and digests come from the factory; dates, Kubernetes defaults, core images, notes,
tiers and broken flags set by the site are kept. A release new to the matrix is eligible
for range queries at once (the factory listing it is a primary source) and records
firstSeen, from which imgpipe.yaml's minimumReleaseAge soak counts; its Kubernetes default
and core images are copied from the previous patch with a note (the factory publishes
neither). A release the factory lists is no longer unverified. The output is
deterministic, so a refresh changes only the lines whose data changed.

With --matrix F, F is rewritten (atomically) and the change report goes to stdout;
without it, the refreshed embedded matrix goes to stdout and the report to stderr.
--cross-check also compares each release with the image-digests file of
ghcr.io/siderolabs/extensions:<v>, read through the site's ghcr.io mirror when the config
has one. Features a factory lacks (broken versions, a catalog image) degrade to notes.`,
		Example: `  imgpipe matrix refresh --matrix matrix.yaml --since v1.9.0
  imgpipe matrix refresh --since v1.12.0 --cross-check --dry-run --matrix matrix.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			base, name, err := a.refreshBase()
			if err != nil {
				return err
			}
			if since == "" && len(base.Releases) > 0 {
				since = base.Releases[0].Version
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			if ff.url == "" {
				ff.url = cfg.Factory.URL
			}
			m, rep, err := a.onlineMatrix(cmd.Context(), base, ff, since)
			if err != nil {
				return err
			}
			if crossCheck {
				a.crossCheck(cmd.Context(), cfg, ff, m, since, rep)
			}
			data, err := compat.Marshal(m)
			if err != nil {
				return err
			}
			if a.matrixPath == "" {
				if !dryRun {
					if _, err := a.stdout.Write(data); err != nil {
						return err
					}
				}
				return refreshTable(a.stderr, rep)
			}
			out := refreshOutput{Matrix: name, RefreshReport: rep}
			if !dryRun {
				if err := site.WriteFileAtomic(a.matrixPath, data, 0o644); err != nil {
					return err
				}
				out.Written = true
			}
			return render(a.stdout, output, out, func(w io.Writer) error { return refreshTable(w, rep) })
		},
	}
	fl := cmd.Flags()
	ff.bind(fl)
	fl.StringVar(&since, "since", "", "oldest Talos version to refresh (default: the matrix's oldest release)")
	fl.BoolVar(&crossCheck, "cross-check", false, "also compare with each release's ghcr.io/siderolabs/extensions:<v> image-digests")
	fl.BoolVar(&dryRun, "dry-run", false, "report the changes without writing the matrix")
	fl.StringVarP(&output, "output", "o", formatTable, "report format: table, json or yaml")
	return cmd
}

// refreshBase is the matrix to refresh: --matrix when it exists, else the embedded one.
func (a *app) refreshBase() (*compat.Matrix, string, error) {
	if a.matrixPath != "" {
		if _, err := os.Stat(a.matrixPath); errors.Is(err, fs.ErrNotExist) {
			a.log.Info("matrix file does not exist; starting from the embedded matrix", "path", a.matrixPath)
			m, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
			return m, a.matrixPath, err
		}
	}
	return a.loadMatrix()
}

// onlineMatrix reads the live factory catalogs (every release >= since, default the
// base matrix's oldest) and merges them into base, returning the live matrix and
// what differs from base. `imgpipe resolve --online` uses it in place of the
// embedded matrix.
func (a *app) onlineMatrix(ctx context.Context, base *compat.Matrix, ff factoryFlags, since string) (*compat.Matrix, *factory.RefreshReport, error) {
	if since == "" && len(base.Releases) > 0 {
		since = base.Releases[0].Version
	}
	t, err := a.newFactory(ff, "")
	if err != nil {
		return nil, nil, err
	}
	if err := t.client.Health(ctx); err != nil {
		a.log.Debug("factory health probe failed; trying the catalogs anyway", "err", err)
	}
	m, rep, err := t.client.Refresh(ctx, base, factory.RefreshOptions{Since: since})
	if err != nil {
		return nil, nil, fmt.Errorf("refreshing the matrix from %s: %w", t.client.BaseURL(), err)
	}
	return m, rep, nil
}

// crossCheck compares each refreshed release with its extensions catalog image,
// through the site's ghcr.io mirror when there is one. Failures become notes.
func (a *app) crossCheck(ctx context.Context, cfg *site.Config, ff factoryFlags, m *compat.Matrix, since string, rep *factory.RefreshReport) {
	eps, err := registry.NewEndpointMap(cfg.Registries)
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("catalog cross-check skipped: %v", err))
		return
	}
	t, err := a.newFactory(ff, "")
	if err != nil {
		rep.Notes = append(rep.Notes, fmt.Sprintf("catalog cross-check skipped: %v", err))
		return
	}
	for _, r := range m.Releases {
		if since != "" && talosBefore(r.Version, since) {
			continue
		}
		ref, insecure := factory.CatalogImageRef(r.Version), false
		if mref, ep, err := eps.MirrorRef(ref); err == nil && mref != "" {
			ref, insecure = mref, ep.Insecure
		}
		entries, err := factory.ReadCatalogImage(ctx, ref, insecure)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: catalog cross-check skipped: %v", r.Version, err))
			continue
		}
		list, err := t.client.Extensions(ctx, r.Version)
		if err != nil {
			rep.Notes = append(rep.Notes, fmt.Sprintf("%s: catalog cross-check skipped: %v", r.Version, err))
			continue
		}
		rep.Changes = append(rep.Changes, factory.CrossCheck(r.Version, list, entries)...)
	}
}

// talosBefore reports whether Talos version a sorts before b.
func talosBefore(a, b string) bool {
	va, ea := semver.NewVersion(strings.TrimPrefix(a, "v"))
	vb, eb := semver.NewVersion(strings.TrimPrefix(b, "v"))
	if ea != nil || eb != nil {
		return a < b
	}
	return va.LessThan(vb)
}

func refreshTable(w io.Writer, rep *factory.RefreshReport) error {
	fmt.Fprintf(w, "factory %s: %d changes\n", rep.Factory, len(rep.Changes))
	if len(rep.Changes) > 0 {
		tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "RELEASE\tCHANGE\tEXTENSION\tOLD\tNEW")
		for _, c := range rep.Changes {
			fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.Release, c.Kind, dash(c.Extension), dash(c.Old), dash(c.New))
		}
		if err := tw.Flush(); err != nil {
			return err
		}
	}
	for _, n := range rep.Notes {
		fmt.Fprintf(w, "note: %s\n", n)
	}
	return nil
}

// resolveMatrixOnline is what `imgpipe resolve --online` resolves against: the
// matrix (embedded, or --matrix) with every release's extension catalog replaced by
// the live one from the config's factory (or ff.url), plus the report of what differs
// from that matrix (new patch releases, changed or newly known digests, broken
// flags). ff comes from factoryFlags.bind (its zero timeout is refused). The
// returned name goes into the lock's matrix field.
func (a *app) resolveMatrixOnline(ctx context.Context, ff factoryFlags) (*compat.Matrix, string, *factory.RefreshReport, error) {
	base, name, err := a.loadMatrix()
	if err != nil {
		return nil, "", nil, err
	}
	if ff.url == "" {
		cfg, err := a.loadConfig()
		if err != nil {
			return nil, "", nil, err
		}
		ff.url = cfg.Factory.URL
	}
	m, rep, err := a.onlineMatrix(ctx, base, ff, "")
	if err != nil {
		return nil, "", nil, err
	}
	return m, name + " + online " + rep.Factory, rep, nil
}

// onlineNotes renders what a refresh report says about one resolved release as
// lock notes: its own changes (digests, tags, extensions, broken), every new
// release the factory offers (a newer patch to consider), and degraded features.
func onlineNotes(rep *factory.RefreshReport, talos string) []string {
	var out []string
	for _, c := range rep.Changes {
		if c.Release == talos && c.Kind != factory.ChangeNotOffered || c.Kind == factory.ChangeNewRelease {
			out = append(out, "online: "+c.String())
		}
	}
	for _, n := range rep.Notes {
		out = append(out, "online: "+n)
	}
	return out
}
