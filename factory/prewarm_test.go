package factory_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
)

func TestPrewarmInstaller(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name       string
		repo       string
		faults     []factorytest.Fault
		buildDelay time.Duration
		timeout    time.Duration
		wantErr    bool
	}{
		{name: "first build takes longer than an API timeout", repo: "metal-installer/" + qemuID, buildDelay: 400 * time.Millisecond, timeout: 5 * time.Second},
		{name: "retried after 503", repo: "nocloud-installer/" + qemuID, faults: []factorytest.Fault{{Status: 503}}},
		{name: "legacy installer repo", repo: "installer/" + qemuID},
		{name: "unknown schematic", repo: "metal-installer/" + emptyID, wantErr: true},
		{name: "build slower than the timeout", repo: "metal-installer/" + qemuID, buildDelay: 5 * time.Second, timeout: 100 * time.Millisecond, wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog(), BuildDelay: tt.buildDelay})
			if _, err := f.AddSchematic(qemuYAML); err != nil {
				t.Fatal(err)
			}
			f.Inject(factorytest.RouteRegistry, tt.faults...)
			// The API timeout is short; the build timeout passed to PrewarmInstaller governs.
			c := newClient(t, f, factory.WithTimeout(50*time.Millisecond), factory.WithRetryPolicy(factory.RetryPolicy{Attempts: 2, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond}))
			ref := f.Host() + "/" + tt.repo + ":v1.9.5"
			got, err := c.PrewarmInstaller(t.Context(), ref, tt.timeout)
			if (err != nil) != tt.wantErr {
				t.Fatalf("PrewarmInstaller(%q) error = %v; want error %v", ref, err, tt.wantErr)
			}
			if tt.wantErr {
				return
			}
			if !strings.HasPrefix(got.Digest, "sha256:") || got.Ref != ref {
				t.Errorf("PrewarmInstaller(%q) = %+v; want the ref and a manifest digest", ref, got)
			}
			if want := tt.repo + ":v1.9.5"; !slices.Contains(f.Builds(), want) {
				t.Errorf("factory builds = %v; want %s", f.Builds(), want)
			}
		})
	}
}
