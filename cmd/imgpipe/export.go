package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/pipeline"
	"github.com/imgpipe/imgpipe/pipeline/machineconfig"
	"github.com/imgpipe/imgpipe/pipeline/tfexport"
	"github.com/imgpipe/imgpipe/upload/proxmox"
)

type exportFlags struct {
	lock     string
	report   string
	outDir   string
	patchDir string
	profiles []string
}

func (a *app) newExportCmd() *cobra.Command {
	var f exportFlags
	cmd := &cobra.Command{
		Use:   "export terraform",
		Short: "Hand the lock's images, Proxmox volumes and machine-config patches to Terraform",
		Long: `export terraform writes imgpipe.auto.tfvars.json into --out-dir (Terraform loads
*.auto.tfvars.json of the root module by itself), and each profile's validated
machine-config patch into --patch-dir beside it. All files are written or none.

The variables (README "Terraform hand-off" documents every field):
  imgpipe_talos_version       the lock's Talos release
  imgpipe_kubernetes_version  the lock's Kubernetes version
  imgpipe_profiles            per profile: role, installer, schematic, talos_version,
                              platform, arch, secureboot, iso_volume_ids (node ->
                              volume ID), templates (node -> {name, vmid}) and
                              machine_config_patches (paths relative to --out-dir)

Volume and template names come from the same functions imgpipe upload uses. Template
VMIDs come from the build report (--report) when it shows the template for this lock
was created or found; otherwise vmid is null and the stack boots the ISO.
examples/terraform/stacks/talos is a stack that reads these variables.`,
		Example: `  imgpipe export terraform --out-dir stacks/talos
  imgpipe export terraform --report build.json --profile controlplane,worker`,
		Args:      cobra.ExactArgs(1),
		ValidArgs: []string{"terraform"},
		RunE: func(cmd *cobra.Command, args []string) error {
			if args[0] != "terraform" {
				return usageErrorf("export %q: the only target is terraform", args[0])
			}
			return a.runExportTerraform(f)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.lock, "lock", defaultLockFile, "lockfile written by imgpipe resolve")
	fl.StringVar(&f.report, "report", "build.json", `build report to take template VMIDs from, if it exists; "" ignores it`)
	fl.StringVar(&f.outDir, "out-dir", ".", "directory of the Terraform root module")
	fl.StringVar(&f.patchDir, "patch-dir", "imgpipe-patches", "where the patches go, relative to --out-dir")
	fl.StringSliceVarP(&f.profiles, "profile", "p", nil, "only these profiles")
	return cmd
}

func (a *app) runExportTerraform(f exportFlags) error {
	if !filepath.IsLocal(f.patchDir) {
		return usageErrorf("--patch-dir %q must be a relative path inside --out-dir", f.patchDir)
	}
	cfg, err := a.loadConfig()
	if err != nil {
		return err
	}
	lock, err := a.loadLock(f.lock)
	if err != nil {
		return err
	}
	uploaded, err := readUploadResults(f.report)
	if err != nil {
		return err
	}
	patches, err := a.machineConfigs(cfg, lock, f.profiles, f.lock)
	if err != nil {
		return err
	}
	var files []outFile
	rel := map[string][]string{}
	for _, p := range patches {
		name := path.Join(filepath.ToSlash(f.patchDir), patchFileName(p.Profile))
		rel[p.Profile] = []string{name}
		files = append(files, outFile{Path: filepath.Join(f.outDir, filepath.FromSlash(name)), Data: []byte(p.YAML)})
	}
	vars, err := tfexport.Build(cfg, lock, tfexport.Options{Uploaded: uploaded, Patches: rel, Profiles: profileNames(patches)})
	if err != nil {
		return usageErrorf("export terraform: %w", err)
	}
	data, err := json.MarshalIndent(vars, "", "  ")
	if err != nil {
		return err
	}
	files = append(files, outFile{Path: filepath.Join(f.outDir, tfexport.FileName), Data: append(data, '\n')})
	if err := os.MkdirAll(filepath.Join(f.outDir, f.patchDir), 0o755); err != nil {
		return fmt.Errorf("creating %s: %w", f.patchDir, err)
	}
	if err := writeFileSet(files); err != nil {
		return err
	}
	for _, fl := range files {
		fmt.Fprintln(a.stdout, fl.Path)
	}
	return nil
}

// readUploadResults takes the upload stage's results from a build report; a missing
// report, a dry run or a report without an upload stage gives none.
func readUploadResults(path string) ([]proxmox.Result, error) {
	if path == "" {
		return nil, nil
	}
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading build report: %w", err)
	}
	var rep pipeline.Report
	if err := json.Unmarshal(data, &rep); err != nil {
		return nil, usageErrorf("%s: not a build report: %w", path, err)
	}
	if rep.Schema != pipeline.ReportSchema {
		return nil, usageErrorf("%s: schema %q is not %s", path, rep.Schema, pipeline.ReportSchema)
	}
	if rep.DryRun {
		return nil, nil
	}
	for _, s := range rep.Stages {
		if s.Name != pipeline.StageUpload || len(s.Summary) == 0 {
			continue
		}
		var sum pipeline.UploadSummary
		if err := json.Unmarshal(s.Summary, &sum); err != nil {
			return nil, usageErrorf("%s: upload stage summary: %w", path, err)
		}
		return append(sum.ISOs, sum.Templates...), nil
	}
	return nil, nil
}

func profileNames(patches []*machineconfig.Patch) []string {
	out := make([]string, 0, len(patches))
	for _, p := range patches {
		out = append(out, p.Profile)
	}
	return out
}
