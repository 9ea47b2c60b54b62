package proxmox

import (
	"slices"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/site"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

func itemsWith(items []CheckItem, status string) []string {
	var out []string
	for _, it := range items {
		if it.Status == status {
			out = append(out, it.Name)
		}
	}
	slices.Sort(out)
	return out
}

// TestCheckStrayMatchesKeep: stray is what imgpipe made, no lock names and the keep
// rule would not keep, which is exactly what `upload --keep` then removes; files
// imgpipe did not name are never looked at, whatever their name says.
func TestCheckStrayMatchesKeep(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	if _, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1}); err != nil {
		t.Fatal(err)
	}
	// The same profile's ISO of an older schematic ages out with the old versions.
	other := volName(t, testSite, "worker", "aaaaaaaaaaaabbbb", "v1.9.1", "iso")
	// Never looked at: other people's files, another site's imgpipe images, imgpipe's
	// names from before sites (no owner).
	foreign := []string{"ubuntu-24.04.iso", "talos-custom.iso", "talos-v1.9.5-nocloud-amd64.iso", "metal-amd64.iso",
		volName(t, "other-site", "worker", testSchematic, "v1.9.3", "iso"), "talos-376567988ad3-v1.9.3-nocloud-amd64.iso"}
	for _, n := range append([]string{isoName(t, "v1.9.3"), isoName(t, "v1.9.4"), isoName(t, "v1.10.0-alpha.1"), other}, foreign...) {
		e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:iso/" + n, Content: "iso", Format: "iso", Size: 1})
	}
	iso := func(v string) string { return "local:iso/" + isoName(t, v) }
	tests := []struct {
		keep      int
		stray, ok []string
	}{
		// keep all: every imgpipe ISO no lock names is stray.
		{0, []string{"local:iso/" + other, iso("v1.10.0-alpha.1"), iso("v1.9.3"), iso("v1.9.4")}, []string{iso("v1.9.5")}},
		// keep 2: per profile the newest two (the lock's counts) stay, as prune keeps them.
		{2, []string{"local:iso/" + other, iso("v1.9.3"), iso("v1.9.4")}, []string{iso("v1.10.0-alpha.1"), iso("v1.9.5")}},
	}
	for _, tt := range tests {
		slices.Sort(tt.stray)
		slices.Sort(tt.ok)
		cfg := cfgFor(MethodUpload)
		cfg.Keep = tt.keep
		items, err := e.c.Check(t.Context(), cfg, f.lock, CheckOptions{})
		if err != nil {
			t.Fatalf("Check(keep %d): %v", tt.keep, err)
		}
		var isoItems []CheckItem
		for _, it := range items {
			if it.Kind == "iso" {
				isoItems = append(isoItems, it)
			}
			for _, n := range foreign {
				if strings.HasSuffix(it.Name, "/"+n) {
					t.Errorf("Check(keep %d) reports %s (%s); imgpipe did not name it", tt.keep, it.Name, it.Status)
				}
			}
		}
		if got := itemsWith(isoItems, CheckStray); !slices.Equal(got, tt.stray) {
			t.Errorf("Check(keep %d) stray = %v; want %v", tt.keep, got, tt.stray)
		}
		if got := itemsWith(isoItems, CheckOK); !slices.Equal(got, tt.ok) {
			t.Errorf("Check(keep %d) ok = %v; want %v", tt.keep, got, tt.ok)
		}
	}

	// Without proxmox.site nothing is this config's own: nothing is called stray.
	unnamed := cfgFor(MethodUpload)
	unnamed.Site = ""
	items, err := e.c.Check(t.Context(), unnamed, f.lock, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := itemsWith(items, CheckStray); len(got) != 0 {
		t.Errorf("Check(no proxmox.site) stray = %v; want none", got)
	}

	// A referenced lock (the release kept for rollback) makes its files not stray.
	prev := *f.lock
	prev.Talos = "v1.9.4"
	items, err = e.c.Check(t.Context(), cfgFor(MethodUpload), f.lock, CheckOptions{Referenced: []*site.Lock{&prev}})
	if err != nil {
		t.Fatal(err)
	}
	for _, it := range items {
		if it.Name == iso("v1.9.4") && (it.Status != CheckOK || !strings.Contains(it.Detail, "referenced")) {
			t.Errorf("Check(referencing v1.9.4) = %s (%s) for %s; want ok, named by a referenced lock", it.Status, it.Detail, it.Name)
		}
	}

	// What check calls stray at keep 2 is what upload --keep 2 removes.
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: 2})
	if err != nil {
		t.Fatal(err)
	}
	var removed []string
	for _, r := range res {
		if r.Action == ActionRemoved {
			removed = append(removed, r.Volume)
		}
	}
	slices.Sort(removed)
	want := slices.Sorted(slices.Values(tests[1].stray))
	if !slices.Equal(removed, want) {
		t.Errorf("upload --keep 2 removed %v; check called %v stray", removed, want)
	}
	cfg := cfgFor(MethodUpload)
	cfg.Keep = 2
	items, err = e.c.Check(t.Context(), cfg, f.lock, CheckOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := itemsWith(items, CheckStray); len(got) != 0 {
		t.Errorf("after upload --keep 2, Check stray = %v; want none", got)
	}
}
