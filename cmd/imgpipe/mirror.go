package main

import (
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

type mirrorFlags struct {
	lock    string
	mode    string
	jobs    int
	dryRun  bool
	output  string
	journal string
	pin     bool
}

func (a *app) newMirrorCmd() *cobra.Command {
	var f mirrorFlags
	cmd := &cobra.Command{
		Use:   "mirror",
		Short: "Copy or pre-warm the lock's images into the site's local registries, then verify them",
		Long: `mirror moves every image of the lock (Talos core images, extensions, the extensions
catalog, factory installers and imgpipe.yaml's images:) into the local registry that
mirrors its upstream (registries: in imgpipe.yaml; by default host:5000 docker.io,
:5010 ghcr.io, :5020 quay.io, :5030 registry.k8s.io, :5040 reg.kyverno.io).

Modes, per endpoint: push copies by digest into a plain registry, the whole index and
the cosign .sig/.att tags included, existing blobs skipped, the tag written last; warm
pre-seeds a pull-through cache (which refuses pushes) by reading every manifest and blob
through it; auto tries to open an upload and warms on 405. Afterwards every image is
checked at its mirror against the expected digest. Reruns move only what is missing.
Images whose upstream has no mirror are reported, never skipped silently.
Caches expire what they hold (distribution 2.8: 168h after caching); the warm journal
forgets blobs after 6 days, so a weekly rerun warms them again.

Registry credentials come from the Docker config (~/.docker/config.json, $DOCKER_CONFIG).`,
		Example: `  imgpipe mirror --dry-run
  imgpipe mirror --lock imgpipe.lock.json --jobs 8 -o json
  imgpipe mirror --mode warm`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runMirror(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lock, "lock", defaultLockFile, "lockfile to read")
	fl.StringVar(&f.mode, "mode", "", "auto, push or warm for every endpoint (default: as imgpipe.yaml says, else auto)")
	fl.IntVarP(&f.jobs, "jobs", "j", 8, "concurrent blob transfers per registry")
	fl.BoolVar(&f.dryRun, "dry-run", false, "read and compare, write nothing, pull nothing through caches")
	fl.StringVarP(&f.output, "output", "o", formatTable, "output format: table, json or yaml")
	fl.BoolVar(&f.pin, "pin", false, "write digests resolved upstream (for images the lock has none for, once verified at the mirror) into the lock")
	fl.StringVar(&f.journal, "journal", "", `record of warmed blobs that makes warm reruns resumable (default: the user cache dir; "off" disables)`)
	return cmd
}

func (a *app) runMirror(cmd *cobra.Command, f mirrorFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	if f.jobs < 1 {
		return usageErrorf("--jobs must be at least 1")
	}
	var mode registry.Mode
	if f.mode != "" {
		var err error
		if mode, err = registry.ParseMode(f.mode); err != nil {
			return err
		}
	}
	lock, err := a.loadLock(f.lock)
	if err != nil {
		return err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	placements, err := registry.PlanLock(lock, cfg, mode)
	if err != nil {
		return err
	}
	mirrored := 0
	for _, p := range placements {
		if !p.Unmirrored {
			mirrored++
		}
	}
	for _, p := range placements {
		if p.Unmirrored {
			fmt.Fprintf(a.stderr, "warning: %s: no mirror configured for its upstream; reported, not mirrored\n", p.Ref)
		}
	}
	journal := a.journalPath(f.journal)
	pr := newMirrorProgress(a.stderr, mirrored)
	m := registry.New(
		registry.WithJobs(f.jobs),
		registry.WithDryRun(f.dryRun),
		registry.WithKeychain(authn.DefaultKeychain),
		registry.WithJournal(journal, 0),
		registry.WithLogger(a.log),
		registry.WithProgress(pr.event),
	)
	rep, runErr := m.Run(cmd.Context(), placements)
	pr.done()
	if rep == nil {
		return runErr
	}
	if f.pin && !f.dryRun {
		if n := registry.PinDigests(lock, rep); n > 0 {
			path := f.lock
			if path == "" {
				path = defaultLockFile
			}
			if err := site.WriteLock(path, lock); err != nil {
				return err
			}
			fmt.Fprintf(a.stderr, "pinned %d digests in %s\n", n, path)
		}
	}
	return renderResult(a.stdout, f.output, rep, len(rep.Images), func(w io.Writer) error { return mirrorTable(w, rep) }, runErr)
}

// placements loads the lock and config and maps the lock's image set to its mirrors.
func (a *app) placements(lockPath string) (*site.Lock, []registry.Placement, error) {
	lock, err := a.loadLock(lockPath)
	if err != nil {
		return nil, nil, err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return nil, nil, err
	}
	set, err := registry.ImageSet(lock, cfg.Images)
	if err != nil {
		return nil, nil, err
	}
	em, err := registry.NewEndpointMap(cfg.Registries)
	if err != nil {
		return nil, nil, err
	}
	ps, err := registry.Place(set, em)
	return lock, ps, err
}

func mirrorTable(w io.Writer, rep *registry.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tMIRROR\tMODE\tSTATUS\tSIGNATURES\tMOVED\tVERIFIED")
	for _, ir := range rep.Images {
		verified := "-"
		switch {
		case ir.Verified:
			verified = "yes"
		case ir.Status == registry.StatusFailed:
			verified = "no"
		}
		mirror := ir.Mirror
		if mirror == "" {
			mirror = "-"
		}
		mode := string(ir.Mode)
		if mode == "" {
			mode = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%d\t%s\t%s\n", ir.Ref, mirror, mode, ir.Status, len(ir.Signatures), humanBytes(ir.BytesMoved), verified)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	t := rep.Totals
	verb := "moved"
	if rep.DryRun {
		verb = "would move"
	}
	fmt.Fprintf(w, "\n%d images: %d copied, %d present, %d warmed, %d planned, %d unmirrored, %d failed; %d verified\n",
		t.Images, t.Copied, t.Present, t.Warmed, t.Planned, t.Unmirrored, t.Failed, t.Verified)
	fmt.Fprintf(w, "%s %d blobs (%s), %d mounted, %d skipped; %d requests, %d retries, %.1fs\n",
		verb, t.BlobsMoved, humanBytes(t.BytesMoved), t.BlobsMounted, t.BlobsSkipped, t.Requests, t.Retries, t.Seconds)
	for _, ir := range rep.Images {
		if ir.Error != "" {
			fmt.Fprintf(w, "%s: %s\n", ir.Ref, ir.Error)
		}
		for _, n := range ir.Notes {
			fmt.Fprintf(w, "%s: note: %s\n", ir.Ref, n)
		}
	}
	return nil
}

// mirrorProgress reports on stderr: a redrawn status line on a terminal, one line per
// finished image otherwise.
type mirrorProgress struct {
	mu     sync.Mutex
	w      io.Writer
	tty    bool
	total  int
	images int
	bytes  int64
	last   time.Time
}

func newMirrorProgress(w io.Writer, total int) *mirrorProgress {
	tty := isTerminal(w)
	return &mirrorProgress{w: w, tty: tty, total: total}
}

func (p *mirrorProgress) event(e registry.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	switch e.Kind {
	case "blob":
		p.bytes += e.Bytes
	case "image":
		p.images++
		if !p.tty {
			fmt.Fprintf(p.w, "[%d/%d] %s %s\n", p.images, p.total, e.Status, e.Image)
		}
	}
	if p.tty && (time.Since(p.last) > 100*time.Millisecond || e.Kind == "image") {
		p.last = time.Now()
		fmt.Fprintf(p.w, "\r\x1b[Kmirroring: %d/%d images, %s moved", p.images, p.total, humanBytes(p.bytes))
	}
}

func (p *mirrorProgress) done() {
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
}

func (a *app) newImagesCmd() *cobra.Command {
	var lockPath, output string
	cmd := &cobra.Command{
		Use:   "images",
		Short: "List the lock's images as ref@digest, one a line (talosctl image cache-create input)",
		Long: `images prints every image the lock needs: the Talos core set (talosctl images default
for the lock's Talos and Kubernetes versions), each profile's extensions and factory
installer, the extensions catalog, and imgpipe.yaml's images:. An image whose digest the
lock does not know is printed by tag, with a warning on stderr. -o json adds roles,
sources and the mirror reference of each image.`,
		Example: `  imgpipe images --lock imgpipe.lock.json
  imgpipe images | talosctl images cache-create --image-cache-path ./cache --images=-`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			_, placements, err := a.placements(lockPath)
			if err != nil {
				return err
			}
			var unknown, unmirrored []string
			for _, p := range placements {
				if p.Digest == "" {
					unknown = append(unknown, p.Ref)
				}
				if p.Unmirrored {
					unmirrored = append(unmirrored, p.Ref)
				}
			}
			if len(unknown) > 0 {
				fmt.Fprintf(a.stderr, "warning: %d images have no digest in the lock (printed by tag): %s\n", len(unknown), strings.Join(unknown, ", "))
			}
			if len(unmirrored) > 0 && len(unmirrored) < len(placements) {
				fmt.Fprintf(a.stderr, "warning: %d images have no mirror configured: %s\n", len(unmirrored), strings.Join(unmirrored, ", "))
			}
			return render(a.stdout, output, placements, func(w io.Writer) error {
				for _, p := range placements {
					if _, err := fmt.Fprintln(w, p.Pinned()); err != nil {
						return err
					}
				}
				return nil
			})
		},
	}
	cmd.Flags().StringVar(&lockPath, "lock", defaultLockFile, "lockfile to read")
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table (ref@digest lines), json or yaml")
	return cmd
}

// journalPath resolves --journal like registry.JournalPath, but finds the default
// (warm-journal.json in the user cache dir) through the CLI's environment, as
// defaultCacheDir does, rather than the process's.
func (a *app) journalPath(setting string) string {
	if setting == "" {
		if dir, err := a.defaultCacheDir(); err == nil {
			return filepath.Join(dir, "warm-journal.json")
		}
	}
	return registry.JournalPath(setting)
}
