package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	imgpipe "github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/pipeline"
	"github.com/imgpipe/imgpipe/site"
)

// catalogWithPatch is the reference catalog plus v1.13.10 (v1.13.9's extensions),
// optionally marked broken.
func catalogWithPatch(broken bool) factorytest.Catalog {
	c := factorytest.ReferenceCatalog()
	c.Versions = append(c.Versions, "v1.13.10")
	c.Extensions["v1.13.10"] = c.Extensions["v1.13.9"]
	if broken {
		c.Broken = append(c.Broken, "v1.13.10")
	}
	return c
}

// refreshSite writes imgpipe.yaml (with extra lines) and a copy of the embedded matrix.
func refreshSite(t *testing.T, f *factorytest.Factory, extra string) (cfg, matrix string) {
	t.Helper()
	dir := t.TempDir()
	cfg, matrix = filepath.Join(dir, "imgpipe.yaml"), filepath.Join(dir, "matrix.yaml")
	text := "version: 1\ntalos: v1.13.x\n" + extra + "factory:\n  url: " + f.URL() + "\nprofiles:\n  - name: worker\n    extensions:\n      - name: qemu-guest-agent\n"
	if err := os.WriteFile(cfg, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(matrix, imgpipe.MatrixYAML, 0o644); err != nil {
		t.Fatal(err)
	}
	return cfg, matrix
}

func resolvedTalos(t *testing.T, cfg, matrix string) *site.Lock {
	t.Helper()
	stdout, stderr, code := runImgpipe(t, nil, "resolve", "--config", cfg, "--matrix", matrix, "--talos", "v1.13.x", "-o", "json")
	if code != 0 {
		t.Fatalf("resolve = exit %d; stderr:\n%s", code, stderr)
	}
	var l site.Lock
	if err := json.Unmarshal([]byte(stdout), &l); err != nil {
		t.Fatal(err)
	}
	return &l
}

// TestRefreshThenResolvePicksNewPatch: a factory listing a new stable patch makes it
// eligible at once; with a soak period the older patch is picked and resolve says why.
func TestRefreshThenResolvePicksNewPatch(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: catalogWithPatch(false)})
	for _, tt := range []struct {
		name, extra, want, note string
	}{
		{"no soak", "", "v1.13.10", ""},
		{"soak 3d", "minimumReleaseAge: 3d\n", "v1.13.9", "passed over Talos v1.13.10: soaking: first seen"},
	} {
		cfg, matrix := refreshSite(t, f, tt.extra)
		if _, stderr, code := runImgpipe(t, nil, "matrix", "refresh", "--config", cfg, "--matrix", matrix, "--since", "v1.13.0"); code != 0 {
			t.Fatalf("%s: matrix refresh = exit %d; stderr:\n%s", tt.name, code, stderr)
		}
		l := resolvedTalos(t, cfg, matrix)
		if l.Talos != tt.want {
			t.Errorf("%s: resolve --talos v1.13.x = %s; want %s (notes %q)", tt.name, l.Talos, tt.want, l.Notes)
		}
		if tt.note != "" && !slices.ContainsFunc(l.Notes, func(n string) bool { return strings.HasPrefix(n, tt.note) }) {
			t.Errorf("%s: notes = %q; want one starting %q", tt.name, l.Notes, tt.note)
		}
	}
}

