package registry_test

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/imgpipe/imgpipe/upload/registry"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

// TestWarmJournalIsAHint wipes the cache's storage between two warm runs that share a
// journal: the second run must find out, warm everything again, and leave a cache that
// serves every manifest and blob with the upstream stopped (issue 12 item 8).
func TestWarmJournalIsAHint(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	root := filepath.Join(t.TempDir(), "cache")
	cache := registrytest.StartT(t, registrytest.Config{Root: root, RemoteURL: up.URL()})
	ps := place(t, lockFor(up.Host, images), mirrorCfg(up.Host, cache.Host, registry.ModeWarm))
	journal := filepath.Join(t.TempDir(), "warm.json")
	m := registry.New(registry.WithJobs(3), registry.WithJournal(journal, 0), registry.WithBackoff(fastBackoff))
	if _, err := m.Run(context.Background(), ps); err != nil {
		t.Fatalf("first warm = %v; want nil", err)
	}

	// Wipe the cache: same address, empty storage.
	cache.Stop()
	if err := os.RemoveAll(root); err != nil {
		t.Fatal(err)
	}
	cache = registrytest.StartT(t, registrytest.Config{Root: root, RemoteURL: up.URL(), Addr: cache.Host})

	rep, err := m.Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("warm after wipe = %v; want nil", err)
	}
	if rep.Totals.BlobsMoved == 0 || rep.Totals.JournalStale == 0 || rep.Totals.Warmed != 4 {
		t.Errorf("warm after wipe: %d blobs moved, %d stale journal entries, %d warmed; want > 0, > 0, 4", rep.Totals.BlobsMoved, rep.Totals.JournalStale, rep.Totals.Warmed)
	}
	up.Stop()
	checkServes(t, cache.Host, images)
}

// TestWarmDryRunLeavesCacheUntouched counts the files in a fresh pull-through cache's
// storage before and after a dry run in warm and auto mode: a HEAD through
// distribution's proxy fetches and stores the manifest, so a dry run must not ask
// (issue 12 item 9).
func TestWarmDryRunLeavesCacheUntouched(t *testing.T) {
	t.Parallel()
	up, images := seedUpstream(t)
	root := filepath.Join(t.TempDir(), "cache")
	cache := registrytest.StartT(t, registrytest.Config{Root: root, RemoteURL: up.URL()})
	before := countFiles(t, root)
	for _, mode := range []registry.Mode{registry.ModeWarm, registry.ModeAuto} {
		ps := place(t, lockFor(up.Host, images), mirrorCfg(up.Host, cache.Host, mode))
		rep, err := registry.New(registry.WithDryRun(true)).Run(context.Background(), ps)
		if err != nil {
			t.Fatalf("%s dry run = %v; want nil", mode, err)
		}
		if rep.Totals.Planned != 4 {
			t.Errorf("%s dry run planned %d; want 4", mode, rep.Totals.Planned)
		}
		for _, ir := range rep.Images {
			if ir.Status == registry.StatusPlanned && len(ir.Notes) == 0 {
				t.Errorf("%s dry run: %s planned without a note; want the plan to say the cache was not probed", mode, ir.Ref)
			}
		}
		if after := countFiles(t, root); after != before {
			t.Errorf("%s dry run: cache storage holds %d files, %d before; want it unchanged", mode, after, before)
		}
	}
}

func countFiles(t *testing.T, root string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(root, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.IsDir() {
			n++
		}
		return nil
	})
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	return n
}
