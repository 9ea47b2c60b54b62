package registry

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/httpx"
)

// FuzzParseRetryAfter: any header value parses without panic, and an accepted one is
// never a negative wait. Seeds: testdata/retry-after.txt, one value a line.
func FuzzParseRetryAfter(f *testing.F) {
	seeds, err := os.ReadFile("testdata/retry-after.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, s := range strings.Split(string(seeds), "\n") {
		f.Add(s)
	}
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := httpx.ParseRetryAfter(v, now)
		if ok && d < 0 {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v, true; want a wait >= 0", v, d)
		}
		if !ok && d != 0 {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v, false; want 0 when refused", v, d)
		}
	})
}

// FuzzLoadJournal: any journal file loads without panic, and every image entry that
// survives has a dated entry and valid canaries (digests: they go into URL paths; at
// least one, no more than blobs). Seed: testdata/journal.json.
func FuzzLoadJournal(f *testing.F) {
	seed, err := os.ReadFile("testdata/journal.json")
	if err != nil {
		f.Fatal(err)
	}
	f.Add(seed)
	f.Add([]byte(`{"entries":null,"images":{"k":{"canaries":["sha256:00"],"blobs":1}}}`))
	dir := f.TempDir()
	f.Fuzz(func(t *testing.T, data []byte) {
		path := filepath.Join(dir, "journal.json")
		if err := os.WriteFile(path, data, 0o644); err != nil {
			t.Fatal(err)
		}
		j, _ := loadJournal(path, 100*365*24*time.Hour, time.Now())
		for k, e := range j.Images {
			if _, dated := j.Entries[k]; !dated || !e.valid() {
				t.Errorf("loadJournal kept image entry %q = %+v (dated %v); want it dropped", k, e, dated)
			}
		}
	})
}
