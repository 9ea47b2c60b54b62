package factory

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"github.com/imgpipe/imgpipe/internal/httpx"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"syscall"
	"time"
)

// RetryPolicy bounds how a Transport retries.
type RetryPolicy struct {
	// Attempts is the total number of tries, including the first (default 5).
	Attempts int
	// BaseDelay is the backoff before the second try; it doubles each try (default 500ms).
	BaseDelay time.Duration
	// MaxDelay caps one backoff wait (default 30s).
	MaxDelay time.Duration
	// MaxRetryAfter caps how long a server's Retry-After is honoured; a longer
	// demand ends the retries with the server's error (default 2m).
	MaxRetryAfter time.Duration
}

// DefaultRetryPolicy is what New uses when no policy is given.
func DefaultRetryPolicy() RetryPolicy {
	return RetryPolicy{Attempts: 5, BaseDelay: 500 * time.Millisecond, MaxDelay: 30 * time.Second, MaxRetryAfter: 2 * time.Minute}
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	d := DefaultRetryPolicy()
	if p.Attempts <= 0 {
		p.Attempts = d.Attempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = d.BaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = d.MaxDelay
	}
	if p.MaxRetryAfter <= 0 {
		p.MaxRetryAfter = d.MaxRetryAfter
	}
	return p
}

// Transport is an http.RoundTripper that retries idempotent-safe failures:
// 408, 429 and 5xx answers (except 501) and connection errors (reset, refused, EOF,
// timeouts). It waits with exponential backoff and full jitter, or for the
// server's Retry-After when one is sent. Requests with a body are retried only
// when the body can be replayed (req.GetBody, as http.NewRequest sets for
// bytes/strings readers).
//
// AttemptTimeout bounds each try. With BufferLimit > 0 the transport also reads
// the whole response body (up to the limit) inside the try, so a connection cut
// mid-body is retried as well; use it for API calls, not for downloads.
type Transport struct {
	// Base does the actual round trips (default http.DefaultTransport).
	Base http.RoundTripper
	// Policy bounds the retries; zero fields take DefaultRetryPolicy values.
	Policy RetryPolicy
	// AttemptTimeout bounds one try including, with BufferLimit, reading the body. 0: none.
	AttemptTimeout time.Duration
	// HeaderTimeout bounds the wait for response headers of one try, leaving the
	// body unbounded (for downloads, whose readers watch for stalls themselves). 0: none.
	HeaderTimeout time.Duration
	// BufferLimit, when > 0, makes each try read the full body into memory; a larger
	// body fails the request.
	BufferLimit int64
	// Log receives one debug line per retry (default: discard).
	Log *slog.Logger

	// sleep and jitter are replaced by tests.
	sleep  func(ctx context.Context, d time.Duration) error
	jitter func(max time.Duration) time.Duration
}

// ErrAttemptTimeout marks a try that ran out of its AttemptTimeout or HeaderTimeout.
var ErrAttemptTimeout = errors.New("request attempt timed out")

// ErrBodyTooLarge is returned when a buffered response exceeds BufferLimit.
var ErrBodyTooLarge = errors.New("response body exceeds the buffer limit")

// RoundTrip implements http.RoundTripper.
func (t *Transport) RoundTrip(req *http.Request) (*http.Response, error) {
	pol := t.Policy.withDefaults()
	base := t.Base
	if base == nil {
		base = http.DefaultTransport
	}
	log := t.Log
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	replayable := req.Body == nil || req.Body == http.NoBody || req.GetBody != nil

	var lastErr error
	for attempt := 1; ; attempt++ {
		r := req
		if attempt > 1 && req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, fmt.Errorf("replaying request body: %w", err)
			}
			r = req.Clone(req.Context())
			r.Body = body
		}
		resp, err := t.try(base, r)
		last := attempt >= pol.Attempts || !replayable
		wait, retry := t.classify(pol, attempt, resp, err)
		if !retry || last || req.Context().Err() != nil {
			if err != nil && attempt > 1 {
				err = fmt.Errorf("after %d attempts: %w", attempt, err)
			}
			return resp, err
		}
		if resp != nil {
			lastErr = &StatusError{Code: resp.StatusCode, Status: resp.Status}
			drain(resp.Body)
		} else {
			lastErr = err
		}
		log.Debug("retrying factory request", "method", req.Method, "url", req.URL.Redacted(),
			"attempt", attempt, "wait", wait, "cause", lastErr)
		if err := t.doSleep(req.Context(), wait); err != nil {
			return nil, fmt.Errorf("waiting to retry %s %s (last: %v): %w", req.Method, req.URL.Redacted(), lastErr, err)
		}
	}
}

// StatusError is a retryable HTTP status seen on an attempt that was then retried.
type StatusError struct {
	Code   int
	Status string
}

func (e *StatusError) Error() string { return "HTTP " + e.Status }

