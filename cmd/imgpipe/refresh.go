package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline"
	"github.com/imgpipe/imgpipe/site"
)

type refreshFlags struct {
	factory      factoryFlags
	talos        string
	force        bool
	pre          bool
	lock         string
	drift        string
	githubOutput string
	output       string
}

func (a *app) newRefreshCmd() *cobra.Command {
	var f refreshFlags
	cmd := &cobra.Command{
		Use:   "refresh",
		Short: "Decide whether the site needs a new build: refresh the matrix, re-resolve, compare with the lock",
		Long: `refresh is the scheduled build's decision. It refreshes the matrix from the site's
Image Factory (writing --matrix), re-resolves the site (imgpipe.yaml is required: the
built-in default site is never built on a schedule) and compares the result with the
committed lock. When the resolution changed (notes and fetched artifacts aside), or
there is no committed lock, or --force, it writes the new lock and reports
changed=true with the reasons; otherwise the lock is left as it is. matrix_changed says
the refreshed matrix differs from the committed one (it records new releases' firstSeen,
from which a soak counts, so it must be committed even without a rebuild); publish is
changed or matrix_changed.

--drift writes the decision as Markdown for a pull-request body; --github-output
appends the step outputs changed, publish, first, old_talos, new_talos, branch, title
and drift to the file (GitHub's $GITHUB_OUTPUT). Release eligibility follows resolve:
broken releases are never picked, and imgpipe.yaml's minimumReleaseAge soaks new ones.`,
		Example: `  imgpipe refresh --matrix matrix.yaml --lock imgpipe.lock.json --drift drift.md --github-output "$GITHUB_OUTPUT"
  imgpipe refresh --matrix matrix.yaml --talos v1.13.x --force -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runRefresh(cmd, f) },
	}
	fl := cmd.Flags()
	f.factory.bind(fl)
	fl.StringVarP(&f.talos, "talos", "t", "", "Talos version query (default: the config's talos, else latest)")
	fl.BoolVar(&f.force, "force", false, "report changed even when nothing changed (a manual rebuild)")
	fl.BoolVar(&f.pre, "pre", false, "let range queries pick prereleases and unverified releases")
	fl.StringVar(&f.lock, "lock", defaultLockFile, "committed lockfile to compare with; rewritten when changed")
	fl.StringVar(&f.drift, "drift", "", "write the decision as Markdown (a pull-request body) to this file")
	fl.StringVar(&f.githubOutput, "github-output", "", "append step outputs (name=value lines) to this file, e.g. $GITHUB_OUTPUT")
	fl.StringVarP(&f.output, "output", "o", formatTable, "output format: table, json or yaml")
	return cmd
}

func (a *app) runRefresh(cmd *cobra.Command, f refreshFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	sitePath, cfg, err := a.requireSiteConfig()
	if err != nil {
		return err
	}
	base, _, err := a.refreshBase()
	if err != nil {
		return err
	}
	if f.talos != "" {
		// A bad query from a workflow_dispatch input is a usage error before any request.
		if _, err := base.ResolveDetail(f.talos, compat.ResolveOptions{Pre: true}); errors.Is(err, fail.ErrUsage) {
			return fmt.Errorf("--talos: %w", err)
		}
	}
	old, err := readLockIfAny(f.lock)
	if err != nil {
		return err
	}
	ff := f.factory
	if ff.url == "" {
		ff.url = cfg.Factory.URL
	}
	m, rep, err := a.onlineMatrix(cmd.Context(), base, ff, "")
	if err != nil {
		return err
	}
	mname := "embedded"
	if a.matrixPath != "" {
		mname = portableName(a.matrixPath)
	}
	lock, err := site.Resolve(m, cfg, site.ResolveOptions{Talos: f.talos, Pre: f.pre, MatrixName: mname, Now: a.clock()})
	if err != nil {
		return err
	}
	mdata, mchanged, err := a.refreshedMatrix(m)
	if err != nil {
		return err
	}
	d, err := pipeline.Decide(pipeline.RefreshInput{Old: old, New: lock, Report: rep, Site: portableName(sitePath),
		Force: f.force, MatrixChanged: mchanged})
	if err != nil {
		return err
	}
	if mchanged {
		if err := site.WriteFileAtomic(a.matrixPath, mdata, 0o644); err != nil {
			return err
		}
	}
	if err := a.writeRefresh(f, lock, d, rep); err != nil {
		return err
	}
	return render(a.stdout, f.output, d, func(w io.Writer) error { return d.Markdown(w, rep) })
}

// requireSiteConfig returns the site config's path and content; a scheduled refresh
// never falls back to the built-in default site.
func (a *app) requireSiteConfig() (string, *site.Config, error) {
	path := a.configPath
	if path == "" {
		path = defaultConfigFile
	}
	if _, err := os.Stat(path); err != nil {
		return "", nil, usageErrorf("refresh needs the site config %s (%v): commit one; the built-in default site is not built on a schedule", path, err)
	}
	cfg, err := a.loadConfig()
	return path, cfg, err
}

func readLockIfAny(path string) (*site.Lock, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading lock: %w", err)
	}
	return site.ParseLock(path, data)
}

// refreshedMatrix encodes m and says whether it differs from the --matrix file
// (false without --matrix: the embedded matrix is not written).
func (a *app) refreshedMatrix(m *compat.Matrix) ([]byte, bool, error) {
	if a.matrixPath == "" {
		return nil, false, nil
	}
	data, err := compat.Marshal(m)
	if err != nil {
		return nil, false, err
	}
	cur, err := os.ReadFile(a.matrixPath)
	return data, err != nil || !bytes.Equal(cur, data), nil
}

// writeRefresh writes the new lock (when the decision changed), the drift Markdown
// and the step outputs.
func (a *app) writeRefresh(f refreshFlags, lock *site.Lock, d *pipeline.RefreshDecision, rep *factory.RefreshReport) error {
	if d.Changed {
		if err := site.WriteLock(f.lock, lock); err != nil {
			return err
		}
	}
	if f.drift != "" {
		var buf bytes.Buffer
		if err := d.Markdown(&buf, rep); err != nil {
			return err
		}
		if err := site.WriteFileAtomic(f.drift, buf.Bytes(), 0o644); err != nil {
			return err
		}
	}
	if f.githubOutput == "" {
		return nil
	}
	out, err := d.GitHubOutputs(f.drift)
	if err != nil {
		return err
	}
	fh, err := os.OpenFile(f.githubOutput, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o644)
	if err != nil {
		return fmt.Errorf("writing step outputs: %w", err)
	}
	if _, err := fh.Write(out); err != nil {
		fh.Close()
		return fmt.Errorf("writing step outputs: %w", err)
	}
	return fh.Close()
}
