package main

import (
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

// Environment variables holding a self-hosted factory's basic-auth credentials.
const (
	envFactoryUser = "IMGPIPE_FACTORY_USERNAME"
	envFactoryPass = "IMGPIPE_FACTORY_PASSWORD"
)

// factoryFlags are the flags every factory-facing command shares.
type factoryFlags struct {
	url     string
	timeout time.Duration
	retries int
}

func (f *factoryFlags) bind(fs *pflag.FlagSet) {
	fs.StringVar(&f.url, "factory", "", "Image Factory URL, e.g. a self-hosted one (default: the lock's, else the config's factory.url); credentials come from "+envFactoryUser+"/"+envFactoryPass)
	fs.DurationVar(&f.timeout, "timeout", factory.DefaultTimeout, "timeout of one factory request attempt (downloads: wait for headers and longest stall)")
	fs.IntVar(&f.retries, "retries", factory.DefaultRetryPolicy().Attempts-1, "retries after a 429, 5xx or broken connection, with exponential backoff (Retry-After honoured)")
}

// factoryTarget is the factory a command talks to and how lock URLs map onto it.
type factoryTarget struct {
	client *factory.Client
	// from is the factory URL the lock was resolved against, when --factory overrides it.
	from string
}

// newFactory builds a client for --factory, else lockFactory, else the config's factory.url.
func (a *app) newFactory(f factoryFlags, lockFactory string) (*factoryTarget, error) {
	if err := checkFlagURL("--factory", f.url); err != nil {
		return nil, err
	}
	base := f.url
	if base == "" {
		base = lockFactory
	}
	if base == "" {
		cfg, err := a.loadConfig()
		if err != nil {
			return nil, err
		}
		base = cfg.Factory.URL
	}
	if base == "" {
		base = factory.DefaultURL
	}
	if f.timeout <= 0 {
		return nil, usageErrorf("--timeout must be positive, got %s", f.timeout)
	}
	if f.retries < 0 {
		return nil, usageErrorf("--retries must not be negative, got %d", f.retries)
	}
	pol := factory.DefaultRetryPolicy()
	pol.Attempts = f.retries + 1
	opts := []factory.Option{factory.WithTimeout(f.timeout), factory.WithRetryPolicy(pol), factory.WithLogger(a.log)}
	user, pass := a.getenv(envFactoryUser), a.getenv(envFactoryPass)
	if (user == "") != (pass == "") {
		return nil, usageErrorf("set both %s and %s, or neither", envFactoryUser, envFactoryPass)
	}
	if user != "" {
		opts = append(opts, factory.WithBasicAuth(user, pass))
	}
	c, err := factory.New(base, opts...)
	if err != nil {
		return nil, fail.Usage(fmt.Errorf("--factory: %w", err))
	}
	t := &factoryTarget{client: c}
	if f.url != "" && lockFactory != "" && strings.TrimRight(lockFactory, "/") != c.BaseURL() {
		t.from = strings.TrimRight(lockFactory, "/")
	}
	return t, nil
}

// rebaseURL points a lock URL at the --factory override.
func (t *factoryTarget) rebaseURL(u string) string {
	if t.from != "" && strings.HasPrefix(u, t.from+"/") {
		return t.client.BaseURL() + strings.TrimPrefix(u, t.from)
	}
	return u
}

// rebaseRef points an installer reference at the --factory override's registry.
func (t *factoryTarget) rebaseRef(ref string) string {
	if t.from == "" {
		return ref
	}
	from, err := url.Parse(t.from)
	if err != nil {
		return ref
	}
	if rest, ok := strings.CutPrefix(ref, from.Host+"/"); ok {
		return t.client.Registry() + "/" + rest
	}
	return ref
}

func (a *app) newSchematicCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "schematic",
		Short: "Make sure the factory knows the lock's schematics; pre-warm installers",
	}
	cmd.AddCommand(a.newSchematicPushCmd(), a.newSchematicPrewarmCmd())
	return cmd
}

