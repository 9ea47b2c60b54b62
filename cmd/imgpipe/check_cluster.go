package main

import (
	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/site"
)

// clusterSource is the cluster check: it runs only with --kubeconfig.
func (a *app) clusterSource(_ *cobra.Command, f checkFlags, lock *site.Lock, _ *site.Config, wanted bool) (check.Source, error) {
	switch {
	case !wanted:
		return check.Skip(check.CheckCluster, "left out by --checks"), nil
	case f.kubeconfig == "":
		return check.Skip(check.CheckCluster, "no --kubeconfig given"), nil
	}
	return check.Source{}, usageErrorf("--kubeconfig: the cluster check is not built into this imgpipe yet")
}
