package registry

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/imgpipe/imgpipe/internal/httpx"
)

// manifestAccept lists every manifest type we copy; asking for all of them keeps the
// registry from converting an index into a single-platform image.
var manifestAccept = strings.Join([]string{
	string(types.OCIImageIndex),
	string(types.OCIManifestSchema1),
	string(types.DockerManifestList),
	string(types.DockerManifestSchema2),
	string(types.DockerManifestSchema1),
	string(types.DockerManifestSchema1Signed),
}, ", ")

// maxManifestSize bounds what we buffer for one manifest (distribution's own limit is 4 MiB).
const maxManifestSize = 8 << 20

// counters are shared by every client of a run; they end up in the report.
type counters struct {
	requests atomic.Int64
	bytesIn  atomic.Int64
	retries  atomic.Int64
}

// countingTransport counts requests and response bytes for the report and the benchmark,
// and gives every request a timeout: idle is how long a request may make no progress
// (no request body read, no response headers, no response body bytes) before it is
// cancelled. An idle timer rather than a deadline bounds a call that hangs without
// cutting a large blob that is still moving.
type countingTransport struct {
	inner http.RoundTripper
	c     *counters
	idle  time.Duration
}

// ErrStalled means a registry request made no progress for the idle timeout.
var ErrStalled = errors.New("registry request stalled")

// stalled is ErrStalled as a net.Error timeout, so retries treat it as one.
type stalled struct{ after time.Duration }

func (s stalled) Error() string   { return fmt.Sprintf("%v: no progress for %s", ErrStalled, s.after) }
func (s stalled) Is(t error) bool { return t == ErrStalled }
func (stalled) Timeout() bool     { return true }
func (stalled) Temporary() bool   { return true }

func (t *countingTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	t.c.requests.Add(1)
	if t.idle <= 0 {
		resp, err := t.inner.RoundTrip(req)
		if err != nil {
			return nil, err
		}
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &t.c.bytesIn}
		return resp, nil
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	cause := stalled{after: t.idle}
	dog := time.AfterFunc(t.idle, func() { cancel(cause) })
	req = req.Clone(ctx)
	if req.Body != nil && req.Body != http.NoBody {
		req.Body = &kickingBody{ReadCloser: req.Body, dog: dog, idle: t.idle}
	}
	resp, err := t.inner.RoundTrip(req)
	if err != nil {
		dog.Stop()
		cancel(nil)
		if errors.Is(context.Cause(ctx), ErrStalled) {
			return nil, fmt.Errorf("%s %s: %w", req.Method, req.URL.Redacted(), cause)
		}
		return nil, err
	}
	dog.Reset(t.idle)
	resp.Body = &countingBody{ReadCloser: &kickingBody{ReadCloser: resp.Body, dog: dog, idle: t.idle, ctx: ctx, cancel: cancel}, n: &t.c.bytesIn}
	return resp, nil
}

// kickingBody resets the idle timer on every read; as a response body it also ends the
// request's context on Close and reports a stall as such.
type kickingBody struct {
	io.ReadCloser
	dog    *time.Timer
	idle   time.Duration
	ctx    context.Context
	cancel context.CancelCauseFunc
}

func (b *kickingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	if n > 0 {
		b.dog.Reset(b.idle)
	}
	if err != nil && b.ctx != nil && !errors.Is(err, io.EOF) {
		if c := context.Cause(b.ctx); errors.Is(c, ErrStalled) {
			return n, c
		}
	}
	return n, err
}

