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
keeps its extensions), the site's local registries as mirrors (RegistryMirrorConfig and
RegistryTLSConfig documents from Talos 1.12, machine.registries before), the NVIDIA
kernel modules and release-specific settings for GPU profiles, and the profile's labels,
taints and sysctls. The site's patches (imgpipe.yaml patches:) and then the profile's
own (profiles[].patches:) are merged in with Talos's strategic merge.

Each result is validated the way talosctl does: applied to a config that machinery
generates for the lock's Talos release and the profile's role, then checked for the
profile's platform (metal or nocloud) in strict mode. Sysctl names and mirror URLs,
which Talos checks only on the node, are checked too. An invalid patch exits 2, naming
the profile and the field. With --out-dir, every file is written or none is.`,
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
			patches, err := a.machineConfigs(cfg, lock, profiles, lockPath)
			if err != nil {
				return err
			}
			for _, p := range patches {
				for _, n := range p.Notes {
					fmt.Fprintf(a.stderr, "note: profile %s: %s\n", p.Profile, n)
				}
			}
			if outDir != "" {
				paths, err := writePatches(outDir, patches)
				if err != nil {
					return err
				}
				for _, p := range paths {
					fmt.Fprintln(a.stdout, p)
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

// machineConfigs generates, merges and validates the patches of the selected
// profiles (all of the config's profiles that are in the lock when none is named).
func (a *app) machineConfigs(cfg *site.Config, lock *site.Lock, profiles []string, lockPath string) ([]*machineconfig.Patch, error) {
	mirrors, err := registry.NewEndpointMap(cfg.Registries)
	if err != nil {
		return nil, err
	}
	val := machineconfig.NewValidator()
	var patches []*machineconfig.Patch
	for _, pc := range cfg.Profiles {
		if len(profiles) > 0 && !slices.Contains(profiles, pc.Name) {
			continue
		}
		if _, ok := lock.Profile(pc.Name); !ok {
			if len(profiles) > 0 {
				return nil, fail.Usage(fmt.Errorf("profile %s is not in %s: re-run imgpipe resolve --lock", pc.Name, lockOr(lockPath)))
			}
			continue
		}
		srcs, err := cfg.PatchSources(pc.Name)
		if err != nil {
			return nil, err
		}
		p, err := machineconfig.Generate(lock, pc, machineconfig.Options{Mirrors: mirrors, Patches: srcs, Validator: val})
		if err != nil {
			return nil, err
		}
		patches = append(patches, p)
	}
	for _, want := range profiles {
		if !slices.ContainsFunc(patches, func(p *machineconfig.Patch) bool { return p.Profile == want }) {
			return nil, fail.Usage(fmt.Errorf("unknown profile %q", want))
		}
	}
	if len(patches) == 0 {
		return nil, fail.Usage(fmt.Errorf("no profile of the site config is in %s", lockOr(lockPath)))
	}
	return patches, nil
}

// patchFileName is where --out-dir (and export terraform) put a profile's patch.
func patchFileName(profile string) string { return profile + ".patch.yaml" }

// writePatches writes every profile's patch into dir, all or none.
func writePatches(dir string, patches []*machineconfig.Patch) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("creating %s: %w", dir, err)
	}
	files := make([]outFile, 0, len(patches))
	paths := make([]string, 0, len(patches))
	for _, p := range patches {
		path := filepath.Join(dir, patchFileName(p.Profile))
		files = append(files, outFile{Path: path, Data: []byte(p.YAML)})
		paths = append(paths, path)
	}
	return paths, writeFileSet(files)
}

func lockOr(p string) string {
	if p == "" {
		return defaultLockFile
	}
	return p
}
