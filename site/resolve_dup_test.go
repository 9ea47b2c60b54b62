package site

import (
	"testing"

	"github.com/imgpipe/imgpipe"
	"github.com/imgpipe/imgpipe/compat"
)

func TestResolveDuplicateProfileFlag(t *testing.T) {
	t.Parallel()
	m, err := compat.Parse(imgpipe.MatrixName, imgpipe.MatrixYAML)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Resolve(m, DefaultConfig(), ResolveOptions{Talos: "v1.9.x", Profiles: []string{"worker", "worker", "gpu"}})
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Profiles) != 2 || l.Profiles[0].Name != "worker" || l.Profiles[1].Name != "gpu" {
		t.Errorf("Resolve(--profile worker,worker,gpu) profiles = %d; want worker, gpu once each", len(l.Profiles))
	}
}
