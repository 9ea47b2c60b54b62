package factory

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/imgpipe/imgpipe/site"
)

// ErrDigestMismatch is returned when downloaded bytes do not match the digests the
// caller expected (e.g. those recorded in the lock).
var ErrDigestMismatch = errors.New("downloaded artifact does not match the expected digest")

// errRestart asks the download loop to start again from byte 0.
var errRestart = errors.New("restarting download")

// errStalled cancels a download whose body made no progress within the timeout.
var errStalled = errors.New("download stalled")

// Cache is a content-addressed store of downloaded artifacts:
//
//	<dir>/blobs/sha256/<hex>     complete, verified files, named by their sha256
//	<dir>/refs/<sha256(url)>.json  which blob a URL produced, with its digests
//	<dir>/partial/<sha256(url)>  an interrupted download, resumed with HTTP Range
//
// A file only ever appears under blobs/ by an atomic rename of a complete,
// hashed download, so no half file sits under a final name.
type Cache struct {
	Dir string
}

// ref is the JSON stored under refs/.
type ref struct {
	URL string `json:"url"`
	Digests
}

// partialMeta lets a resumed download ask the server whether the bytes it has are
// still the same representation (If-Range).
type partialMeta struct {
	URL          string `json:"url"`
	ETag         string `json:"etag,omitempty"`
	LastModified string `json:"last_modified,omitempty"`
	Total        int64  `json:"total"`
}

// validator is what If-Range can carry: a strong ETag, else Last-Modified.
func (m *partialMeta) validator() string {
	if m.ETag != "" && !strings.HasPrefix(m.ETag, "W/") {
		return m.ETag
	}
	return m.LastModified
}

func urlKey(u string) string {
	s := sha256.Sum256([]byte(u))
	return hex.EncodeToString(s[:])
}

// BlobPath is where a file with the given "sha256:<hex>" digest lives.
func (c Cache) BlobPath(sha256Digest string) string {
	return filepath.Join(c.Dir, "blobs", "sha256", strings.TrimPrefix(sha256Digest, "sha256:"))
}

var hex64RE = regexp.MustCompile(`^[0-9a-f]{64}$`)

// Locate fills in the local file of every artifact in the lock that has a sha256
// and no file, when the cache holds that blob. The lock does not carry local paths
// (the cache belongs to the runner), so a stage that reads the file calls this first.
func (c Cache) Locate(l *site.Lock) {
	if l == nil || c.Dir == "" {
		return
	}
	for i := range l.Profiles {
		for j := range l.Profiles[i].Artifacts {
			a := &l.Profiles[i].Artifacts[j]
			// A hand-written lock may hold bare hex; anything else is not a cache key
			// (and must not become a path).
			if a.File != "" || !hex64RE.MatchString(strings.TrimPrefix(a.SHA256, "sha256:")) {
				continue
			}
			if fi, err := os.Stat(c.BlobPath(a.SHA256)); err == nil && fi.Mode().IsRegular() {
				a.File = c.BlobPath(a.SHA256)
			}
		}
	}
}

func (c Cache) refPath(u string) string     { return filepath.Join(c.Dir, "refs", urlKey(u)+".json") }
func (c Cache) partialPath(u string) string { return filepath.Join(c.Dir, "partial", urlKey(u)) }

// Progress reports a download's advance; Total is -1 when unknown.
type Progress struct {
	URL   string
	Phase string // "verify" (hashing a cached copy) or "download"
	Done  int64
	Total int64
}

// FetchOptions tune one Fetch.
type FetchOptions struct {
	// Expect, when set, are the digests the artifact must have (from the lock).
	// A cached copy is checked against them and a download that differs fails
	// with ErrDigestMismatch; nothing is stored.
	Expect *Digests
	// Progress, when set, is called after every chunk (about 1 MiB).
	Progress func(Progress)
}

// FetchResult describes a fetched artifact.
type FetchResult struct {
	URL  string `json:"url"`
	File string `json:"file"`
	Digests
	// Transferred is how many bytes came over the network in this call.
	Transferred int64 `json:"transferred"`
	// Cached is true when a verified cached copy was used.
	Cached bool `json:"cached"`
	// ResumedAt is the offset a partial download was resumed from (0: fresh).
	ResumedAt int64 `json:"resumed_at,omitempty"`
	// Repaired is true when a corrupt cached copy was detected and replaced.
	Repaired bool `json:"repaired,omitempty"`
}

