package main

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/internal/fail"
)

func usageErrorf(format string, args ...any) error {
	return fail.Usage(fmt.Errorf(format, args...))
}

// usageArgs makes wrong positional arguments a usage error (exit 2) on every
// command: cobra reports them as plain errors, which would exit 1. The root gets
// its own check, because cobra's built-in one for an unknown command runs before
// any hook; with a RunE that shows help, a bare `imgpipe` still prints help.
func usageArgs(root *cobra.Command) {
	root.Args = func(cmd *cobra.Command, args []string) error {
		if len(args) > 0 {
			return usageErrorf("unknown command %q for %q: run imgpipe --help", args[0], cmd.CommandPath())
		}
		return nil
	}
	root.RunE = func(cmd *cobra.Command, _ []string) error { return cmd.Help() }
	var wrap func(*cobra.Command)
	wrap = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			if orig := sub.Args; orig != nil {
				sub.Args = func(cmd *cobra.Command, args []string) error {
					if err := orig(cmd, args); err != nil {
						return usageErrorf("%s: %w (see %s --help)", cmd.CommandPath(), err, cmd.CommandPath())
					}
					return nil
				}
			}
			wrap(sub)
		}
	}
	wrap(root)
}