func (b *kickingBody) Close() error {
	err := b.ReadCloser.Close()
	if b.cancel != nil {
		b.dog.Stop()
		b.cancel(nil)
	}
	return err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

// maxRetryAfter is the longest Retry-After a run waits for (unless Backoff.Max is longer).
const maxRetryAfter = 2 * time.Minute

// Backoff is the retry schedule for 429, 5xx, resets and cut transfers.
type Backoff struct {
	Initial time.Duration // first wait
	Max     time.Duration // cap of one backoff wait; Retry-After is honoured up to max(Max, 2m)
	Steps   int           // attempts in all

	// sleep replaces the timer in tests, which record the waits instead of timing them.
	sleep func(ctx context.Context, d time.Duration) error
}

// wait sleeps d or until ctx is done.
func (b Backoff) wait(ctx context.Context, d time.Duration) error {
	if b.sleep != nil {
		return b.sleep(ctx, d)
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-t.C:
		return nil
	}
}

// DefaultBackoff waits 250ms, 500ms, 1s, 2s, 4s: about 8s over six attempts.
func DefaultBackoff() Backoff {
	return Backoff{Initial: 250 * time.Millisecond, Max: 10 * time.Second, Steps: 6}
}

// retryAfter carries a server's Retry-After wish through an error.
type retryAfter struct {
	err  error
	wait time.Duration
}

func (r *retryAfter) Error() string { return r.err.Error() }
func (r *retryAfter) Unwrap() error { return r.err }

// retry runs f until it succeeds, fails permanently, or the steps run out.
func retry(ctx context.Context, b Backoff, c *counters, f func() error) error {
	wait := b.Initial
	var err error
	for attempt := 1; ; attempt++ {
		if err = f(); err == nil || !retryable(err) || attempt >= b.Steps {
			return err
		}
		if ctx.Err() != nil {
			return err
		}
		d := wait + time.Duration(rand.Int64N(int64(wait/10)+1))
		if ra, ok := serverWait(err); ok {
			// The server said when: exactly then, neither sooner nor (jitter) later. A
			// wish beyond maxRetryAfter is not worth waiting for in a run.
			if ra > max(b.Max, maxRetryAfter) {
				return fmt.Errorf("server asks to retry after %s: %w", ra, err)
			}
			d = ra
		}
		c.retries.Add(1)
		if werr := b.wait(ctx, d); werr != nil {
			return errors.Join(err, werr)
		}
		wait = min(wait*2, b.Max)
	}
}

// serverWait is the wait a Retry-After header asked for, if the error carries one.
func serverWait(err error) (time.Duration, bool) {
	var ra *retryAfter
	if errors.As(err, &ra) {
		return ra.wait, true
	}
	return 0, false
}

// errShortBlob means a blob read ended before its size or with the wrong digest.
var errShortBlob = errors.New("blob content incomplete or corrupt")

// retryable says whether an error is worth another attempt: throttling, server errors,
// and transfers the network cut short. Client errors (404, 401, 400) are not.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode == http.StatusRequestTimeout || te.StatusCode == http.StatusTooManyRequests || te.StatusCode >= 500
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) || errors.Is(err, errShortBlob) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) ||
		errors.Is(err, net.ErrClosed) {
		return true
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	// net/http reports some cut connections only as text.
	msg := err.Error()
	return strings.Contains(msg, "connection reset") || strings.Contains(msg, "server closed") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "transport connection broken")
}

// regClient talks to one registry host. It keeps one authenticated transport per
// repository and scope, as ggcr's remote package does.
type regClient struct {
	reg     name.Registry
	auth    authn.Authenticator
	base    http.RoundTripper
	backoff Backoff
	c       *counters

	mu  sync.Mutex
	rts map[string]http.RoundTripper

	// setup guards the first ping; shared is the one transport of a registry that
	// does not hand out per-repository tokens (anonymous or basic auth).
	setup  sync.Mutex
	pinged bool
	shared http.RoundTripper
}