func (a *app) newSchematicPushCmd() *cobra.Command {
	var (
		ff       factoryFlags
		lockPath string
		profiles []string
		output   string
		dryRun   bool
	)
	cmd := &cobra.Command{
		Use:   "push",
		Short: "POST each profile's schematic to the factory and check the ID it returns",
		Long: `push sends each profile's schematic (from the lock) to the Image Factory, requires the
ID the factory returns to equal the lock's (an Enterprise factory, which adds an owner,
returns another one), and reads it back. Running it again changes nothing. --dry-run
only asks the factory whether it knows each schematic.`,
		Example: `  imgpipe schematic push --lock imgpipe.lock.json
  IMGPIPE_FACTORY_USERNAME=ci IMGPIPE_FACTORY_PASSWORD=... imgpipe schematic push --factory https://factory.example`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			lock, t, err := a.lockFactory(lockPath, ff)
			if err != nil {
				return err
			}
			results, err := t.client.EnsureLock(cmd.Context(), lock, factory.LockOptions{Profiles: profiles, DryRun: dryRun})
			if err != nil {
				return err
			}
			return render(a.stdout, output, results, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "PROFILE\tSCHEMATIC\tFACTORY\tSTATUS")
				for _, r := range results {
					status := map[string]string{factory.ActionEnsured: "ok", factory.ActionPresent: "present", factory.ActionCreate: "would create"}[r.Action]
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Profile, r.ID, r.Factory, status)
				}
				return tw.Flush()
			})
		},
	}
	fl := cmd.Flags()
	ff.bind(fl)
	fl.StringVar(&lockPath, "lock", defaultLockFile, "lockfile to read")
	fl.StringSliceVarP(&profiles, "profile", "p", nil, "only these profiles (repeatable or comma-separated)")
	fl.StringVarP(&output, "output", "o", formatTable, "output format: table, json or yaml")
	fl.BoolVar(&dryRun, "dry-run", false, "only check whether the factory knows each schematic; post nothing")
	return cmd
}

func (a *app) newSchematicPrewarmCmd() *cobra.Command {
	var (
		ff           factoryFlags
		lockPath     string
		profiles     []string
		output       string
		buildTimeout time.Duration
		dryRun       bool
	)
	cmd := &cobra.Command{
		Use:   "prewarm",
		Short: "Request each profile's installer from the factory registry so it is built before an upgrade",
		Long: `prewarm asks the factory registry for each profile's installer manifest. The factory
builds an installer on its first pull, which can take minutes; doing it ahead of an
upgrade keeps nodes from waiting on it. Each request may take up to --build-timeout.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			lock, t, err := a.lockFactory(lockPath, ff)
			if err != nil {
				return err
			}
			if !dryRun {
				fmt.Fprintln(a.stderr, "pre-warming installers (a first build can take minutes)")
			}
			results, err := t.client.PrewarmLock(cmd.Context(), lock, buildTimeout, factory.LockOptions{Profiles: profiles, Rebase: t.rebaseRef, DryRun: dryRun})
			if err != nil {
				return err
			}
			return render(a.stdout, output, results, func(w io.Writer) error {
				tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
				fmt.Fprintln(tw, "PROFILE\tINSTALLER\tDIGEST\tTOOK")
				for _, r := range results {
					took := r.Took.Round(time.Millisecond).String()
					if r.Planned {
						took = "(dry run)"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", r.Profile, r.Ref, dash(r.Digest), took)
				}
				return tw.Flush()
			})
		},
	}
	fl := cmd.Flags()
	ff.bind(fl)
	fl.StringVar(&lockPath, "lock", defaultLockFile, "lockfile to read")
	fl.StringSliceVarP(&profiles, "profile", "p", nil, "only these profiles (repeatable or comma-separated)")
	fl.StringVarP(&output, "output", "o", formatTable, "output format: table, json or yaml")
	fl.DurationVar(&buildTimeout, "build-timeout", factory.DefaultBuildTimeout, "how long one installer request may take (an on-demand build)")
	fl.BoolVar(&dryRun, "dry-run", false, "list the installers that would be requested; request nothing")
	return cmd
}

// lockFactory reads the lock and builds the factory client for it (--factory, else the
// factory the lock was resolved against).
func (a *app) lockFactory(lockPath string, ff factoryFlags) (*site.Lock, *factoryTarget, error) {
	lock, err := a.loadLock(lockPath)
	if err != nil {
		return nil, nil, err
	}
	t, err := a.newFactory(ff, lock.Factory)
	if err != nil {
		return nil, nil, err
	}
	return lock, t, nil
}
