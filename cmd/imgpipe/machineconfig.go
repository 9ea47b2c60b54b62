package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/pipeline/machineconfig"
	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/registry"
)

func (a *app) newMachineConfigCmd() *cobra.Command {
	var (
		lockPath string
		profiles []string
		outDir   string
		output   string
	)
	cmd := &cobra.Command{
		Use:   "machineconfig",
		Short: "Write Talos machine-config patches that match the built images",
		Long: `machineconfig writes, per profile, a strategic-merge patch for the Talos machine config:
machine.install.image pinned to the profile's factory installer (so an upgrade or reinstall
keeps its extensions), machine.registries.mirrors for the site's local registries, the
NVIDIA kernel modules and release-specific settings for GPU profiles, and the profile's
labels, taints and sysctls. Each patch is decoded with Talos machinery before it is written.`,
		Example: `  imgpipe machineconfig --lock imgpipe.lock.json --profile gpu > gpu.patch.yaml
  imgpipe machineconfig --out-dir patches/
  talosctl gen config lab https://10.0.20.10:6443 --config-patch @gpu.patch.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			cfg, err := a.loadConfig()
			if err != nil {
				return err
			}
			lock, err := a.loadLock(lockPath)
			if err != nil {
				return err
			}
			mirrors, err := registry.NewEndpointMap(cfg.Registries)
			if err != nil {
				return err
			}
			var patches []*machineconfig.Patch
			for _, pc := range cfg.Profiles {
				if len(profiles) > 0 && !slices.Contains(profiles, pc.Name) {
					continue
				}
				if _, ok := lock.Profile(pc.Name); !ok {
					if len(profiles) > 0 {
						return fail.Usage(fmt.Errorf("profile %s is not in %s: re-run imgpipe resolve --lock", pc.Name, lockOr(lockPath)))
					}
					continue
				}
				p, err := machineconfig.Generate(lock, pc, machineconfig.Options{Mirrors: mirrors})
				if err != nil {
					return err
				}
				patches = append(patches, p)
			}
			for _, want := range profiles {
				if !slices.ContainsFunc(patches, func(p *machineconfig.Patch) bool { return p.Profile == want }) {
					return fail.Usage(fmt.Errorf("unknown profile %q", want))
				}
			}
			if len(patches) == 0 {
				return fail.Usage(fmt.Errorf("no profile of the site config is in %s", lockOr(lockPath)))
			}
			for _, p := range patches {
				for _, n := range p.Notes {
					fmt.Fprintf(a.stderr, "note: profile %s: %s\n", p.Profile, n)
				}
			}
			if outDir != "" {
				if err := os.MkdirAll(outDir, 0o755); err != nil {
					return fmt.Errorf("creating %s: %w", outDir, err)
				}
				for _, p := range patches {
					path := filepath.Join(outDir, p.Profile+".patch.yaml")
					if err := site.WriteFileAtomic(path, []byte(p.YAML), 0o644); err != nil {
						return err
					}
					fmt.Fprintln(a.stdout, path)
				}
				return nil
			}
			if output != formatTable {
				return render(a.stdout, output, patches, nil)
			}
			if len(patches) > 1 {
				return fail.Usage(fmt.Errorf("%d profiles: choose one with --profile, or write them all with --out-dir", len(patches)))
			}
			_, err = io.WriteString(a.stdout, patches[0].YAML)
			return err
		},
	}
	cmd.Flags().StringVar(&lockPath, "lock", defaultLockFile, "lockfile written by imgpipe resolve --lock")
	cmd.Flags().StringSliceVarP(&profiles, "profile", "p", nil, "only these profiles")
	cmd.Flags().StringVar(&outDir, "out-dir", "", "write <profile>.patch.yaml files into this directory")
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "table (the patch YAML itself), json or yaml (patches with notes)")
	return cmd
}

func lockOr(p string) string {
	if p == "" {
		return defaultLockFile
	}
	return p
}
