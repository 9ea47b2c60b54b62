package pipeline

import (
	"net/http"
	"slices"
	"testing"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox"
)

// TestUploadDryRunBeforeFetch: in a dry run of a whole build, fetch downloads nothing,
// so the lock has no checksums; the upload stage names what it would upload instead of
// failing with "run imgpipe fetch first".
func TestUploadDryRunBeforeFetch(t *testing.T) {
	t.Parallel()
	tok, err := proxmox.ParseToken("imgpipe@pve!ci=secret")
	if err != nil {
		t.Fatal(err)
	}
	// Nothing listens there: a planned upload must not need PVE for unfetched profiles.
	c, err := proxmox.New("https://127.0.0.1:1/api2/json", tok, http.DefaultClient)
	if err != nil {
		t.Fatal(err)
	}
	d := Deps{Proxmox: c, ProxmoxConfig: site.ProxmoxConfig{Nodes: []string{"pve1"}}}
	st := &State{DryRun: true, Emit: func(string) {},
		Lock: &site.Lock{Talos: "v1.12.11", Profiles: []site.Profile{{Name: "controlplane"}, {Name: "worker"}}}}
	got, err := d.upload(t.Context(), st)
	if err != nil {
		t.Fatalf("upload stage (dry run, nothing fetched) = %v; want a plan", err)
	}
	sum, ok := got.(UploadSummary)
	if !ok || !slices.Equal(sum.Unfetched, []string{"controlplane", "worker"}) {
		t.Errorf("upload stage (dry run, nothing fetched) = %+v; want both profiles listed as unfetched", got)
	}
}
