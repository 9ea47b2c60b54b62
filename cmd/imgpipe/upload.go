package main

import (
	"fmt"
	"io"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
)

// uploadReport is `imgpipe upload -o json`: what was placed, skipped, removed or,
// with --dry-run, would be.
type uploadReport struct {
	What    string           `json:"what"` // iso | template
	DryRun  bool             `json:"dry_run"`
	Results []proxmox.Result `json:"results"`
}

func (a *app) newUploadCmd() *cobra.Command {
	var (
		lockPath string
		cacheDir string
		profiles []string
		dryRun   bool
		caFile   string
		insecure bool
		keep     int
		output   string
	)
	cmd := &cobra.Command{
		Use:   "upload iso|template",
		Short: "Put the lock's Talos ISOs or VM templates on Proxmox VE",
		Long: `upload iso places each profile's ISO on proxmox.storage of every proxmox.nodes
(once when the storage is shared), by download-url (PVE pulls from the factory and
verifies the lock's checksum) or by a streamed upload from this machine
(proxmox.isoMethod). Volume names say whose image it is and what it holds:
talos_<site>_<profile>_<version>_<schematic12>_<platform>-<arch>[-secureboot].iso,
with <site> from proxmox.site ("default" when unset). A rerun skips what is there.

upload template builds one VM template per profile on the first node from the
nocloud disk image (import content, PVE >= 8.4; else the template boots the ISO):
q35, OVMF, x86-64-v2-AES, virtio-scsi-single, the guest agent when the image has
qemu-guest-agent, tagged imgpipe;site-<site>;profile-<name>;talos-<version>;
schematic-<id>;variant-<platform>-<arch>[-secureboot].

--keep N (or proxmox.keep) then removes, for each selected profile (--profile, or
all), all but the newest N of the ISOs, import images and templates that imgpipe
made for this site and profile, images of an older schematic included. Other
sites' and profiles' images, old-style names and anything imgpipe did not make are
never touched. Pruning needs proxmox.site, so that configs sharing a cluster never
prune each other's images.

Every API call has a timeout (proxmox.timeout, default 30s) and idempotent calls
(reads, task polls) are retried on 5xx, 429 (Retry-After honoured) and broken
connections. An upload has no total timeout: it ends when nothing moved for
proxmox.stallTimeout (default 2m). The API token comes from IMGPIPE_PROXMOX_TOKEN
or proxmox.tokenFile.

The lock must carry checksums (run imgpipe fetch first): download-url passes the
sha256 to PVE, which verifies before the file lands; without one imgpipe refuses.
PVE imports only uncompressed .qcow2/.raw: a .qcow2 or .raw disk image goes as is
(by download-url when its checksum is known), a .raw.zst/.raw.gz one is decompressed
while it streams from this machine; .raw.xz is refused (fetch .raw.zst instead).`,
		Example: `  IMGPIPE_PROXMOX_TOKEN=imgpipe@pve!ci=... imgpipe upload iso --dry-run
  imgpipe upload template --profile worker --keep 2 -o json`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"iso", "template"},
		RunE: func(cmd *cobra.Command, args []string) error {
			what := args[0]
			if what != "iso" && what != "template" {
				return usageErrorf("upload %q: use iso or template", what)
			}
			if err := checkFormat(output); err != nil {
				return err
			}
			if keep < -1 {
				return usageErrorf("--keep %d: use 0 (keep all) or more", keep)
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			pc := cfg.Proxmox
			if pc.URL == "" {
				return usageErrorf("proxmox.url is not set in the site config")
			}
			if cmd.Flags().Changed("proxmox-ca") {
				pc.CAFile, pc.Fingerprint = caFile, ""
			}
			if cmd.Flags().Changed("insecure") {
				pc.Insecure = insecure
			}
			if err := proxmox.Validate(pc, keep); err != nil {
				return err
			}
			lock, err := a.loadLock(lockPath)
			if err != nil {
				return err
			}
			if err := a.locateArtifacts(lock, cacheDir); err != nil {
				return err
			}
			c, closeIdle, err := a.proxmoxClient(pc)
			if err != nil {
				return err
			}
			defer closeIdle()
			opt := proxmox.RunOptions{Profiles: profiles, DryRun: dryRun, Keep: keep}
			var res []proxmox.Result
			if what == "iso" {
				res, err = c.UploadISOs(cmd.Context(), pc, lock, opt)
			} else {
				res, err = c.BuildTemplates(cmd.Context(), pc, lock, opt)
			}
			rep := uploadReport{What: what, DryRun: dryRun, Results: res}
			if rep.Results == nil {
				rep.Results = []proxmox.Result{}
			}
			return renderResult(a.stdout, output, rep, len(res), func(w io.Writer) error { return uploadTable(w, rep) }, err)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&lockPath, "lock", defaultLockFile, "lockfile to read (filled by imgpipe resolve and fetch)")
	fl.StringVar(&cacheDir, "cache-dir", "", "download cache imgpipe fetch filled (default: $XDG_CACHE_HOME/imgpipe or ~/.cache/imgpipe)")
	fl.StringSliceVarP(&profiles, "profile", "p", nil, "only these profiles (repeatable or comma-separated)")
	fl.BoolVar(&dryRun, "dry-run", false, "check and report what would change, change nothing")
	fl.StringVar(&caFile, "proxmox-ca", "", "CA bundle to verify the Proxmox API with (overrides proxmox.caFile and proxmox.fingerprint)")
	fl.BoolVar(&insecure, "insecure", false, "do not verify the Proxmox API's TLS certificate")
	fl.IntVar(&keep, "keep", -1, "keep the newest N Talos versions of imgpipe's ISOs/templates, remove older ones (default: proxmox.keep; 0 keeps all)")
	fl.StringVarP(&output, "output", "o", formatTable, "output format: table, json or yaml")
	return cmd
}

// locateArtifacts finds the lock's fetched files in the download cache: the lock
// records digests, not this machine's paths.
func (a *app) locateArtifacts(lock *site.Lock, cacheDir string) error {
	if cacheDir == "" {
		d, err := a.defaultCacheDir()
		if err != nil {
			return nil // no cache to look in; upload says which file is missing
		}
		cacheDir = d
	}
	cache, err := factory.CacheDirAbs(cacheDir)
	if err != nil {
		return err
	}
	cache.Locate(lock)
	return nil
}

func uploadTable(w io.Writer, rep uploadReport) error {
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "PROFILE\tKIND\tNODE\tTARGET\tACTION\tSIZE")
	for _, r := range rep.Results {
		target := r.Volume
		if r.Kind == "template" {
			target = fmt.Sprintf("%d %s", r.VMID, r.Name)
		}
		size := ""
		if r.Bytes > 0 {
			size = humanBytes(r.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", dash(r.Profile), r.Kind, r.Node, target, r.Action, size)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range rep.Results {
		if r.Warning != "" {
			fmt.Fprintf(w, "warning: %s: %s\n", uploadTarget(r), r.Warning)
		}
	}
	return nil
}

func uploadTarget(r proxmox.Result) string {
	if r.Kind == "template" {
		return fmt.Sprintf("template %d", r.VMID)
	}
	return r.Volume
}

// uploadProgress prints upload progress to stderr: a redrawn bar on a terminal,
// a line per 10% otherwise (CI logs).
type uploadProgress struct {
	w     io.Writer
	tty   bool
	last  time.Time
	step  int64
	start time.Time
	name  string
}

func newUploadProgress(w io.Writer) *uploadProgress {
	p := &uploadProgress{w: w, step: -1}
	p.tty = isTerminal(w)
	return p
}

func (p *uploadProgress) report(ev proxmox.Progress) {
	now := time.Now()
	if ev.Name != p.name {
		p.name, p.start, p.step = ev.Name, now, -1
	}
	pct := int64(100)
	if ev.Total > 0 {
		pct = ev.Done * 100 / ev.Total
	}
	rate := ""
	if s := now.Sub(p.start).Seconds(); s > 0 {
		rate = humanBytes(int64(float64(ev.Done)/s)) + "/s"
	}
	if p.tty {
		if now.Sub(p.last) < 100*time.Millisecond && ev.Done != ev.Total {
			return
		}
		p.last = now
		const width = 30
		fill := int(pct * width / 100)
		bar := ""
		for i := 0; i < width; i++ {
			if i < fill {
				bar += "="
			} else {
				bar += " "
			}
		}
		fmt.Fprintf(p.w, "\r\x1b[Kuploading %s to %s [%s] %3d%% %s", ev.Name, ev.Node, bar, pct, rate)
		if ev.Done == ev.Total {
			fmt.Fprintln(p.w)
		}
		return
	}
	if step := pct / 10; step != p.step {
		p.step = step
		fmt.Fprintf(p.w, "uploading %s to %s: %d%% (%s of %s) %s\n", ev.Name, ev.Node, pct, humanBytes(ev.Done), humanBytes(ev.Total), rate)
	}
}

// proxmoxClient builds the Proxmox client for pc: the token from IMGPIPE_PROXMOX_TOKEN or
// proxmox.tokenFile (never a flag), TLS verified unless pc.Insecure, progress on stderr.
func (a *app) proxmoxClient(pc site.ProxmoxConfig) (*proxmox.Client, func(), error) {
	tok, err := proxmox.LoadToken(a.getenv, pc.TokenFile)
	if err != nil {
		return nil, nil, err
	}
	if pc.Insecure {
		fmt.Fprintln(a.stderr, "warning: TLS verification of the Proxmox API is off (--insecure)")
	}
	if pc.Timeout < 0 || pc.StallTimeout < 0 {
		// Validate(pc, 0) says what is wrong with the timeouts (keep 0 asks nothing of proxmox.site).
		return nil, nil, proxmox.Validate(pc, 0)
	}
	hc, err := proxmox.NewHTTPClient(proxmox.TLSOptions{CAFile: pc.CAFile, Fingerprint: pc.Fingerprint, Insecure: pc.Insecure})
	if err != nil {
		return nil, nil, err
	}
	c, err := proxmox.New(pc.URL, tok, hc, proxmox.WithLogger(a.log), proxmox.WithProgress(newUploadProgress(a.stderr).report),
		proxmox.WithTimeout(pc.Timeout), proxmox.WithStallTimeout(pc.StallTimeout))
	if err != nil {
		hc.CloseIdleConnections()
		return nil, nil, err
	}
	return c, hc.CloseIdleConnections, nil
}