func (rc *regClient) transport(ctx context.Context, repo string, push bool) (http.RoundTripper, error) {
	scope := transport.PullScope
	if push {
		scope = transport.PushScope
	}
	key := repo + "|" + scope
	rc.mu.Lock()
	rt, ok := rc.rts[key]
	if !ok {
		rt, ok = rc.shared, rc.shared != nil
	}
	rc.mu.Unlock()
	if ok {
		return rt, nil
	}
	if shared, err := rc.sharedTransport(ctx); err != nil || shared != nil {
		return shared, err
	}
	err := retry(ctx, rc.backoff, rc.c, func() error {
		var err error
		rt, err = transport.NewWithContext(ctx, rc.reg, rc.auth, rc.base, []string{rc.reg.Repo(repo).Scope(scope)})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", rc.reg.RegistryStr(), err)
	}
	rc.mu.Lock()
	rc.rts[key] = rt
	rc.mu.Unlock()
	return rt, nil
}

// sharedTransport pings the registry once. Without a bearer challenge every repository
// and scope can share one transport, which saves a ping per repository on every run.
// It returns nil when the registry wants per-repository tokens.
func (rc *regClient) sharedTransport(ctx context.Context) (http.RoundTripper, error) {
	rc.setup.Lock()
	defer rc.setup.Unlock()
	if rc.pinged {
		rc.mu.Lock()
		defer rc.mu.Unlock()
		return rc.shared, nil
	}
	var ch *transport.Challenge
	err := retry(ctx, rc.backoff, rc.c, func() error {
		var err error
		ch, err = transport.Ping(ctx, rc.reg, rc.base)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", rc.reg.RegistryStr(), err)
	}
	rc.pinged = true
	if strings.EqualFold(ch.Scheme, "bearer") {
		return nil, nil
	}
	rt, err := transport.NewWithContext(ctx, rc.reg, rc.auth, rc.base, nil)
	if err != nil {
		return nil, fmt.Errorf("connecting to %s: %w", rc.reg.RegistryStr(), err)
	}
	rc.mu.Lock()
	rc.shared = rt
	rc.mu.Unlock()
	return rt, nil
}

func (rc *regClient) url(repo, rest string) string {
	return rc.reg.Scheme() + "://" + rc.reg.RegistryStr() + "/v2/" + repo + rest
}

// do sends one request and checks its status; a non-matching status becomes *transport.Error.
func (rc *regClient) do(ctx context.Context, repo string, push bool, req *http.Request, codes ...int) (*http.Response, error) {
	rt, err := rc.transport(ctx, repo, push)
	if err != nil {
		return nil, err
	}
	resp, err := (&http.Client{Transport: rt}).Do(req)
	if err != nil {
		return nil, err
	}
	if err := transport.CheckError(resp, codes...); err != nil {
		resp.Body.Close()
		if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
			return nil, &retryAfter{err: err, wait: d}
		}
		return nil, err
	}
	return resp, nil
}

func statusOf(err error) int {
	var te *transport.Error
	if errors.As(err, &te) {
		return te.StatusCode
	}
	return 0
}

// manifest is one manifest as the registry served it: bytes are kept verbatim so the
// digest is identical wherever it is written.
type manifest struct {
	Digest    string
	MediaType types.MediaType
	Body      []byte
}

// headManifest resolves ref (tag or digest) in repo. found is false on 404.
func (rc *regClient) headManifest(ctx context.Context, repo, ref string) (digest string, found bool, err error) {
	err = retry(ctx, rc.backoff, rc.c, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, rc.url(repo, "/manifests/"+ref), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", manifestAccept)
		resp, err := rc.do(ctx, repo, false, req, http.StatusOK)
		if err != nil {
			return err
		}
		resp.Body.Close()
		digest, found = resp.Header.Get("Docker-Content-Digest"), true
		if digest == "" {
			// Some registries omit the header on HEAD; GET and hash instead.
			m, err := rc.getManifestOnce(ctx, repo, ref)
			if err != nil {
				return err
			}
			digest = m.Digest
		}
		return nil
	})
	if statusOf(err) == http.StatusNotFound {
		return "", false, nil
	}
	if err != nil {
		return "", false, fmt.Errorf("resolving %s/%s:%s: %w", rc.reg.RegistryStr(), repo, ref, err)
	}
	return digest, found, nil
}

// getManifest fetches ref (tag or digest). A digest ref is checked against the content.
// found is false on 404.
func (rc *regClient) getManifest(ctx context.Context, repo, ref string) (*manifest, bool, error) {
	var m *manifest
	err := retry(ctx, rc.backoff, rc.c, func() error {
		var err error
		m, err = rc.getManifestOnce(ctx, repo, ref)
		return err
	})
	if statusOf(err) == http.StatusNotFound {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("fetching manifest %s/%s@%s: %w", rc.reg.RegistryStr(), repo, ref, err)
	}
	return m, true, nil
}

func (rc *regClient) getManifestOnce(ctx context.Context, repo, ref string) (*manifest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.url(repo, "/manifests/"+ref), nil)
	if err != nil {
		return nil, err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := rc.do(ctx, repo, false, req, http.StatusOK)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxManifestSize+1))
	if err != nil {
		return nil, err
	}
	if len(body) > maxManifestSize {
		return nil, fmt.Errorf("manifest larger than %d bytes", maxManifestSize)
	}
	sum := sha256.Sum256(body)
	d := "sha256:" + hex.EncodeToString(sum[:])
	if strings.HasPrefix(ref, "sha256:") && d != ref {
		return nil, fmt.Errorf("manifest content has digest %s, not %s: %w", d, ref, errShortBlob)
	}
	mt := types.MediaType(resp.Header.Get("Content-Type"))
	if i := strings.IndexByte(string(mt), ';'); i >= 0 {
		mt = mt[:i]
	}
	return &manifest{Digest: d, MediaType: mt, Body: body}, nil
}

