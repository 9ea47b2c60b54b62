package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"text/tabwriter"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/pipeline"
	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
	"github.com/imgpipe/imgpipe/upload/registry"
)

type buildFlags struct {
	resolve   resolveFlags
	factory   factoryFlags
	verify    verifyFlags
	stages    []string
	dryRun    bool
	report    string
	lock      string
	cacheDir  string
	prewarm   bool
	mode      string
	jobs      int
	journal   string
	proxmoxCA string
	insecure  bool
	keep      int
	output    string
}

func (a *app) newBuildCmd() *cobra.Command {
	var f buildFlags
	cmd := &cobra.Command{
		Use:   "build",
		Short: "Run the whole pipeline: resolve, schematic, verify, fetch, mirror, upload",
		Long: `build runs the stages in order over one lock:

  resolve    resolve the site (imgpipe.yaml) for --talos and write the lock
  schematic  register each profile's schematic with the Image Factory (IDs must match)
  verify     check the signatures of every image the lock names (fails closed)
  fetch      download ISOs and disk images into the cache, checksums into the lock
  mirror     copy or pre-warm the images into the site's registries
  upload     put ISOs and VM templates on Proxmox VE

A stage the site does not configure (no registries, no proxmox.url) is reported as
skipped. --report records what each stage did (digests, checksums, volume IDs); a
rerun for the same lock skips the stages that report shows finished, so an
interrupted build resumes where it stopped. --dry-run runs the same code path and
stops before the first mutation.`,
		Example: `  imgpipe build --talos v1.12.x
  imgpipe build --dry-run
  imgpipe build --stages resolve,fetch,upload --report build.json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return a.runBuild(cmd, f) },
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.stages, "stages", nil, "stages to run, comma-separated (default: all of resolve,schematic,verify,fetch,mirror,upload)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "print the plan of every stage and change nothing")
	fl.StringVar(&f.report, "report", "build.json", `build report (JSON) written after every stage and read to resume; "" disables`)
	fl.StringVar(&f.lock, "lock", defaultLockFile, "lockfile: read when present, written by resolve and fetch")
	fl.StringVarP(&f.resolve.talos, "talos", "t", "", "Talos version query (default: the config's talos, else latest)")
	fl.StringVar(&f.resolve.kubernetes, "kubernetes", "", "Kubernetes version or query (default: the release's default)")
	fl.StringSliceVarP(&f.resolve.profiles, "profile", "p", nil, "only these profiles")
	fl.BoolVar(&f.resolve.pre, "pre", false, "let range queries pick prereleases")
	f.factory.bind(fl)
	fl.StringVar(&f.cacheDir, "cache-dir", "", "download cache (default: $XDG_CACHE_HOME/imgpipe or ~/.cache/imgpipe)")
	fl.BoolVar(&f.prewarm, "prewarm", false, "request every installer so the factory builds it now, not during an upgrade")
	fl.StringVar(&f.verify.trustedRoot, "trusted-root", "", "sigstore trusted_root.json for keyless checks (offline, air-gapped)")
	fl.StringVar(&f.verify.factoryKey, "factory-key", "", "pinned Image Factory public key (PEM)")
	fl.BoolVar(&f.verify.mirror, "verify-mirror", false, "read images and signatures through the site mirrors when verifying (air-gapped sites; warms pull-through caches)")
	fl.StringVar(&f.mode, "mode", "", "registry mode for every endpoint: auto, push or warm (default: as imgpipe.yaml says)")
	fl.IntVarP(&f.jobs, "jobs", "j", 8, "concurrent transfers per registry")
	fl.StringVar(&f.journal, "journal", "", `warm journal (default: the user cache dir; "off" disables)`)
	fl.StringVar(&f.proxmoxCA, "proxmox-ca", "", "CA bundle for the Proxmox API (overrides proxmox.caFile)")
	fl.BoolVar(&f.insecure, "insecure", false, "do not verify the Proxmox API's TLS certificate")
	fl.IntVar(&f.keep, "keep", -1, "keep the newest N Talos versions of imgpipe's ISOs/templates (default: proxmox.keep)")
	fl.StringVarP(&f.output, "output", "o", formatTable, "output format of the final report: table, json or yaml")
	return cmd
}

func (a *app) runBuild(cmd *cobra.Command, f buildFlags) error {
	ctx := cmd.Context()
	if err := checkFormat(f.output); err != nil {
		return err
	}
	stages, err := pipeline.ParseStages(f.stages)
	if err != nil {
		return err
	}
	if f.jobs < 1 {
		return usageErrorf("--jobs must be at least 1")
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	if f.factory.url != "" {
		// The resolve stage derives installer refs and URLs from it.
		if err := cfg.OverrideFactory(f.factory.url); err != nil {
			return err
		}
	}
	m, mname, err := a.loadMatrix()
	if err != nil {
		return err
	}
	st := &pipeline.State{Config: cfg, DryRun: f.dryRun}
	if data, err := os.ReadFile(f.lock); err == nil {
		if st.Lock, err = site.ParseLock(f.lock, data); err != nil {
			return err
		}
		if err := st.Lock.CheckMatrix(m); err != nil {
			return fmt.Errorf("%s: %w", f.lock, err)
		}
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("reading lock: %w", err)
	}

	deps := pipeline.Deps{
		Matrix: m, MatrixName: mname,
		Resolve: site.ResolveOptions{Talos: f.resolve.talos, Kubernetes: f.resolve.kubernetes, Pre: f.resolve.pre,
			Profiles: f.resolve.profiles, MatrixName: mname, Now: a.clock()},
		Prewarm: f.prewarm,
	}
	lockFactory := cfg.Factory.URL
	if st.Lock != nil {
		lockFactory = st.Lock.Factory
	}
	ft, err := a.newFactory(f.factory, lockFactory)
	if err != nil {
		return err
	}
	deps.Factory = ft.client
	if ft.from != "" {
		deps.Rebase = ft.rebaseURL
	}
	if f.cacheDir == "" {
		if f.cacheDir, err = a.defaultCacheDir(); err != nil {
			return err
		}
	}
	if deps.Cache, err = factory.CacheDirAbs(f.cacheDir); err != nil {
		return err
	}

	// Verification options need the lock (factory registry credentials); build them
	// when the verify stage runs, from the lock the resolve stage produced.
	deps.Verify = verify.SiteOptions{FactoryKeyFile: f.verify.factoryKey, Log: a.log}
	verifyOpts, err := a.verifyOptions(st.Lock, cfg, f.verify)
	if err != nil {
		return err
	}
	deps.VerifyOptions = verifyOpts

	var mode registry.Mode
	if f.mode != "" {
		if mode, err = registry.ParseMode(f.mode); err != nil {
			return err
		}
	}
	deps.MirrorMode = mode
	deps.Mirror = registry.New(
		registry.WithJobs(f.jobs),
		registry.WithDryRun(f.dryRun),
		registry.WithKeychain(authn.DefaultKeychain),
		registry.WithJournal(a.journalPath(f.journal), 0),
		registry.WithLogger(a.log),
	)

	pc := cfg.Proxmox
	if pc.URL != "" && slices.Contains(stages, pipeline.StageUpload) {
		// A bad proxmox.site/timeouts or a --keep that cannot be scoped is a config
		// error: refuse it now, not after resolve, verify, fetch and mirror have run.
		if err := proxmox.Validate(pc, f.keep); err != nil {
			return err
		}
	}
	if pc.URL != "" {
		if cmd.Flags().Changed("proxmox-ca") {
			pc.CAFile, pc.Fingerprint = f.proxmoxCA, ""
		}
		if cmd.Flags().Changed("insecure") {
			pc.Insecure = f.insecure
		}
		// The token is read when the upload stage runs, not before: `--stages resolve`
		// (or a build that resumes past upload) needs no Proxmox secret.
		var closeIdle func()
		defer func() {
			if closeIdle != nil {
				closeIdle()
			}
		}()
		deps.NewProxmox = func() (*proxmox.Client, error) {
			c, closer, err := a.proxmoxClient(pc)
			closeIdle = closer
			return c, err
		}
		deps.ProxmoxConfig = pc
		deps.Upload.Keep = f.keep
	}

	opts := []pipeline.Option{pipeline.WithEvents(a.buildEvents()), pipeline.WithLockFile(f.lock)}
	if f.report != "" {
		opts = append(opts, pipeline.WithReport(f.report))
	}
	runner, err := pipeline.New(pipeline.Stages(deps), opts...)
	if err != nil {
		return err
	}
	rep, runErr := runner.Run(ctx, stages, st)
	if runErr == nil && !f.dryRun && st.Lock != nil {
		// The resolve stage may have produced the lock without any later stage changing it.
		if err := site.WriteLock(f.lock, st.Lock); err != nil {
			return err
		}
	}
	if rep != nil {
		if err := render(a.stdout, f.output, rep, func(w io.Writer) error { return buildTable(w, rep) }); err != nil {
			return err
		}
	}
	return runErr
}

// buildEvents prints one line per stage event on stderr, with the time since the build
// started; in CI logs that is the progress display.
func (a *app) buildEvents() pipeline.EventFunc {
	start := time.Now()
	return func(e pipeline.Event) {
		el := e.Time.Sub(start).Truncate(100 * time.Millisecond)
		switch e.Kind {
		case "start", "plan":
			fmt.Fprintf(a.stderr, "[%6s] %s: %s\n", el, e.Stage, map[string]string{"start": "started", "plan": "planning"}[e.Kind])
		case "done":
			fmt.Fprintf(a.stderr, "[%6s] %s: done in %s\n", el, e.Stage, e.Message)
		case "skip":
			fmt.Fprintf(a.stderr, "[%6s] %s: skipped (%s)\n", el, e.Stage, a.redact(e.Message))
		case "fail":
			fmt.Fprintf(a.stderr, "[%6s] %s: FAILED\n", el, e.Stage)
		default:
			fmt.Fprintf(a.stderr, "[%6s] %s: %s\n", el, e.Stage, a.redact(e.Message))
		}
	}
}

func buildTable(w io.Writer, rep *pipeline.Report) error {
	mode := ""
	if rep.DryRun {
		mode = " (dry run: nothing changed)"
	}
	fmt.Fprintf(w, "build of Talos %s%s\n", rep.Talos, mode)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "STAGE\tSTATUS\tTIME\tNOTE")
	for _, s := range rep.Stages {
		note := s.Error
		if note == "" && len(s.Summary) > 0 && len(s.Summary) < 120 {
			note = string(s.Summary)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", s.Name, s.Status, (time.Duration(s.DurationMS) * time.Millisecond).String(), note)
	}
	return tw.Flush()
}