// TestRefreshDecision runs `imgpipe refresh` over three days and a broken release.
func TestRefreshDecision(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	cfg, matrix := refreshSite(t, f, "")
	dir := filepath.Dir(cfg)
	lock, drift, out := filepath.Join(dir, "imgpipe.lock.json"), filepath.Join(dir, "drift.md"), filepath.Join(dir, "gh-output")
	refresh := func(args ...string) *pipeline.RefreshDecision {
		t.Helper()
		full := append([]string{"refresh", "--config", cfg, "--matrix", matrix, "--lock", lock, "--drift", drift, "--github-output", out, "-o", "json"}, args...)
		stdout, stderr, code := runImgpipe(t, nil, full...)
		if code != 0 {
			t.Fatalf("refresh %v = exit %d; stderr:\n%s", args, code, stderr)
		}
		var d pipeline.RefreshDecision
		if err := json.Unmarshal([]byte(stdout), &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}
	d := refresh()
	if !d.Changed || !d.First || d.NewTalos != "v1.13.9" {
		t.Errorf("first refresh = %+v; want changed, first, v1.13.9", d)
	}
	d = refresh()
	if d.Changed || d.Publish || d.OldTalos != "v1.13.9" {
		t.Errorf("second refresh = %+v; want unchanged, nothing to publish", d)
	}
	f.SetCatalog(catalogWithPatch(true))
	// No rebuild, but the matrix (which now records the broken release) is published.
	if d = refresh(); d.Changed || !d.MatrixChanged || !d.Publish || !slices.Contains(d.PassedOver, "v1.13.10 (broken)") {
		t.Errorf("refresh with broken v1.13.10 = %+v; want unchanged, matrix changed, v1.13.10 passed over as broken", d)
	}
	// The broken flag stays (Merge never clears one); the next patch is picked.
	c := catalogWithPatch(true)
	c.Versions = append(c.Versions, "v1.13.11")
	c.Extensions["v1.13.11"] = c.Extensions["v1.13.9"]
	f.SetCatalog(c)
	d = refresh()
	if !d.Changed || d.OldTalos != "v1.13.9" || d.NewTalos != "v1.13.11" || d.Branch != "imgpipe/refresh-imgpipe" || !slices.Contains(d.Reasons, "Talos v1.13.9 -> v1.13.11") {
		t.Errorf("refresh with v1.13.11 = %+v; want changed v1.13.9 -> v1.13.11 on imgpipe/refresh-imgpipe", d)
	}
	md, _ := os.ReadFile(drift)
	if !strings.Contains(string(md), "## imgpipe: Talos v1.13.9 → v1.13.11") || !strings.Contains(string(md), "- Talos v1.13.9 -> v1.13.11") {
		t.Errorf("drift.md =\n%s", md)
	}
	outs, _ := os.ReadFile(out)
	if !strings.HasSuffix(string(outs), "changed=true\npublish=true\nfirst=false\nold_talos=v1.13.9\nnew_talos=v1.13.11\nbranch=imgpipe/refresh-imgpipe\ntitle=imgpipe: Talos v1.13.11 images built\ndrift="+drift+"\n") {
		t.Errorf("step outputs =\n%s", outs)
	}
	if got := refresh("--force"); !got.Changed || !got.Forced {
		t.Errorf("refresh --force = %+v; want changed and forced", got)
	}
	for _, bad := range [][]string{{"--talos", "v1.13.x; rm -rf /"}, {"--force=maybe"}} {
		if _, stderr, code := runImgpipe(t, nil, append([]string{"refresh", "--config", cfg, "--matrix", matrix, "--lock", lock}, bad...)...); code != exitUsage {
			t.Errorf("refresh %v = exit %d (%s); want %d", bad, code, stderr, exitUsage)
		}
	}
	if _, stderr, code := runImgpipe(t, nil, "refresh", "--config", filepath.Join(dir, "none.yaml"), "--matrix", matrix); code != exitUsage || !strings.Contains(stderr, "built-in default site") {
		t.Errorf("refresh without a site config = exit %d (%s); want %d", code, stderr, exitUsage)
	}
}

// TestRefreshSoak: with minimumReleaseAge, a new patch is recorded (firstSeen, a
// matrix-only change to publish) but not built; the next refresh keeps firstSeen;
// once the soak has passed (firstSeen moved back 4 days), refresh builds it.
func TestRefreshSoak(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	cfg, matrix := refreshSite(t, f, "minimumReleaseAge: 3d\n")
	lock := filepath.Join(filepath.Dir(cfg), "imgpipe.lock.json")
	refresh := func() *pipeline.RefreshDecision {
		t.Helper()
		stdout, stderr, code := runImgpipe(t, nil, "refresh", "--config", cfg, "--matrix", matrix, "--lock", lock, "-o", "json")
		if code != 0 {
			t.Fatalf("refresh = exit %d; stderr:\n%s", code, stderr)
		}
		var d pipeline.RefreshDecision
		if err := json.Unmarshal([]byte(stdout), &d); err != nil {
			t.Fatal(err)
		}
		return &d
	}
	if d := refresh(); !d.Changed || d.NewTalos != "v1.13.9" {
		t.Fatalf("first refresh = %+v; want the first lock at v1.13.9", d)
	}
	f.SetCatalog(catalogWithPatch(false))
	d := refresh()
	if d.Changed || !d.MatrixChanged || !d.Publish || len(d.PassedOver) != 1 || !strings.HasPrefix(d.PassedOver[0], "v1.13.10 (soaking: first seen ") {
		t.Errorf("refresh on the day v1.13.10 appears = %+v; want no build, the matrix published, v1.13.10 soaking", d)
	}
	data, err := os.ReadFile(matrix)
	if err != nil {
		t.Fatal(err)
	}
	if d := refresh(); d.MatrixChanged || d.Changed {
		t.Errorf("refresh again = %+v; want nothing changed (firstSeen kept)", d)
	}
	// Four days later: move firstSeen back.
	m, err := compat.Parse(matrix, data)
	if err != nil {
		t.Fatal(err)
	}
	r, _ := m.Release("v1.13.10")
	seen, ok := r.FirstSeenTime()
	if !ok {
		t.Fatalf("v1.13.10 has no firstSeen after refresh: %+v", r)
	}
	old := strings.Replace(string(data), r.FirstSeen, seen.Add(-96*time.Hour).Format(time.RFC3339), 1)
	if err := os.WriteFile(matrix, []byte(old), 0o644); err != nil {
		t.Fatal(err)
	}
	if d := refresh(); !d.Changed || d.NewTalos != "v1.13.10" || d.MatrixChanged {
		t.Errorf("refresh after the soak = %+v; want v1.13.10 built, firstSeen untouched", d)
	}
}