// putManifest writes m under ref (its digest, or a tag). stored is the digest the
// registry says it stored (Docker-Content-Digest), "" when it did not say.
func (rc *regClient) putManifest(ctx context.Context, repo, ref string, m *manifest) (stored string, err error) {
	err = retry(ctx, rc.backoff, rc.c, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodPut, rc.url(repo, "/manifests/"+ref), strings.NewReader(string(m.Body)))
		if err != nil {
			return err
		}
		req.Header.Set("Content-Type", string(m.MediaType))
		resp, err := rc.do(ctx, repo, true, req, http.StatusCreated, http.StatusOK, http.StatusAccepted)
		if err != nil {
			return err
		}
		resp.Body.Close()
		stored = resp.Header.Get("Docker-Content-Digest")
		return nil
	})
	if err != nil {
		return "", fmt.Errorf("writing manifest %s/%s:%s: %w", rc.reg.RegistryStr(), repo, ref, err)
	}
	return stored, nil
}

// blobExists is one HEAD with a push-scoped token (the push path asks before it
// uploads); found is false on 404.
func (rc *regClient) blobExists(ctx context.Context, repo, digest string) (bool, error) {
	return rc.headBlob(ctx, repo, digest, true, rc.backoff, rc.c)
}

// headBlob is one HEAD of a blob, retried with b and counted in c; push picks the
// token's scope (a drift check needs only pull rights). found is false on 404.
func (rc *regClient) headBlob(ctx context.Context, repo, digest string, push bool, b Backoff, c *counters) (bool, error) {
	var found bool
	err := retry(ctx, b, c, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, rc.url(repo, "/blobs/"+digest), nil)
		if err != nil {
			return err
		}
		resp, err := rc.do(ctx, repo, push, req, http.StatusOK)
		if statusOf(err) == http.StatusNotFound {
			found = false
			return nil
		}
		if err != nil {
			return err
		}
		resp.Body.Close()
		found = true
		return nil
	})
	if err != nil {
		return false, fmt.Errorf("checking blob %s in %s/%s: %w", digest, rc.reg.RegistryStr(), repo, err)
	}
	return found, nil
}

// openBlob starts a GET of a blob; the caller reads and closes it. Not retried here:
// the caller retries the whole transfer.
func (rc *regClient) openBlob(ctx context.Context, repo, digest string) (io.ReadCloser, int64, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.url(repo, "/blobs/"+digest), nil)
	if err != nil {
		return nil, 0, err
	}
	resp, err := rc.do(ctx, repo, false, req, http.StatusOK)
	if err != nil {
		return nil, 0, fmt.Errorf("fetching blob %s from %s/%s: %w", digest, rc.reg.RegistryStr(), repo, err)
	}
	return resp.Body, resp.ContentLength, nil
}

// errUnsupported means the registry refused an upload: a pull-through cache.
var errUnsupported = errors.New("registry refuses uploads (pull-through cache?)")

// startUpload opens an upload session; with from set it first asks for a cross-repository
// mount, and mounted is true when the registry linked the blob without any data.
// Not retried here: callers retry the whole transfer.
func (rc *regClient) startUpload(ctx context.Context, repo, mountDigest, from string) (location string, mounted bool, err error) {
	err = func() error {
		u := rc.url(repo, "/blobs/uploads/")
		if from != "" {
			u += "?" + url.Values{"mount": {mountDigest}, "from": {from}}.Encode()
		}
		req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
		if err != nil {
			return err
		}
		resp, err := rc.do(ctx, repo, true, req, http.StatusCreated, http.StatusAccepted)
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusCreated {
			mounted = true
			return nil
		}
		location, err = rc.resolveLocation(resp)
		return err
	}()
	if s := statusOf(err); s == http.StatusMethodNotAllowed || s == http.StatusNotImplemented {
		return "", false, fmt.Errorf("starting upload to %s/%s: %w: %w", rc.reg.RegistryStr(), repo, errUnsupported, err)
	}
	if err != nil {
		return "", false, fmt.Errorf("starting upload to %s/%s: %w", rc.reg.RegistryStr(), repo, err)
	}
	return location, mounted, nil
}

func (rc *regClient) resolveLocation(resp *http.Response) (string, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return "", errors.New("upload response has no Location")
	}
	u, err := resp.Request.URL.Parse(loc)
	if err != nil {
		return "", fmt.Errorf("upload location %q: %w", loc, err)
	}
	return u.String(), nil
}

