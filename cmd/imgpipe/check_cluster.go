package main

import (
	"github.com/spf13/cobra"

	"github.com/imgpipe/imgpipe/cluster"
	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/site"
)

// clusterSource is the cluster check: it runs only with --kubeconfig; --talosconfig
// adds the Talos API's view of each node's version.
func (a *app) clusterSource(cmd *cobra.Command, f checkFlags, lock *site.Lock, _ *site.Config, wanted bool) (check.Source, func(), error) {
	none := func() {}
	switch {
	case !wanted:
		return check.Skip(check.CheckCluster, "left out by --checks"), none, nil
	case f.kubeconfig == "":
		return check.Skip(check.CheckCluster, "no --kubeconfig given"), none, nil
	}
	kc, err := cluster.LoadKubeconfig(f.kubeconfig, "")
	if err != nil {
		return check.Source{}, none, err
	}
	live := check.LiveCluster{Kube: cluster.NewKube(kc)}
	if f.talosconfig != "" {
		t, err := cluster.NewTalos(cmd.Context(), f.talosconfig)
		if err != nil {
			return check.Source{}, none, err
		}
		live.Talos = t
		return check.Cluster(live, lock), func() { _ = t.Close() }, nil
	}
	return check.Cluster(live, lock), none, nil
}