// Fetch makes the artifact at rawURL available in the cache and returns its path
// and digests. A cached copy is re-hashed and used when it matches the digests
// known for the URL (opt.Expect, else the cache's own record); a corrupt one is
// removed and fetched again. Downloads stream to disk with sha256 and sha512
// computed on the way, resume with HTTP Range after an interruption (in this
// call, or a later one after a crash), and land under blobs/ by atomic rename.
func (c *Client) Fetch(ctx context.Context, cache Cache, rawURL string, opt FetchOptions) (FetchResult, error) {
	res := FetchResult{URL: rawURL}
	if err := os.MkdirAll(filepath.Dir(cache.partialPath(rawURL)), 0o755); err != nil {
		return res, fmt.Errorf("creating cache dir: %w", err)
	}
	unlock, err := lockFile(ctx, cache.partialPath(rawURL)+".lock")
	if err != nil {
		return res, err
	}
	defer unlock()
	known := opt.Expect
	if known == nil || known.SHA256 == "" {
		if r, err := cache.readRef(rawURL); err == nil {
			known = &r.Digests
		}
	}
	if known != nil && known.SHA256 != "" {
		blob := cache.BlobPath(known.SHA256)
		got, err := c.hashFile(ctx, blob, rawURL, opt.Progress)
		switch {
		case err == nil && sameDigests(got, *known):
			if err := cache.writeRef(rawURL, got); err != nil {
				return res, err
			}
			res.File, res.Digests, res.Cached = blob, got, true
			return res, nil
		case err == nil:
			c.log.Warn("cached artifact is corrupt; fetching it again", "file", blob, "want", known.SHA256, "got", got.SHA256)
			if err := os.Remove(blob); err != nil {
				return res, fmt.Errorf("removing corrupt cached %s: %w", blob, err)
			}
			res.Repaired = true
		case errors.Is(err, fs.ErrNotExist):
		case ctx.Err() != nil:
			return res, err
		default:
			return res, err
		}
	}
	got, err := c.download(ctx, cache, rawURL, opt, &res)
	if err != nil {
		return res, err
	}
	if opt.Expect != nil && opt.Expect.SHA256 != "" && !sameDigests(got, *opt.Expect) {
		_ = os.Remove(cache.partialPath(rawURL))
		_ = os.Remove(cache.partialPath(rawURL) + ".json")
		return res, fmt.Errorf("fetching %s: %w: expected %s (%d bytes), got %s (%d bytes); if the factory rebuilt it on purpose, re-resolve the lock",
			redactURL(rawURL), ErrDigestMismatch, opt.Expect.SHA256, opt.Expect.Size, got.SHA256, got.Size)
	}
	blob := cache.BlobPath(got.SHA256)
	if err := os.MkdirAll(filepath.Dir(blob), 0o755); err != nil {
		return res, fmt.Errorf("creating cache dir: %w", err)
	}
	if err := os.Rename(cache.partialPath(rawURL), blob); err != nil {
		return res, fmt.Errorf("storing %s in the cache: %w", redactURL(rawURL), err)
	}
	_ = os.Remove(cache.partialPath(rawURL) + ".json")
	syncDir(filepath.Dir(blob))
	if err := cache.writeRef(rawURL, got); err != nil {
		return res, err
	}
	res.File, res.Digests = blob, got
	return res, nil
}

func sameDigests(a, b Digests) bool {
	return a.SHA256 == b.SHA256 && (b.SHA512 == "" || a.SHA512 == b.SHA512) && (b.Size == 0 || a.Size == b.Size)
}

// hashFile digests a cached file, reporting progress in the "verify" phase.
func (c *Client) hashFile(ctx context.Context, path, rawURL string, progress func(Progress)) (Digests, error) {
	f, err := os.Open(path)
	if err != nil {
		return Digests{}, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return Digests{}, fmt.Errorf("verifying cached %s: %w", path, err)
	}
	d := newDigester()
	defer d.close()
	var done int64
	err = digestReader(d, ctxReader{ctx, f}, nil, func(n int) {
		done += int64(n)
		if progress != nil {
			progress(Progress{URL: rawURL, Phase: "verify", Done: done, Total: st.Size()})
		}
	})
	if err != nil {
		return Digests{}, fmt.Errorf("verifying cached %s: %w", path, err)
	}
	return d.sum(), nil
}