// finishUpload sends the whole blob in one PUT (a monolithic upload: one request instead
// of PATCH + PUT) and commits it under digest.
func (rc *regClient) finishUpload(ctx context.Context, repo, location, digest string, body io.Reader, size int64) error {
	u, err := url.Parse(location)
	if err != nil {
		return err
	}
	q := u.Query()
	q.Set("digest", digest)
	u.RawQuery = q.Encode()
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, u.String(), body)
	if err != nil {
		return err
	}
	req.ContentLength = size
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := rc.do(ctx, repo, true, req, http.StatusCreated, http.StatusNoContent, http.StatusAccepted)
	if err != nil {
		return fmt.Errorf("uploading blob %s to %s/%s: %w", digest, rc.reg.RegistryStr(), repo, err)
	}
	resp.Body.Close()
	return nil
}

// cancelUpload abandons an upload session (best effort: registries purge stale ones).
func (rc *regClient) cancelUpload(ctx context.Context, repo, location string) {
	req, err := http.NewRequestWithContext(ctx, http.MethodDelete, location, nil)
	if err != nil {
		return
	}
	if resp, err := rc.do(ctx, repo, true, req, http.StatusNoContent, http.StatusOK, http.StatusAccepted, http.StatusNotFound); err == nil {
		resp.Body.Close()
	}
}

// verifyingReader hashes what passes through and fails at EOF when size or digest differ,
// so a truncated or corrupted stream never counts as a complete blob.
// Hashing is optional: when pushing, the destination registry checks the digest itself.
type verifyingReader struct {
	r      io.Reader
	h      hash.Hash // nil: check the size only
	n      int64
	size   int64
	digest string
}

func newVerifyingReader(r io.Reader, digest string, size int64, hashed bool) *verifyingReader {
	v := &verifyingReader{r: r, size: size, digest: digest}
	if hashed && strings.HasPrefix(digest, "sha256:") {
		v.h = sha256.New()
	}
	return v
}

func (v *verifyingReader) Read(p []byte) (int, error) {
	n, err := v.r.Read(p)
	v.n += int64(n)
	if v.h != nil {
		v.h.Write(p[:n])
	}
	if errors.Is(err, io.EOF) {
		if v.size >= 0 && v.n != v.size {
			return n, fmt.Errorf("read %d of %d bytes: %w", v.n, v.size, errShortBlob)
		}
		if v.h == nil {
			return n, err
		}
		if got := "sha256:" + hex.EncodeToString(v.h.Sum(nil)); got != v.digest {
			return n, fmt.Errorf("content digest %s, want %s: %w", got, v.digest, errShortBlob)
		}
	}
	return n, err
}

// servedLocally asks a pull-through cache for a blob's first byte. distribution serves
// blobs it has stored from its own storage, which honours Range (206); a blob it does not
// hold yet is streamed from the upstream whole (200), and that response is dropped at
// once. Its proxy stores a blob in a background fetch of its own, separate from the one
// that feeds the client, so having read a blob through the cache does not prove that the
// cache kept it; this does. A 200 also restarts the background store when none is running.
func (rc *regClient) servedLocally(ctx context.Context, repo, digest string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.url(repo, "/blobs/"+digest), nil)
	if err != nil {
		return false, err
	}
	req.Header.Set("Range", "bytes=0-0")
	resp, err := rc.do(ctx, repo, false, req, http.StatusOK, http.StatusPartialContent)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent {
		return false, nil // hang up on the stream: this closes the connection
	}
	// Read the byte, so the connection goes back to the pool instead of being closed.
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 16))
	return true, nil
}

// referrers lists the manifests that name digest as their subject, through the OCI 1.1
// referrers API. supported is false when the registry has no such API (404), as
// distribution 2.8 does; clients then use the sha256-<hex> fallback tag.
func (rc *regClient) referrers(ctx context.Context, repo, digest string) (idx *v1.IndexManifest, supported bool, err error) {
	err = retry(ctx, rc.backoff, rc.c, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, rc.url(repo, "/referrers/"+digest), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", string(types.OCIImageIndex))
		resp, err := rc.do(ctx, repo, false, req, http.StatusOK)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if ct := resp.Header.Get("Content-Type"); !strings.HasPrefix(ct, string(types.OCIImageIndex)) {
			// Something answered 200 that is not the referrers API (a catch-all route).
			return nil
		}
		idx, err = v1.ParseIndexManifest(io.LimitReader(resp.Body, maxManifestSize))
		supported = err == nil
		return err
	})
	if s := statusOf(err); s == http.StatusNotFound || s == http.StatusMethodNotAllowed || s == http.StatusBadRequest {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("listing referrers of %s in %s/%s: %w", digest, rc.reg.RegistryStr(), repo, err)
	}
	return idx, supported, nil
}
