package factory_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/imgpipe/imgpipe/factory"
	"github.com/imgpipe/imgpipe/factory/factorytest"
	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/site"
)

const nfsYAML = "customization:\n    systemExtensions:\n        officialExtensions:\n            - siderolabs/nfs-utils\n"

// lockFor builds a two-profile lock pointing at the fake factory.
func lockFor(t *testing.T, f *factorytest.Factory) *site.Lock {
	t.Helper()
	l := &site.Lock{Schema: site.LockSchema, Talos: "v1.12.1", Factory: f.URL()}
	for _, p := range []struct{ name, yaml string }{{"worker", qemuYAML}, {"storage", nfsYAML}} {
		id, _, err := factory.SchematicID(p.yaml)
		if err != nil {
			t.Fatal(err)
		}
		base := f.URL() + "/image/" + id + "/v1.12.1/"
		l.Profiles = append(l.Profiles, site.Profile{
			Name: p.name, Platform: "nocloud", Arch: "amd64",
			Schematic: site.Schematic{ID: id, YAML: p.yaml},
			Installer: f.Host() + "/nocloud-installer/" + id + ":v1.12.1",
			ISO:       base + "nocloud-amd64.iso", DiskImage: base + "nocloud-amd64.raw.zst",
		})
	}
	return l
}

func TestLockOperations(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	c := newClient(t, f)
	l := lockFor(t, f)
	cache := factory.Cache{Dir: t.TempDir()}

	plan, err := c.EnsureLock(t.Context(), l, factory.LockOptions{DryRun: true})
	if err != nil || len(plan) != 2 || plan[0].Action != factory.ActionCreate {
		t.Fatalf("EnsureLock(dry run) = %+v, %v; want two creates", plan, err)
	}
	ensured, err := c.EnsureLock(t.Context(), l, factory.LockOptions{})
	if err != nil || len(ensured) != 2 || ensured[1].Action != factory.ActionEnsured || ensured[1].ID != l.Profiles[1].Schematic.ID {
		t.Fatalf("EnsureLock() = %+v, %v; want both ensured", ensured, err)
	}

	recorded := 0
	res, err := c.FetchLock(t.Context(), l, cache, factory.LockOptions{Recorded: func() error { recorded++; return nil }})
	if err != nil || len(res) != 4 || recorded != 4 {
		t.Fatalf("FetchLock() = %d results, %d recorded, %v; want 4 and 4", len(res), recorded, err)
	}
	for _, p := range l.Profiles {
		if len(p.Artifacts) != 2 || p.Artifacts[0].Kind != factory.ArtifactDisk || !strings.HasPrefix(p.Artifacts[1].SHA512, "sha512:") {
			t.Errorf("profile %s artifacts = %+v; want disk and iso with checksums", p.Name, p.Artifacts)
		}
	}

	// One artifact whose lock digest no longer matches fails; the others are still served from the cache.
	l.Profiles[0].Artifacts[1].SHA256 = "sha256:" + strings.Repeat("0", 64)
	res, err = c.FetchLock(t.Context(), l, cache, factory.LockOptions{})
	if !errors.Is(err, factory.ErrDigestMismatch) || !strings.Contains(err.Error(), "profile worker iso") {
		t.Errorf("FetchLock(tampered lock) error = %v; want ErrDigestMismatch naming profile worker iso", err)
	}
	if len(res) != 3 {
		t.Errorf("FetchLock(tampered lock) = %d results; want the other 3", len(res))
	}
	for _, r := range res {
		if r.Action != factory.ActionCached {
			t.Errorf("FetchLock() %s %s = %s; want cached", r.Profile, r.Kind, r.Action)
		}
	}

	pre, err := c.PrewarmLock(t.Context(), l, 0, factory.LockOptions{Profiles: []string{"storage"}})
	if err != nil || len(pre) != 1 || pre[0].Profile != "storage" || len(f.Builds()) != 1 {
		t.Errorf("PrewarmLock(storage) = %+v, %v, builds %v; want one build", pre, err, f.Builds())
	}
}

func TestLockOperationsRefuseBadInput(t *testing.T) {
	t.Parallel()
	f := factorytest.New(t, factorytest.Options{Catalog: factorytest.ReferenceCatalog()})
	c := newClient(t, f)
	cache := factory.Cache{Dir: t.TempDir()}
	tests := []struct {
		name string
		run  func(*site.Lock) error
	}{
		{"unknown profile", func(l *site.Lock) error {
			_, err := c.FetchLock(t.Context(), l, cache, factory.LockOptions{Profiles: []string{"gpu"}})
			return err
		}},
		{"unknown kind", func(l *site.Lock) error {
			_, err := c.FetchLock(t.Context(), l, cache, factory.LockOptions{Kinds: []string{"pxe"}})
			return err
		}},
		{"lock ID does not match its YAML", func(l *site.Lock) error {
			l.Profiles[0].Schematic.ID = emptyID
			_, err := c.EnsureLock(t.Context(), l, factory.LockOptions{})
			return err
		}},
		{"no installer", func(l *site.Lock) error {
			l.Profiles[1].Installer = ""
			_, err := c.PrewarmLock(t.Context(), l, 0, factory.LockOptions{})
			return err
		}},
	}
	for _, tt := range tests {
		err := tt.run(lockFor(t, f))
		if !errors.Is(err, fail.ErrUsage) {
			t.Errorf("%s: error = %v; want a usage error", tt.name, err)
		}
	}
	if n := len(f.Requests()); n != 0 {
		t.Errorf("bad input made %d requests; want 0", n)
	}
}
