package main

import (
	"fmt"
	"io"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// versionInfo is `imgpipe version -o json`.
type versionInfo struct {
	// Version is the module version: a tag for `go install …@vX.Y.Z`, "(devel)" for a source build.
	Version string `json:"version"`
	// Revision is the VCS commit the binary was built from, when Go recorded one.
	Revision string `json:"revision,omitempty"`
	// Modified says the work tree had uncommitted changes at build time.
	Modified bool   `json:"modified,omitempty"`
	Go       string `json:"go"`
	// Machinery is the Talos machinery version that validates machine configs.
	Machinery string `json:"talos_machinery,omitempty"`
}

func readVersion() versionInfo {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return versionInfo{Version: "unknown"}
	}
	v := versionInfo{Version: bi.Main.Version, Go: bi.GoVersion}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	for _, d := range bi.Deps {
		if d.Path == "github.com/siderolabs/talos/pkg/machinery" {
			v.Machinery = d.Version
		}
	}
	return v
}

// version is the one-line form (`imgpipe --version`).
func version() string {
	v := readVersion()
	s := v.Version
	if len(v.Revision) >= 12 {
		s += " (" + v.Revision[:12] + ")"
	}
	return s + ", " + v.Go
}

func (a *app) newVersionCmd() *cobra.Command {
	var output string
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print imgpipe's version, commit and Go version",
		Args:  cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if err := checkFormat(output); err != nil {
				return err
			}
			v := readVersion()
			return render(a.stdout, output, v, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "imgpipe %s\n", version())
				if err == nil && v.Machinery != "" {
					_, err = fmt.Fprintf(w, "talos machinery %s\n", v.Machinery)
				}
				return err
			})
		},
	}
	cmd.Flags().StringVarP(&output, "output", "o", formatTable, "output format: table, json or yaml")
	return cmd
}
