package factory

import (
	"testing"

	"github.com/imgpipe/imgpipe/site"
)

func TestSetArtifactKeepsKindsSorted(t *testing.T) {
	t.Parallel()
	p := &site.Profile{}
	setArtifact(p, site.Artifact{Kind: "iso", SHA256: "a"})
	setArtifact(p, site.Artifact{Kind: "disk", SHA256: "b"})
	setArtifact(p, site.Artifact{Kind: "iso", SHA256: "c"})
	if len(p.Artifacts) != 2 || p.Artifacts[0].Kind != "disk" || p.Artifacts[0].SHA256 != "b" || p.Artifacts[1].SHA256 != "c" {
		t.Errorf("setArtifact() = %+v; want [disk b, iso c]", p.Artifacts)
	}
}
