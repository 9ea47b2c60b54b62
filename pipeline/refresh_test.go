package pipeline

import (
	"testing"

	"github.com/imgpipe/imgpipe/site"
)

func TestSlug(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{"imgpipe.yaml": "imgpipe", "sites/Prod.yml": "sites-prod", "../x/..": "x", "": "site", "a b;c": "a-b-c"} {
		if got := slug(in); got != want {
			t.Errorf("slug(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestDecideIgnoresNotesAndArtifacts(t *testing.T) {
	t.Parallel()
	old := &site.Lock{Talos: "v1.13.9", Matrix: "/abs/matrix.yaml", Notes: []string{"x"},
		Profiles: []site.Profile{{Name: "w", Artifacts: []site.Artifact{{Kind: "iso", SHA256: "sha256:1"}}}}}
	cur := &site.Lock{Talos: "v1.13.9", Matrix: "matrix.yaml", Notes: []string{"passed over Talos v1.13.10: soaking: first seen x"},
		Profiles: []site.Profile{{Name: "w"}}}
	d, err := Decide(RefreshInput{Old: old, New: cur, Site: "imgpipe.yaml"})
	if err != nil || d.Changed || len(d.PassedOver) != 1 {
		t.Errorf("Decide(same resolution, other notes) = %+v, %v; want unchanged with one passed-over release", d, err)
	}
	cur.Profiles[0].Installer = "factory/installer:v1.13.9"
	if d, _ = Decide(RefreshInput{Old: old, New: cur}); !d.Changed || len(d.Reasons) != 1 {
		t.Errorf("Decide(installer changed) = %+v; want changed with a generic reason", d)
	}
	d.Title = "two\nlines"
	if _, err := d.GitHubOutputs("drift.md"); err == nil {
		t.Errorf("GitHubOutputs(title with a line break) = nil error; want one")
	}
}