func (t *Transport) try(base http.RoundTripper, req *http.Request) (*http.Response, error) {
	if t.AttemptTimeout <= 0 && t.BufferLimit <= 0 && t.HeaderTimeout <= 0 {
		return base.RoundTrip(req)
	}
	ctx, cancel := context.WithCancelCause(req.Context())
	if t.AttemptTimeout > 0 {
		tctx, tcancel := context.WithTimeoutCause(ctx, t.AttemptTimeout, ErrAttemptTimeout)
		outer := cancel
		// The parent first, so that context.Cause(tctx) reports its cause.
		ctx, cancel = tctx, func(cause error) { outer(cause); tcancel() }
	}
	var headerTimer *time.Timer
	if t.HeaderTimeout > 0 {
		headerTimer = time.AfterFunc(t.HeaderTimeout, func() { cancel(ErrAttemptTimeout) })
	}
	resp, err := base.RoundTrip(req.WithContext(ctx))
	if headerTimer != nil {
		headerTimer.Stop()
	}
	if err != nil {
		err = t.timeoutError(ctx, req, err)
		cancel(nil)
		return nil, err
	}
	if t.BufferLimit <= 0 {
		// The deadline must keep covering the body, so cancel only when it is closed.
		resp.Body = &cancelBody{ReadCloser: resp.Body, cancel: func() { cancel(nil) }}
		return resp, nil
	}
	defer cancel(nil)
	data, err := io.ReadAll(io.LimitReader(resp.Body, t.BufferLimit+1))
	resp.Body.Close()
	if err != nil {
		return nil, fmt.Errorf("reading response body: %w", t.timeoutError(ctx, req, err))
	}
	if int64(len(data)) > t.BufferLimit {
		return nil, fmt.Errorf("%s %s: %w (%d bytes)", req.Method, req.URL.Redacted(), ErrBodyTooLarge, t.BufferLimit)
	}
	resp.Body = io.NopCloser(bytes.NewReader(data))
	resp.ContentLength = int64(len(data))
	return resp, nil
}

// timeoutError makes a try's own timeout explicit (and retryable) in err.
func (t *Transport) timeoutError(ctx context.Context, req *http.Request, err error) error {
	cause := context.Cause(ctx)
	if !errors.Is(cause, ErrAttemptTimeout) || req.Context().Err() != nil {
		return err
	}
	limit := t.AttemptTimeout
	if limit <= 0 || (t.HeaderTimeout > 0 && t.HeaderTimeout < limit) {
		limit = t.HeaderTimeout
	}
	if errors.Is(err, ErrAttemptTimeout) {
		return fmt.Errorf("no answer within %s: %w", limit, ErrAttemptTimeout)
	}
	return fmt.Errorf("no answer within %s: %w: %w", limit, ErrAttemptTimeout, err)
}

// classify says whether an attempt's outcome is worth another try and how long to wait.
func (t *Transport) classify(pol RetryPolicy, attempt int, resp *http.Response, err error) (time.Duration, bool) {
	if err != nil {
		if !Retryable(err) {
			return 0, false
		}
		return t.backoff(pol, attempt), true
	}
	switch {
	case resp.StatusCode == http.StatusTooManyRequests, resp.StatusCode == http.StatusRequestTimeout,
		resp.StatusCode >= 500 && resp.StatusCode != http.StatusNotImplemented:
	default:
		return 0, false
	}
	if ra, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		if ra > pol.MaxRetryAfter {
			return 0, false
		}
		return ra, true
	}
	return t.backoff(pol, attempt), true
}

// backoff is "full jitter": a uniform wait in [0, min(MaxDelay, BaseDelay*2^(attempt-1))],
// never below a tenth of that cap so that retries do not hammer a struggling server.
func (t *Transport) backoff(pol RetryPolicy, attempt int) time.Duration {
	ceil := pol.BaseDelay << min(attempt-1, 30)
	if ceil <= 0 || ceil > pol.MaxDelay {
		ceil = pol.MaxDelay
	}
	floor := ceil / 10
	j := t.jitter
	if j == nil {
		j = func(max time.Duration) time.Duration { return rand.N(max + 1) }
	}
	return floor + j(ceil-floor)
}

func (t *Transport) doSleep(ctx context.Context, d time.Duration) error {
	if t.sleep != nil {
		return t.sleep(ctx, d)
	}
	return sleepCtx(ctx, d)
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	tm := time.NewTimer(d)
	defer tm.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-tm.C:
		return nil
	}
}

// Retryable reports whether err is a transient transport failure worth retrying:
// a reset, refused or aborted connection, an unexpected EOF, or a network timeout.
// Context cancellation by the caller is not retryable; a try's own deadline is.
func Retryable(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, ErrAttemptTimeout) {
		return true
	}
	if errors.Is(err, context.Canceled) {
		return false
	}
	if errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var dns *net.DNSError
	if errors.As(err, &dns) {
		return dns.IsTemporary || dns.IsTimeout // a name that does not exist will not appear
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return true
	}
	var oe *net.OpError
	return errors.As(err, &oe)
}

type cancelBody struct {
	io.ReadCloser
	cancel context.CancelFunc
}

func (b *cancelBody) Close() error {
	err := b.ReadCloser.Close()
	b.cancel()
	return err
}

// drain reads a little of a discarded body so the connection can be reused.
func drain(body io.ReadCloser) {
	_, _ = io.Copy(io.Discard, io.LimitReader(body, 64<<10))
	body.Close()
}
