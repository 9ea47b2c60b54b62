package main

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/pipeline/verify"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

type verifyFlags struct {
	lock        string
	trustedRoot string
	factoryKey  string
	dryRun      bool
	mirror      bool
	output      string
	jobs        int
}

func (a *app) newVerifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify",
		Short: "Verify the cosign signatures of every image the lock names",
		Long: `verify checks the cosign signature of every image a lock names before it is mirrored
or written into an upgrade plan: extension images, the extensions catalog, each profile's
factory installer and the ghcr.io/siderolabs core images (installer, kubelet, flannel, ...).

Policies, first match wins:
  1. verify.policies in imgpipe.yaml (match glob, key file, keyless identities, allowUnsigned);
  2. sidero: ghcr.io/siderolabs/** keyless, issuer https://accounts.google.com, subject
     (@siderolabs\.com$|^releasemgr-svc@talos-production\.iam\.gserviceaccount\.com$);
  3. factory: <factory host>/** signed with the factory key (--factory-key, verify.factoryKey,
     else <factory>/oci/cosign/signing-key.pub) or keyless by
     image-factory-signing@talos-production.iam.gserviceaccount.com.
Core images no policy covers (registry.k8s.io, gcr.io, ...) are listed as skipped; add a
policy to check them. An uncovered extension, catalog or factory installer fails, and a
missing signature fails unless the image's policy sets allowUnsigned.
Every signature must sign this image's digest; unpinned lock entries are resolved at the
registry and shown as unpinned.

Keyless trust: the Sigstore public-good root over TUF, or --trusted-root trusted_root.json
(offline, air-gapped). With --mirror, each image and its signatures are read from the
site mirror imgpipe.yaml's registries section maps it to, so an air-gapped site verifies
what its nodes pull. Registry credentials come from the Docker config / credential
helpers (the default keychain), never from flags.

Signature formats: legacy cosign .sig tags (key, or keyless with a Rekor bundle) and
sigstore bundles attached as OCI referrers (cosign --new-bundle-format, cosign v3, Image
Factory GSA signing; key or keyless), via the referrers API or its sha256-<hex> tag.

Exit codes: 0 all passed; 3 a signature failed or is missing; 1 an image could not be
checked (registry unreachable, trust root unavailable) and none failed.`,
		Example: `  imgpipe verify
  imgpipe verify --lock imgpipe.lock.json --trusted-root trusted_root.json -o json
  imgpipe verify --factory-key signing-key.pub --dry-run
  imgpipe resolve --talos v1.9.x -o json | imgpipe verify --lock - --dry-run
  imgpipe verify --mirror --trusted-root trusted_root.json   # air-gapped: through the site mirrors`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.runVerify(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lock, "lock", defaultLockFile, "lockfile to verify, as written by imgpipe resolve --lock; - reads a resolve -o json result from stdin")
	fl.StringVar(&f.trustedRoot, "trusted-root", "", "sigstore trusted_root.json for keyless checks (default: verify.trustedRoot, else online TUF)")
	fl.StringVar(&f.factoryKey, "factory-key", "", "pinned Image Factory public key (PEM) (default: verify.factoryKey, else fetched from the factory)")
	fl.BoolVar(&f.dryRun, "dry-run", false, "list what would be checked, with which policy, without contacting anything")
	fl.BoolVar(&f.mirror, "mirror", false, "read images and signatures through the site mirrors (imgpipe.yaml registries), as nodes will")
	fl.StringVarP(&f.output, "output", "o", formatTable, "output format: table, json or yaml")
	fl.IntVar(&f.jobs, "jobs", 4, "images checked in parallel")
	return cmd
}

