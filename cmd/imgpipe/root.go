package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"time"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/internal/fail"
)

// Exit codes, as STYLE.md fixes them.
const (
	exitOK          = 0
	exitOperational = 1
	exitUsage       = 2
	exitPolicy      = 3
	exitInterrupted = 130
)

// app carries what every command needs; it is built once per run so tests can
// run the real root command in-process with their own streams and environment.
type app struct {
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	getenv func(string) string
	log    *slog.Logger
	// now is the clock for soak periods (minimumReleaseAge); nil means time.Now.
	now func() time.Time

	// global flags
	matrixPath string
	configPath string
	verbose    bool
}

// clock returns the current time from a.now, or time.Now.
func (a *app) clock() time.Time {
	if a.now != nil {
		return a.now()
	}
	return time.Now()
}

// run executes the CLI and returns the process exit code.
func run(ctx context.Context, args []string, stdin io.Reader, stdout, stderr io.Writer, getenv func(string) string) int {
	a := &app{stdin: stdin, stdout: stdout, stderr: stderr, getenv: getenv,
		log: slog.New(slog.DiscardHandler)}
	root := a.rootCmd()
	root.SetArgs(args)
	root.SetIn(stdin)
	root.SetOut(stdout)
	root.SetErr(stderr)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return exitOK
	}
	fmt.Fprintf(stderr, "imgpipe: %s\n", a.redact(err.Error()))
	return exitCode(ctx, err)
}

func exitCode(ctx context.Context, err error) int {
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, context.Canceled) && ctx.Err() != nil:
		return exitInterrupted
	case errors.Is(err, fail.ErrUsage):
		// A usage error wins over a policy failure reported with it: fix the input first.
		return exitUsage
	case errors.Is(err, fail.ErrPolicy):
		return exitPolicy
	default:
		return exitOperational
	}
}

func (a *app) rootCmd() *cobra.Command {
	root := &cobra.Command{
		Use:   "imgpipe",
		Short: "Resolve, verify, mirror and upload Talos Linux node images; plan upgrades",
		Long: `imgpipe turns a declared Talos Linux node image (imgpipe.yaml + matrix.yaml) into
Image Factory schematics, verified and mirrored images, Proxmox ISOs and templates,
and version-aligned upgrade plans.

Exit codes (every command):
  0    success
  1    operational error: network, factory, registry, Proxmox, disk
  2    usage or configuration error: flags, arguments, imgpipe.yaml, matrix, lock,
       a machine-config patch Talos refuses
  3    policy failure: incompatible versions, a missing required extension, a bad
       or missing signature, a blocked upgrade
  130  interrupted (Ctrl-C or SIGTERM); no lock or multi-file output is left half written`,
		Version:       version(),
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRun: func(cmd *cobra.Command, _ []string) {
			if a.verbose {
				a.log = slog.New(slog.NewTextHandler(a.stderr, &slog.HandlerOptions{Level: slog.LevelDebug, ReplaceAttr: a.redactAttr}))
			}
		},
	}
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error { return fail.Usage(err) })
	pf := root.PersistentFlags()
	pf.StringVar(&a.matrixPath, "matrix", "", "compatibility matrix file (default: the embedded matrix.yaml)")
	pf.StringVarP(&a.configPath, "config", "c", "", "site config file (default: imgpipe.yaml if present, else the built-in default site)")
	pf.BoolVarP(&a.verbose, "verbose", "v", false, "log what is being done to stderr")

	// Each subcommand lives in its own file as a.newXCmd(); add one line here per command.
	root.AddCommand(
		a.newResolveCmd(),
		a.newDiffCmd(),
		a.newSchematicCmd(), a.newFetchCmd(), a.newMatrixCmd(),
		a.newMachineConfigCmd(),
		a.newBuildCmd(),
		a.newVerifyCmd(),
		a.newUpgradePlanCmd(), a.newInventoryCmd(),
		a.newMirrorCmd(), a.newImagesCmd(),
		a.newUploadCmd(),
		a.newExportCmd(),
		a.newVersionCmd(),
		a.newRefreshCmd(),
		a.newCheckCmd(),
	)
	usageArgs(root)
	oneDefault(root)
	a.registerCompletions(root)
	return root
}