// download fills cache.partialPath(rawURL) with the whole artifact and returns
// its digests. It resumes an existing partial file when the server supports Range
// and the representation is unchanged (If-Range), and retries broken or stalled
// bodies from where they stopped, up to the retry policy's attempts.
func (c *Client) download(ctx context.Context, cache Cache, rawURL string, opt FetchOptions, res *FetchResult) (Digests, error) {
	part := cache.partialPath(rawURL)
	if err := os.MkdirAll(filepath.Dir(part), 0o755); err != nil {
		return Digests{}, fmt.Errorf("creating cache dir: %w", err)
	}
	f, err := os.OpenFile(part, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return Digests{}, fmt.Errorf("opening partial download: %w", err)
	}
	defer f.Close()

	d := newDigester()
	defer d.close()
	meta, _ := readJSON[partialMeta](part + ".json")
	var offset int64
	if meta != nil && meta.URL == rawURL && meta.validator() != "" {
		// Re-hash what an earlier run left, so the digests cover the whole file.
		if err := digestReader(d, ctxReader{ctx, f}, nil, nil); err != nil {
			return Digests{}, fmt.Errorf("reading partial download: %w", err)
		}
		offset = d.size
		if offset > 0 {
			res.ResumedAt = offset
			c.log.Info("resuming download", "url", redactURL(rawURL), "offset", offset)
		}
	} else if err := f.Truncate(0); err != nil {
		return Digests{}, fmt.Errorf("resetting partial download: %w", err)
	}

	pol := c.policy.withDefaults()
	for attempt := 1; ; attempt++ {
		err := c.downloadFrom(ctx, f, d, rawURL, part, &meta, opt, res)
		if err == nil {
			break
		}
		if (!Retryable(err) && !errors.Is(err, errRestart)) || attempt >= pol.Attempts || ctx.Err() != nil {
			if attempt > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return Digests{}, err
		}
		wait := (&Transport{Policy: pol}).backoff(pol, attempt)
		c.log.Info("download interrupted; resuming", "url", redactURL(rawURL), "at", d.size, "wait", wait, "cause", err)
		if err := sleepCtx(ctx, wait); err != nil {
			return Digests{}, fmt.Errorf("fetching %s: %w", redactURL(rawURL), err)
		}
	}
	if err := f.Sync(); err != nil {
		return Digests{}, fmt.Errorf("syncing %s: %w", part, err)
	}
	return d.sum(), nil
}

// downloadFrom performs one GET from the digester's current size and appends the body.
func (c *Client) downloadFrom(ctx context.Context, f *os.File, d *digester, rawURL, part string, meta **partialMeta, opt FetchOptions, res *FetchResult) error {
	offset := d.size
	reqCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	req, err := http.NewRequestWithContext(reqCtx, http.MethodGet, rawURL, nil)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", redactURL(rawURL), err)
	}
	c.authorize(req)
	if offset > 0 && *meta != nil {
		// Without a validator only this run's own partial is resumed, never one
		// left by an earlier run (see download).
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", offset))
		if v := (*meta).validator(); v != "" {
			req.Header.Set("If-Range", v)
		}
	}
	resp, err := c.dl.Do(req)
	if err != nil {
		return fmt.Errorf("fetching %s: %w", redactURL(rawURL), err)
	}
	defer resp.Body.Close()

	total := int64(-1)
	switch {
	case resp.StatusCode == http.StatusPartialContent && offset > 0:
		start, size, ok := parseContentRange(resp.Header.Get("Content-Range"))
		if !ok || start != offset {
			return fmt.Errorf("fetching %s: server answered range %q to a request from byte %d", redactURL(rawURL), resp.Header.Get("Content-Range"), offset)
		}
		total = size
	case resp.StatusCode == http.StatusOK:
		if offset > 0 {
			c.log.Info("server sent the whole artifact; restarting download", "url", redactURL(rawURL))
			if err := restart(f, d); err != nil {
				return err
			}
			offset = 0
			res.ResumedAt = 0
		}
		total = resp.ContentLength
		m := &partialMeta{URL: rawURL, ETag: resp.Header.Get("ETag"), LastModified: resp.Header.Get("Last-Modified"), Total: total}
		if err := writeJSONAtomic(part+".json", m); err != nil {
			return err
		}
		*meta = m
	case resp.StatusCode == http.StatusRequestedRangeNotSatisfiable && offset > 0:
		if *meta != nil && (*meta).Total == offset {
			return nil // an earlier run got every byte but stopped before storing it
		}
		if err := restart(f, d); err != nil {
			return err
		}
		*meta = nil
		res.ResumedAt = 0
		return fmt.Errorf("fetching %s: partial download is not a prefix of the artifact: %w", redactURL(rawURL), errRestart)
	default:
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		return fmt.Errorf("fetching %s: %w", redactURL(rawURL), &HTTPError{Code: resp.StatusCode, Message: strings.TrimSpace(string(body))})
	}

	// A stalled body is cancelled and retried from where it stopped.
	var watchdog *time.Timer
	if c.timeout > 0 {
		watchdog = time.AfterFunc(c.timeout, func() { cancel(errStalled) })
		defer watchdog.Stop()
	}
	err = digestReader(d, resp.Body, f, func(n int) {
		if watchdog != nil {
			watchdog.Reset(c.timeout)
		}
		res.Transferred += int64(n)
		if opt.Progress != nil {
			opt.Progress(Progress{URL: rawURL, Phase: "download", Done: d.size, Total: total})
		}
	})
	if err != nil {
		if errors.Is(context.Cause(reqCtx), errStalled) && ctx.Err() == nil {
			return fmt.Errorf("fetching %s: no data for %s: %w", redactURL(rawURL), c.timeout, ErrAttemptTimeout)
		}
		var pe *fs.PathError
		if errors.As(err, &pe) {
			return fmt.Errorf("writing %s: %w", part, err)
		}
		return fmt.Errorf("fetching %s at byte %d: %w", redactURL(rawURL), d.size, err)
	}
	if total >= 0 && d.size != total {
		return fmt.Errorf("fetching %s: got %d of %d bytes: %w", redactURL(rawURL), d.size, total, io.ErrUnexpectedEOF)
	}
	return nil
}