func (a *app) runVerify(ctx context.Context, f verifyFlags) error {
	if err := checkFormat(f.output); err != nil {
		return err
	}
	if f.jobs < 1 {
		return usageErrorf("--jobs %d: want at least 1", f.jobs)
	}
	var lock *site.Lock
	var err error
	if f.lock == "-" {
		// `imgpipe resolve -o json | imgpipe verify --lock -`: a resolve result is a lock.
		data, rerr := io.ReadAll(a.stdin)
		if rerr != nil {
			return fmt.Errorf("reading lock from stdin: %w", rerr)
		}
		lock, err = site.ParseLock("stdin", data)
	} else {
		lock, err = a.loadLock(f.lock)
	}
	if err != nil {
		return err
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	opts, err := a.verifyOptions(lock, cfg, f)
	if err != nil {
		return err
	}
	a.log.Debug("verifying signatures", "lock", f.lock, "dry_run", f.dryRun)
	rep, verr := verify.CheckLock(ctx, lock, cfg, verify.SiteOptions{
		FactoryKeyFile: f.factoryKey, DryRun: f.dryRun, Log: a.log,
	}, opts...)
	if rep == nil {
		return verr
	}
	return renderResult(a.stdout, f.output, rep, len(rep.Results), func(w io.Writer) error { return verifyTable(w, rep) }, verr)
}

// verifyKeychain is the Docker config / credential helpers, plus, for a self-hosted
// factory's registry, the factory credentials from the environment (never flags).
func (a *app) verifyKeychain(lock *site.Lock, cfg *site.Config) (authn.Keychain, error) {
	user, pass := a.getenv(envFactoryUser), a.getenv(envFactoryPass)
	if user == "" && pass == "" {
		return authn.DefaultKeychain, nil
	}
	if user == "" || pass == "" {
		return nil, usageErrorf("set both %s and %s, or neither", envFactoryUser, envFactoryPass)
	}
	factoryURL := cfg.Factory.URL
	if lock != nil {
		// A first build has no lock yet: its resolve stage uses the config's factory.
		factoryURL = verifyFirst(lock.Factory, factoryURL)
	}
	hosts, err := verify.FactoryHosts(factoryURL, cfg.Factory.Registry)
	if err != nil {
		return nil, err
	}
	basic := &authn.Basic{Username: user, Password: pass}
	return authn.NewMultiKeychain(hostKeychain{hosts: hosts, auth: basic}, authn.DefaultKeychain), nil
}

// hostKeychain answers with auth for the given registry hosts and defers otherwise.
type hostKeychain struct {
	hosts []string
	auth  authn.Authenticator
}

func (k hostKeychain) Resolve(r authn.Resource) (authn.Authenticator, error) {
	for _, h := range k.hosts {
		if r.RegistryStr() == h {
			return k.auth, nil
		}
	}
	return authn.Anonymous, nil
}

// verifyMirror reads images and their signatures through the site's mirrors, using
// upload/registry's endpoint map (imgpipe.yaml registries). An image whose upstream has
// no mirror gets an error verdict rather than being read upstream: an air-gapped site
// must verify what it will pull.
func verifyMirror(cfg *site.Config) (verify.MirrorFunc, error) {
	m, err := registry.NewEndpointMap(cfg.Registries)
	if err != nil {
		return nil, err
	}
	if m.Empty() {
		return nil, usageErrorf("--mirror: imgpipe.yaml has no registries (host, mirrors or overridePath) to read from")
	}
	return func(ref name.Reference) (name.Reference, error) {
		s, ep, err := m.MirrorRef(ref.String())
		if err != nil {
			return nil, err
		}
		var opts []name.Option
		if ep.Insecure {
			opts = append(opts, name.Insecure)
		}
		return name.ParseReference(s, opts...)
	}, nil
}

// verifyProgress prints a bar on a terminal and one plain line per image otherwise.
func (a *app) verifyProgress() func(done, total int, r verify.Result) {
	tty := isTerminal(a.stderr)
	return func(done, total int, r verify.Result) {
		if tty {
			const width = 30
			n := width * done / max(total, 1)
			fmt.Fprintf(a.stderr, "\rverify [%s%s] %d/%d", strings.Repeat("#", n), strings.Repeat(" ", width-n), done, total)
			if done == total {
				fmt.Fprintln(a.stderr)
			}
			return
		}
		fmt.Fprintf(a.stderr, "verify %d/%d %s %s\n", done, total, r.Verdict, r.Image)
	}
}

func verifyTable(w io.Writer, rep *verify.Report) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "IMAGE\tDIGEST\tSIGNER\tVERDICT\tREASON")
	for _, r := range rep.Results {
		d := r.Digest
		if len(d) > 19 {
			d = d[:19] + "…"
		}
		if d == "" {
			d = "-"
		}
		if !r.Pinned && r.Digest != "" {
			d += " (unpinned)"
		}
		signer := r.Signer
		if signer == "" {
			signer = "-"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.Image, d, signer, r.Verdict, r.Reason)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	s := rep.Summary
	fmt.Fprintf(w, "\n%d images: %d verified, %d failed, %d missing, %d unsigned-allowed, %d skipped, %d errors",
		s.Total, s.Verified, s.Failed, s.Missing, s.UnsignedAllowed, s.Skipped, s.Errors)
	if rep.DryRun {
		fmt.Fprintf(w, ", %d planned (dry run)", s.Planned)
	}
	fmt.Fprintln(w)
	return nil
}

// verifyFirst returns the first non-empty value: a flag, then the config.
func verifyFirst(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}

// verifyOptions builds the verifier's options from flags and config: the trusted root
// (--trusted-root, verify.trustedRoot, else online TUF), registry credentials, jobs,
// progress, and with --mirror reads through the site's mirrors. Shared with build.
func (a *app) verifyOptions(lock *site.Lock, cfg *site.Config, f verifyFlags) ([]verify.Option, error) {
	trustedRoot := verifyFirst(f.trustedRoot, cfg.Verify.TrustedRoot)
	trust := verify.OnlineTrustedRoot()
	if trustedRoot != "" {
		// A local file is cheap to read: load it now so a bad path is a usage error (exit 2)
		// rather than an error verdict on every keyless image.
		var err error
		if trust, err = verify.LoadTrustedRoot(trustedRoot); err != nil {
			return nil, err
		}
	}
	keychain, err := a.verifyKeychain(lock, cfg)
	if err != nil {
		return nil, err
	}
	jobs := f.jobs
	if jobs < 1 {
		jobs = 4
	}
	opts := []verify.Option{
		verify.WithTrust(trust),
		verify.WithKeychain(keychain),
		verify.WithJobs(jobs),
		verify.WithLogger(a.log),
		verify.WithProgress(a.verifyProgress()),
	}
	if f.mirror {
		m, err := verifyMirror(cfg)
		if err != nil {
			return nil, err
		}
		opts = append(opts, verify.WithMirror(m))
	}
	return opts, nil
}
