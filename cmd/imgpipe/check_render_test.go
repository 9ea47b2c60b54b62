package main

import (
	"bytes"
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/pipeline/check"
	"github.com/imgpipe/imgpipe/site"
)

// TestCheckRenderGolden pins the table and the Markdown issue body of one report
// with every kind of outcome (-update rewrites them).
func TestCheckRenderGolden(t *testing.T) {
	t.Parallel()
	items := func(its ...check.Item) func(context.Context) ([]check.Item, []string, error) {
		return func(context.Context) ([]check.Item, []string, error) { return its, nil, nil }
	}
	sources := []check.Source{
		{Name: check.CheckRegistry, Run: items(
			check.Item{Kind: "image", Name: "ghcr.io/siderolabs/kubelet:v1.32.4", Where: "10.0.0.5:5010/siderolabs/kubelet:v1.32.4", Status: check.OK, Want: "sha256:aa", Detail: "warm: warm journal: stored by the cache 2h0m0s ago"},
			check.Item{Kind: "signature", Name: "ghcr.io/siderolabs/kubelet:v1.32.4", Where: "10.0.0.5:5010/siderolabs/kubelet:v1.32.4", Status: check.Missing, Want: "signature of sha256:aa", Detail: "no sha256-aa.sig tag | at 10.0.0.5:5010", Fix: "imgpipe mirror"},
			check.Item{Kind: "image", Name: "factory.talos.dev/nocloud-installer/376567988ad3:v1.12.11", Status: check.Skipped, Detail: "no mirror configured for upstream factory.talos.dev: nothing to check"})},
		{Name: check.CheckProxmox, Run: items(
			check.Item{Kind: "iso", Name: "local:iso/talos_lab_worker_v1.12.11_3abf06e1d81e_nocloud-amd64.iso", Where: "pve2", Profile: "worker", Status: check.Missing, Detail: "not on local of pve2", Fix: "imgpipe upload iso --profile worker"},
			check.Item{Kind: "template", Name: "talos-v1.12.11-worker", Where: "pve1/9100", Profile: "worker", Status: check.Different, Want: "imgpipe;site-lab;profile-worker", Got: "imgpipe;site-lab;profile-worker;schematic-0123", Detail: "template 9100 has another schematic", Fix: "imgpipe upload template --profile worker"})},
		{Name: check.CheckFactory, Run: func(context.Context) ([]check.Item, []string, error) {
			return nil, nil, errors.New("dial tcp 127.0.0.1:1: connect: connection refused")
		}},
		check.Skip(check.CheckCluster, "no --kubeconfig given"),
	}
	rep := check.Run(context.Background(), &site.Lock{Talos: "v1.12.11"}, "imgpipe.lock.json", sources,
		func() time.Time { return time.Date(2026, 12, 2, 6, 43, 0, 0, time.UTC) })
	rep.Seconds = 0.5
	for i := range rep.Checks {
		rep.Checks[i].Seconds = 0.1
	}
	for _, format := range []string{formatTable, formatMarkdown} {
		var b bytes.Buffer
		if err := renderCheck(&b, format, rep); err != nil {
			t.Fatal(err)
		}
		goldenAt(t, filepath.Join("testdata", "golden"), "check-report."+format+".txt", b.String())
	}
}
