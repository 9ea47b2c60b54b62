package registry

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync"
	"time"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/imgpipe/imgpipe/site"
)

// journal remembers which blobs a cache confirmed storing, for which repository, and
// when, and which whole images (see imageEntry). It is a hint, never the truth: a HEAD
// through a pull-through cache falls through to the upstream and proves nothing, so a
// rerun asks for a blob's first byte (one ranged GET, answered 206 only from the cache's
// own storage: per image, its canary's; per blob where the image is walked) and warms again
// whatever the cache lost (wiped, expired). What the journal saves is the fill, which
// is where the time goes.
type journal struct {
	path string
	ttl  time.Duration
	now  time.Time

	mu      sync.Mutex
	Entries map[string]int64 `json:"entries"` // host/repo@digest -> unix seconds warmed
	// Images describes the image-level entries (host/repo@digest of a tag's manifest,
	// dated by the oldest of its blobs): see imageEntry.
	Images map[string]imageEntry `json:"images,omitempty"`
	dirty  bool
}

// imageEntry lets a rerun re-check a whole warmed image cheaply, by cache identity plus
// expiry: the image's entry is younger than the journal's TTL (shorter than the cache's),
// and the cache still serves every canary from its own storage. There is one canary per
// image manifest of the tree (per platform), its blob with the oldest entry (the first to
// expire). A wiped or replaced cache fails those ranged GETs, and so does one wiped and
// then refilled by nodes of one platform; the image is then warmed blob by blob again.
type imageEntry struct {
	Canaries []string `json:"canaries"`
	Blobs    int      `json:"blobs"`
}

// valid says whether the entry can be used: canaries go into URL paths, so each must be
// a digest.
func (e imageEntry) valid() bool {
	if len(e.Canaries) == 0 || e.Blobs < len(e.Canaries) {
		return false
	}
	for _, c := range e.Canaries {
		if !isDigest(c) {
			return false
		}
	}
	return true
}

func newJournal(path string, ttl time.Duration, now time.Time) *journal {
	return &journal{path: path, ttl: ttl, now: now, Entries: map[string]int64{}, Images: map[string]imageEntry{}}
}

// loadJournal reads path; a missing file is an empty journal. On a corrupt file it
// returns an empty journal and the error, so the caller can warn and carry on.
func loadJournal(path string, ttl time.Duration, now time.Time) (*journal, error) {
	j := newJournal(path, ttl, now)
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return j, nil
	}
	if err != nil {
		return j, fmt.Errorf("reading journal: %w", err)
	}
	if err := json.Unmarshal(data, j); err != nil {
		j.Entries = map[string]int64{}
		return j, fmt.Errorf("parsing journal %s: %w", path, err)
	}
	if j.Entries == nil {
		j.Entries = map[string]int64{}
	}
	if j.Images == nil {
		j.Images = map[string]imageEntry{}
	}
	// Drop what the caches have expired by now.
	for k, t := range j.Entries {
		if now.Sub(time.Unix(t, 0)) > ttl {
			delete(j.Entries, k)
			j.dirty = true
		}
	}
	// Canaries go into URL paths: an entry with anything but digests is dropped, not sent.
	for k, e := range j.Images {
		if _, ok := j.Entries[k]; !ok || !e.valid() {
			delete(j.Images, k)
			j.dirty = true
		}
	}
	return j, nil
}

// isDigest says whether s is a well-formed digest (sha256:<64 hex>, or another algorithm).
func isDigest(s string) bool {
	_, err := v1.NewHash(s)
	return err == nil
}

// image returns the image-level entry of key when both it and its date are fresh.
func (j *journal) image(key string) (imageEntry, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	if _, ok := j.Entries[key]; !ok {
		return imageEntry{}, false
	}
	e, ok := j.Images[key]
	return e, ok
}

// addImage records an image-level entry dated by the oldest of its blobs' entries.
func (j *journal) addImage(key string, oldest int64, e imageEntry) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.Entries[key] = oldest
	j.Images[key] = e
	j.dirty = true
}

func (j *journal) fresh(key string) bool {
	j.mu.Lock()
	defer j.mu.Unlock()
	_, ok := j.Entries[key]
	return ok
}

func (j *journal) add(key string) {
	j.mu.Lock()
	defer j.mu.Unlock()
	j.Entries[key] = time.Now().Unix()
	j.dirty = true
}

// save writes the journal atomically; without a path it does nothing.
func (j *journal) save() error {
	j.mu.Lock()
	defer j.mu.Unlock()
	if j.path == "" || !j.dirty {
		return nil
	}
	data, err := json.Marshal(j)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(j.path), 0o755); err != nil {
		return fmt.Errorf("writing journal: %w", err)
	}
	if err := site.WriteFileAtomic(j.path, data, 0o644); err != nil {
		return err
	}
	j.dirty = false
	return nil
}

// JournalPath resolves a --journal setting: "" is the default file in the user cache
// directory, "off" disables the journal (returns "").
func JournalPath(setting string) string {
	switch setting {
	case "off":
		return ""
	case "":
		if dir, err := os.UserCacheDir(); err == nil {
			return filepath.Join(dir, "imgpipe", "warm-journal.json")
		}
		return ""
	}
	return setting
}
