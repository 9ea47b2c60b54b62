package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/site"
)

// Artifact kinds fetch knows.
const (
	artifactISO  = "iso"
	artifactDisk = "disk"
)

// fetchResult is one line of `imgpipe fetch -o json`.
type fetchResult struct {
	Profile string `json:"profile"`
	Kind    string `json:"kind"`
	factory.FetchResult
}

func (a *app) newFetchCmd() *cobra.Command {
	var (
		ff        factoryFlags
		lockPath  string
		profiles  []string
		artifacts []string
		cacheDir  string
		output    string
	)
	cmd := &cobra.Command{
		Use:   "fetch",
		Short: "Download the lock's ISOs and disk images into the cache and record their checksums",
		Long: `fetch downloads each profile's ISO and disk image from the Image Factory into a
content-addressed cache (blobs/sha256/<digest>), computing sha256 and sha512 while
streaming (the public factory publishes no checksums), and records them in the lock.
An interrupted download resumes with HTTP Range; a cached file is re-hashed and used
when it matches the lock, or fetched again when it does not.`,
		Example: `  imgpipe fetch --lock imgpipe.lock.json
  imgpipe fetch --profile worker --artifact iso`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			for _, k := range artifacts {
				if k != artifactISO && k != artifactDisk {
					return usageErrorf("--artifact %q: use iso or disk", k)
				}
			}
			if lockPath == "" {
				lockPath = defaultLockFile
			}
			lock, err := a.loadLock(lockPath)
			if err != nil {
				return err
			}
			sel, err := selectProfiles(lock, profiles)
			if err != nil {
				return err
			}
			t, err := a.newFactory(ff, lock.Factory)
			if err != nil {
				return err
			}
			if cacheDir == "" {
				if cacheDir, err = a.defaultCacheDir(); err != nil {
					return err
				}
			}
			if cacheDir, err = filepath.Abs(cacheDir); err != nil {
				return fmt.Errorf("resolving --cache-dir: %w", err)
			}
			cache := factory.Cache{Dir: cacheDir}
			prog := newProgress(a.stderr)

			var results []fetchResult
			var errs []error
			for _, p := range sel {
				for _, kind := range artifacts {
					lockURL := p.ISO
					if kind == artifactDisk {
						lockURL = p.DiskImage
					}
					if lockURL == "" {
						errs = append(errs, fmt.Errorf("profile %s: the lock has no %s URL", p.Name, kind))
						continue
					}
					u := t.rebaseURL(lockURL)
					var expect *factory.Digests
					if prev := findArtifact(p, kind); prev != nil && prev.URL == u && prev.SHA256 != "" {
						expect = &factory.Digests{Size: prev.Size, SHA256: prev.SHA256, SHA512: prev.SHA512}
					}
					label := p.Name + " " + path.Base(u)
					res, err := t.client.Fetch(cmd.Context(), cache, u, factory.FetchOptions{Expect: expect, Progress: prog.update(label)})
					prog.finish(label, res, err)
					if err != nil {
						if cmd.Context().Err() != nil {
							return err
						}
						errs = append(errs, fmt.Errorf("profile %s %s: %w", p.Name, kind, err))
						continue
					}
					setArtifact(p, site.Artifact{Kind: kind, URL: u, File: res.File, Size: res.Size, SHA256: res.SHA256, SHA512: res.SHA512})
					// Record each artifact as it lands, so an interrupted run keeps what it got.
					if err := site.WriteLock(lockPath, lock); err != nil {
						return err
					}
					results = append(results, fetchResult{Profile: p.Name, Kind: kind, FetchResult: res})
				}
			}
			if err := render(a.stdout, output, results, func(w io.Writer) error { return fetchTable(w, results) }); err != nil {
				return err
			}
			return errors.Join(errs...)
		},
	}
	fl := cmd.Flags()
	ff.bind(fl)
	fl.StringVar(&lockPath, "lock", defaultLockFile, "lockfile to read and update")
	fl.StringSliceVarP(&profiles, "profile", "p", nil, "only these profiles (repeatable or comma-separated)")
	fl.StringSliceVar(&artifacts, "artifact", []string{artifactISO, artifactDisk}, "what to fetch: iso, disk (repeatable or comma-separated)")
	fl.StringVar(&cacheDir, "cache-dir", "", "download cache (default: $XDG_CACHE_HOME/imgpipe or ~/.cache/imgpipe)")
	fl.StringVarP(&output, "output", "o", formatTable, "output format: table, json or yaml")
	return cmd
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

func findArtifact(p *site.Profile, kind string) *site.Artifact {
	for i := range p.Artifacts {
		if p.Artifacts[i].Kind == kind {
			return &p.Artifacts[i]
		}
	}
	return nil
}

// setArtifact replaces the profile's artifact of the same kind, keeping kinds sorted.
func setArtifact(p *site.Profile, a site.Artifact) {
	if prev := findArtifact(p, a.Kind); prev != nil {
		*prev = a
		return
	}
	p.Artifacts = append(p.Artifacts, a)
	slices.SortFunc(p.Artifacts, func(x, y site.Artifact) int {
		switch {
		case x.Kind < y.Kind:
			return -1
		case x.Kind > y.Kind:
			return 1
		}
		return 0
	})
}

func fetchTable(w io.Writer, results []fetchResult) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tKIND\tSIZE\tSHA256\tSTATUS\tFILE")
	for _, r := range results {
		status := "downloaded"
		switch {
		case r.Cached:
			status = "cached"
		case r.Repaired:
			status = "re-fetched (cache was corrupt)"
		case r.ResumedAt > 0:
			status = fmt.Sprintf("resumed at %s", humanBytes(r.ResumedAt))
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", r.Profile, r.Kind, humanBytes(r.Size), r.SHA256, status, r.File)
	}
	return tw.Flush()
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// progress renders download progress on stderr: a redrawn bar on a terminal,
// a plain line every 10% (or 10 s) otherwise, so CI logs stay short.
type progress struct {
	w     io.Writer
	tty   bool
	now   func() time.Time
	start time.Time
	last  time.Time
	step  int64
}

func newProgress(w io.Writer) *progress {
	tty := false
	if f, ok := w.(*os.File); ok {
		if st, err := f.Stat(); err == nil && st.Mode()&os.ModeCharDevice != 0 {
			tty = true
		}
	}
	return &progress{w: w, tty: tty, now: time.Now}
}

func (p *progress) update(label string) func(factory.Progress) {
	p.start, p.last, p.step = p.now(), time.Time{}, -1
	return func(ev factory.Progress) {
		now := p.now()
		verb := "downloading"
		if ev.Phase == "verify" {
			verb = "verifying"
		}
		if p.tty {
			if now.Sub(p.last) < 100*time.Millisecond && ev.Done != ev.Total {
				return
			}
			p.last = now
			fmt.Fprintf(p.w, "\r\x1b[K%s %s %s", verb, label, bar(ev.Done, ev.Total, 30))
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
}

func (p *progress) finish(label string, res factory.FetchResult, err error) {
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	switch {
	case err != nil:
		fmt.Fprintf(p.w, "failed %s\n", label)
	case res.Cached:
		fmt.Fprintf(p.w, "cached %s (%s, verified)\n", label, humanBytes(res.Size))
	default:
		secs := p.now().Sub(p.start).Seconds()
		rate := ""
		if secs > 0 {
			rate = fmt.Sprintf(", %s/s", humanBytes(int64(float64(res.Transferred)/secs)))
		}
		fmt.Fprintf(p.w, "fetched %s (%s%s)\n", label, humanBytes(res.Size), rate)
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