// restart throws away a partial download's bytes and hash state.
func restart(f *os.File, d *digester) error {
	d.wg.Wait()
	if err := f.Truncate(0); err != nil {
		return fmt.Errorf("resetting partial download: %w", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return fmt.Errorf("resetting partial download: %w", err)
	}
	d.s256.Reset()
	d.s512.Reset()
	d.size = 0
	return nil
}

// parseContentRange reads "bytes <start>-<end>/<size>".
func parseContentRange(v string) (start, size int64, ok bool) {
	rest, found := strings.CutPrefix(v, "bytes ")
	if !found {
		return 0, 0, false
	}
	rng, sz, found := strings.Cut(rest, "/")
	if !found {
		return 0, 0, false
	}
	s, _, found := strings.Cut(rng, "-")
	if !found {
		return 0, 0, false
	}
	start, err1 := strconv.ParseInt(s, 10, 64)
	size, err2 := strconv.ParseInt(sz, 10, 64)
	if err1 != nil {
		return 0, 0, false
	}
	if err2 != nil {
		size = -1 // "*": unknown
	}
	return start, size, true
}

func (c Cache) readRef(u string) (*ref, error) {
	r, err := readJSON[ref](c.refPath(u))
	if err != nil {
		return nil, err
	}
	if r.URL != u {
		return nil, fmt.Errorf("cache ref %s is for %s", c.refPath(u), r.URL)
	}
	return r, nil
}

func (c Cache) writeRef(u string, d Digests) error {
	p := c.refPath(u)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("creating cache dir: %w", err)
	}
	return writeJSONAtomic(p, ref{URL: u, Digests: d})
}

func readJSON[T any](path string) (*T, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var v T
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, fmt.Errorf("reading %s: %w", path, err)
	}
	return &v, nil
}

func writeJSONAtomic(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return fmt.Errorf("encoding %s: %w", path, err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".tmp-*")
	if err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	if err := os.Rename(tmp.Name(), path); err != nil {
		return fmt.Errorf("writing %s: %w", path, err)
	}
	return nil
}

func syncDir(dir string) {
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
}

// redactURL drops userinfo and query (tokens) from a URL for messages.
func redactURL(raw string) string {
	if i := strings.IndexAny(raw, "?#"); i >= 0 {
		raw = raw[:i]
	}
	if scheme, rest, ok := strings.Cut(raw, "://"); ok {
		if at := strings.Index(rest, "@"); at >= 0 && at < strings.IndexByte(rest+"/", '/') {
			rest = rest[at+1:]
		}
		return scheme + "://" + rest
	}
	return raw
}

// ctxReader stops a long local read when ctx is cancelled.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
