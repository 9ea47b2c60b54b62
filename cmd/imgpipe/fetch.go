package main

import (
	"fmt"
	"io"
	"path"
	"path/filepath"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/site"
)

func (a *app) newFetchCmd() *cobra.Command {
	var (
		ff        factoryFlags
		lockPath  string
		profiles  []string
		artifacts []string
		cacheDir  string
		output    string
		dryRun    bool
	)
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Download the lock's ISOs and disk images into the cache and record their checksums",
		Long: `fetch downloads each profile's ISO and disk image from the Image Factory into a
content-addressed cache (blobs/sha256/<digest>), computing sha256 and sha512 while
streaming (the public factory publishes no checksums), and records them in the lock.
An interrupted download resumes with HTTP Range; a cached file is re-hashed and used
when it matches the lock, or fetched again when it does not. --dry-run says what would
be downloaded, resumed or taken from the cache, and changes nothing.`,
		Example: `  imgpipe fetch --lock imgpipe.lock.json
  imgpipe fetch --profile worker --artifact iso
  imgpipe fetch --dry-run -o json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			if lockPath == "" {
				lockPath = defaultLockFile
			}
			lock, t, err := a.lockFactory(lockPath, ff)
			if err != nil {
				return err
			}
			if cacheDir == "" {
				if cacheDir, err = a.defaultCacheDir(); err != nil {
					return err
				}
			}
			cache, err := factory.CacheDirAbs(cacheDir)
			if err != nil {
				return err
			}
			prog := newProgress(a.stderr)
			label := func(profile, kind string) string {
				u := findURL(lock, profile, kind)
				return profile + " " + path.Base(t.rebaseURL(u))
			}
			results, err := t.client.FetchLock(cmd.Context(), lock, cache, factory.LockOptions{
				Profiles: profiles,
				Kinds:    artifacts,
				Rebase:   t.rebaseURL,
				DryRun:   dryRun,
				Progress: func(profile, kind string, p factory.Progress) {
					prog.report(label(profile, kind), p)
				},
				// Record each artifact as it lands, so an interrupted run keeps what it got.
				Recorded: func() error { return site.WriteLock(lockPath, lock) },
			})
			for _, r := range results {
				prog.finish(label(r.Profile, r.Kind), r)
			}
			return renderResult(a.stdout, output, results, len(results), func(w io.Writer) error { return fetchTable(w, results) }, err)
		},
	}
	fl := cmd.Flags()
	ff.bind(fl)
	fl.StringVar(&lockPath, "lock", defaultLockFile, "lockfile to read and update")
	fl.StringSliceVarP(&profiles, "profile", "p", nil, "only these profiles (repeatable or comma-separated)")
	fl.StringSliceVar(&artifacts, "artifact", []string{factory.ArtifactISO, factory.ArtifactDisk}, "what to fetch: iso, disk (repeatable or comma-separated)")
	fl.StringVar(&cacheDir, "cache-dir", "", "download cache (default: $XDG_CACHE_HOME/imgpipe or ~/.cache/imgpipe)")
	fl.StringVarP(&output, "output", "o", formatTable, "output format: table, json or yaml")
	fl.BoolVar(&dryRun, "dry-run", false, "say what would be downloaded or taken from the cache; change nothing")
	return cmd
}

// findURL is the lock URL of one profile's artifact.
func findURL(l *site.Lock, profile, kind string) string {
	p, ok := l.Profile(profile)
	if !ok {
		return ""
	}
	if kind == factory.ArtifactDisk {
		return p.DiskImage
	}
	return p.ISO
}

func (a *app) defaultCacheDir() (string, error) {
	if x := a.getenv("XDG_CACHE_HOME"); x != "" {
		return filepath.Join(x, "imgpipe"), nil
	}
	if h := a.getenv("HOME"); h != "" {
		return filepath.Join(h, ".cache", "imgpipe"), nil
	}
	return "", usageErrorf("no cache directory: set --cache-dir, XDG_CACHE_HOME or HOME")
}

func fetchTable(w io.Writer, results []factory.ArtifactResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tKIND\tSIZE\tSHA256\tSTATUS\tFILE")
	for _, r := range results {
		status := map[string]string{
			factory.ActionDownload: "downloaded",
			factory.ActionCached:   "cached",
			factory.ActionRefetch:  "re-fetched (cache was corrupt)",
			factory.ActionResume:   fmt.Sprintf("resumed at %s", humanBytes(r.ResumedAt)),
		}[r.Action]
		size, sum, file := humanBytes(r.Size), r.SHA256, r.File
		if r.Planned {
			status = map[string]string{
				factory.ActionDownload: "would download",
				factory.ActionCached:   "cached (verified)",
				factory.ActionRefetch:  "would re-fetch (cache is corrupt)",
				factory.ActionResume:   fmt.Sprintf("would resume at %s", humanBytes(r.ResumedAt)),
			}[r.Action]
			if r.Size == 0 {
				size = "?"
			}
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Profile, r.Kind, size, dash(sum), status, dash(file))
	}
	return tw.Flush()
}

// progress renders download progress on stderr: a redrawn bar on a terminal,
// a plain line every 10% (or 10 s) otherwise, so CI logs stay short.
type progress struct {
	w   io.Writer
	tty bool
	now func() time.Time

	label  string
	last   time.Time
	step   int64
	starts map[string]time.Time
	ends   map[string]time.Time
}

func newProgress(w io.Writer) *progress {
	tty := isTerminal(w)
	return &progress{w: w, tty: tty, now: time.Now, starts: map[string]time.Time{}, ends: map[string]time.Time{}}
}

// report renders one progress event of the artifact called label.
func (p *progress) report(label string, ev factory.Progress) {
	now := p.now()
	if label != p.label {
		if p.tty && p.label != "" {
			fmt.Fprint(p.w, "\r\x1b[K")
		}
		p.label, p.last, p.step = label, time.Time{}, -1
	}
	if _, ok := p.starts[label]; !ok {
		p.starts[label] = now
	}
	p.ends[label] = now
	verb := "downloading"
	if ev.Phase == "verify" {
		verb = "verifying"
	}
	if p.tty {
		if now.Sub(p.last) < 100*time.Millisecond && ev.Done != ev.Total {
			return
		}
		p.last = now
		rate := ""
		if secs := now.Sub(p.starts[label]).Seconds(); secs > 0.5 {
			rate = fmt.Sprintf(" %s/s", humanBytes(int64(float64(ev.Done)/secs)))
		}
		fmt.Fprintf(p.w, "\r\x1b[K%s %s %s%s", verb, label, bar(ev.Done, ev.Total, 30), rate)
		return
	}
	var step int64
	if ev.Total > 0 {
		step = ev.Done * 10 / ev.Total
	}
	if step == p.step && now.Sub(p.last) < 10*time.Second {
		return
	}
	p.step, p.last = step, now
	if ev.Total > 0 {
		fmt.Fprintf(p.w, "%s %s: %d%% (%s of %s)\n", verb, label, ev.Done*100/ev.Total, humanBytes(ev.Done), humanBytes(ev.Total))
	} else {
		fmt.Fprintf(p.w, "%s %s: %s\n", verb, label, humanBytes(ev.Done))
	}
}

// finish prints the summary line of one artifact.
func (p *progress) finish(label string, r factory.ArtifactResult) {
	if p.tty && p.label != "" {
		fmt.Fprint(p.w, "\r\x1b[K")
		p.label = ""
	}
	switch {
	case r.Planned:
	case r.Cached:
		fmt.Fprintf(p.w, "cached %s (%s, verified)\n", label, humanBytes(r.Size))
	default:
		rate := ""
		if secs := p.ends[label].Sub(p.starts[label]).Seconds(); secs > 0 {
			rate = fmt.Sprintf(", %s/s", humanBytes(int64(float64(r.Transferred)/secs)))
		}
		fmt.Fprintf(p.w, "fetched %s (%s%s)\n", label, humanBytes(r.Size), rate)
	}
}

func bar(done, total int64, width int) string {
	if total <= 0 {
		return humanBytes(done)
	}
	n := int(done * int64(width) / total)
	b := make([]byte, width)
	for i := range b {
		switch {
		case i < n:
			b[i] = '='
		case i == n:
			b[i] = '>'
		default:
			b[i] = ' '
		}
	}
	return fmt.Sprintf("[%s] %3d%% %s/%s", b, done*100/total, humanBytes(done), humanBytes(total))
}
