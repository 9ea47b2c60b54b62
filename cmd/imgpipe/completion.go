package main

import (
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/pipeline"
	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/site"
)

// registerCompletions gives flag values shell completion on every command that has
// the flag: --profile from the site config and the lock, --talos and --to from the
// config's query and the matrix, and the fixed sets of -o, --stages, --mode,
// --artifact and --path. The functions read files only when the shell asks.
func (a *app) registerCompletions(root *cobra.Command) {
	fixed := func(vals ...string) cobra.CompletionFunc {
		return cobra.FixedCompletions(vals, cobra.ShellCompDirectiveNoFileComp)
	}
	byFlag := map[string]func(*cobra.Command) cobra.CompletionFunc{
		"profile":  func(*cobra.Command) cobra.CompletionFunc { return a.completeProfiles },
		"talos":    func(*cobra.Command) cobra.CompletionFunc { return a.completeTalos },
		"to":       func(*cobra.Command) cobra.CompletionFunc { return a.completeTalos },
		"stages":   func(*cobra.Command) cobra.CompletionFunc { return fixed(pipeline.Order...) },
		"mode":     func(*cobra.Command) cobra.CompletionFunc { return fixed("auto", "push", "warm") },
		"artifact": func(*cobra.Command) cobra.CompletionFunc { return fixed("iso", "disk") },
		"path":     func(*cobra.Command) cobra.CompletionFunc { return fixed("conservative", "minimal") },
		"checks":   func(*cobra.Command) cobra.CompletionFunc { return fixed(check.Names...) },
		"output": func(c *cobra.Command) cobra.CompletionFunc {
			formats := []string{formatTable, formatJSON, formatYAML}
			if c.Name() == "upgrade-plan" {
				formats = append(formats, formatScript, formatTuppr)
			}
			if c.Name() == "check" {
				formats = []string{formatTable, formatJSON, formatMarkdown}
			}
			return fixed(formats...)
		},
	}
	var walk func(*cobra.Command)
	walk = func(c *cobra.Command) {
		for name, fn := range byFlag {
			if f := c.LocalNonPersistentFlags().Lookup(name); f != nil && f.Value.Type() != "bool" {
				_ = c.RegisterFlagCompletionFunc(name, fn(c)) // only fails for a flag registered twice
			}
		}
		for _, s := range c.Commands() {
			walk(s)
		}
	}
	walk(root)
}

// completeProfiles lists the profiles of the site config (--config or ./imgpipe.yaml)
// and of the lock the command would read, without errors: a shell has no use for them.
func (a *app) completeProfiles(cmd *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var names []string
	if cfg, err := a.loadConfig(); err == nil {
		for _, p := range cfg.Profiles {
			names = append(names, p.Name+"\t"+p.Description)
		}
	}
	lockPath := defaultLockFile
	if f := cmd.Flags().Lookup("lock"); f != nil && f.Value.String() != "" {
		lockPath = f.Value.String()
	}
	if l, err := site.ReadLock(lockPath); err == nil {
		for _, p := range l.Profiles {
			if !slices.ContainsFunc(names, func(n string) bool { return strings.HasPrefix(n, p.Name+"\t") }) {
				names = append(names, p.Name+"\tin "+lockPath)
			}
		}
	}
	return filterPrefix(names, lastItem(toComplete)), cobra.ShellCompDirectiveNoFileComp
}

// completeTalos offers the config's query, then the matrix's minor series (v1.12.x)
// and its stable releases, newest first.
func (a *app) completeTalos(_ *cobra.Command, _ []string, toComplete string) ([]string, cobra.ShellCompDirective) {
	var out []string
	if cfg, err := a.loadConfig(); err == nil && cfg.Talos != "" {
		out = append(out, cfg.Talos+"\tfrom the site config")
	}
	m, _, err := a.loadMatrix()
	if err != nil {
		return filterPrefix(out, toComplete), cobra.ShellCompDirectiveNoFileComp
	}
	out = append(out, "latest")
	seen := map[string]bool{}
	for i := len(m.Releases) - 1; i >= 0; i-- {
		r := m.Releases[i]
		if !r.Stable() {
			continue
		}
		if parts := strings.SplitN(r.Version, ".", 3); len(parts) == 3 && !seen[parts[0]+"."+parts[1]] {
			seen[parts[0]+"."+parts[1]] = true
			out = append(out, parts[0]+"."+parts[1]+".x")
		}
		out = append(out, r.Version)
	}
	return filterPrefix(out, toComplete), cobra.ShellCompDirectiveNoFileComp
}

// lastItem is what is being typed of a comma-separated list flag (--profile a,b).
func lastItem(s string) string {
	if i := strings.LastIndex(s, ","); i >= 0 {
		return s[i+1:]
	}
	return s
}

func filterPrefix(vals []string, prefix string) []string {
	out := make([]string, 0, len(vals))
	for _, v := range vals {
		if strings.HasPrefix(v, prefix) {
			out = append(out, v)
		}
	}
	return out
}
