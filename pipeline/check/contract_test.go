package check

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/site"
)

var update = flag.Bool("update", false, "rewrite testdata/report.golden.json")

// TestReportContract pins the JSON field names and shapes of the report that
// pipeline/check/README.md documents: a change here is a contract change.
func TestReportContract(t *testing.T) {
	t.Parallel()
	lock := &site.Lock{Talos: "v1.12.11"}
	sources := []Source{
		{Name: CheckRegistry, Run: func(context.Context) ([]Item, []string, error) {
			return []Item{{Kind: "image", Name: "ghcr.io/siderolabs/kubelet:v1.32.4", Where: "10.0.0.5:5010/siderolabs/kubelet:v1.32.4",
				Status: OK, Want: "sha256:aa", Detail: "push: 3 blobs: every blob present (HEAD)"}}, []string{"pull-through caches are checked through the warm journal and a HEAD by digest"}, nil
		}},
		{Name: CheckProxmox, Run: func(context.Context) ([]Item, []string, error) {
			return []Item{{Kind: "iso", Name: "local:iso/talos-3abf06e1d81e-v1.11.5-nocloud-amd64.iso", Where: "pve3", Status: Stray,
				Got: "123 bytes", Detail: "made by imgpipe, named by no lock", Fix: "pvesh delete /nodes/pve3/storage/local/content/local:iso/talos-3abf06e1d81e-v1.11.5-nocloud-amd64.iso"}}, nil, nil
		}},
		{Name: CheckFactory, Run: func(context.Context) ([]Item, []string, error) {
			return nil, nil, errors.New("dial tcp: connection refused")
		}},
		Skip(CheckCluster, "no --kubeconfig given"),
	}
	rep := Run(context.Background(), lock, "imgpipe.lock.json", sources, func() time.Time { return time.Date(2026, 12, 2, 6, 43, 0, 0, time.UTC) })
	rep.Seconds = 0.5
	for i := range rep.Checks {
		rep.Checks[i].Seconds = 0.1
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetIndent("", "  ")
	if err := enc.Encode(rep); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join("testdata", "report.golden.json")
	if *update {
		if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("reading %s: %v (go test ./pipeline/check -run TestReportContract -update)", path, err)
	}
	if !bytes.Equal(buf.Bytes(), want) {
		t.Errorf("report JSON differs from %s (a contract change: update pipeline/check/README.md too):\n%s", path, buf.String())
	}
}
