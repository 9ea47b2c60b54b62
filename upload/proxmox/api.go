package proxmox

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"github.com/imgpipe/imgpipe/internal/httpx"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"syscall"
	"time"
)

// Defaults for the API call policy (see WithTimeout, WithStallTimeout, WithRetry).
const (
	DefaultTimeout      = 30 * time.Second
	DefaultStallTimeout = 2 * time.Minute
	DefaultAttempts     = 4
	defaultBaseDelay    = 500 * time.Millisecond
	maxDelay            = 15 * time.Second
	// maxRetryAfter caps how long a server's Retry-After is honoured; a longer
	// demand ends the retries with the server's error.
	maxRetryAfter = 2 * time.Minute
	// maxReply bounds a JSON reply read into memory.
	maxReply = 32 << 20
)

// ErrTimeout means a PVE call got no (complete) answer within the call timeout.
var ErrTimeout = errors.New("no answer from Proxmox VE")

// errCallTimeout is the cancel cause of a call's own deadline.
var errCallTimeout = errors.New("call timeout")

// call is one PVE API request as the retry loop sees it.
type call struct {
	method, path string
	payload      []byte // JSON body, or nil
}

func (k call) String() string { return k.method + " " + k.path }

// idempotent calls may be replayed after a transient failure; PVE's POSTs and
// DELETEs start tasks, and a replay could start a second one.
func (k call) idempotent() bool { return k.method == http.MethodGet }

// do runs a JSON API call with the call timeout on each attempt, retrying
// transient failures of idempotent calls (5xx, 429, resets, timeouts) with
// exponential backoff or the server's Retry-After. out receives the reply's data.
func (c *Client) do(ctx context.Context, method, path string, body, out any) error {
	k := call{method: method, path: path}
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return fmt.Errorf("%s: encoding the request: %w", k, err)
		}
		k.payload = b
	}
	for attempt := 1; ; attempt++ {
		err := c.once(ctx, k, out)
		if err == nil {
			return nil
		}
		wait, retry := c.retryWait(k, attempt, err)
		if !retry || ctx.Err() != nil {
			if attempt > 1 {
				err = fmt.Errorf("%w (after %d attempts)", err, attempt)
			}
			return err
		}
		c.log.Debug("retrying PVE call", "call", k.String(), "attempt", attempt, "wait", wait, "err", err)
		if err := c.sleep(ctx, wait); err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
	}
}

// once is one attempt of a call, bounded by the call timeout.
func (c *Client) once(ctx context.Context, k call, out any) error {
	actx, cancel := context.WithTimeoutCause(ctx, c.timeout, errCallTimeout)
	defer cancel()
	var body io.Reader
	if k.payload != nil {
		body = bytes.NewReader(k.payload)
	}
	req, err := http.NewRequestWithContext(actx, k.method, c.base+k.path, body)
	if err != nil {
		return fmt.Errorf("%s: %w", k, err)
	}
	req.Header.Set("Authorization", c.auth)
	req.Header.Set("User-Agent", "imgpipe")
	req.Header.Set("Accept", "application/json")
	if k.payload != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	c.log.Debug("PVE call", "call", k.String())
	resp, err := c.hc.Do(req)
	if err != nil {
		return c.transportErr(ctx, actx, k, err)
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, maxReply))
	if err != nil {
		return c.transportErr(ctx, actx, k, err)
	}
	if resp.StatusCode/100 != 2 {
		return c.statusErr(k, resp, data)
	}
	if out == nil {
		return nil
	}
	var env struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(data, &env); err != nil {
		return fmt.Errorf("%s: decoding the reply: %w", k, err)
	}
	if len(env.Data) == 0 || string(env.Data) == "null" {
		return nil
	}
	if err := json.Unmarshal(env.Data, out); err != nil {
		return fmt.Errorf("%s: decoding the reply: %w", k, err)
	}
	return nil
}

// transportErr names the call and says whether its own deadline ran out (as
// opposed to the caller's context, whose error is kept for errors.Is).
func (c *Client) transportErr(ctx, actx context.Context, k call, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("%s: %w", k, context.Cause(ctx))
	}
	if errors.Is(context.Cause(actx), errCallTimeout) {
		return fmt.Errorf("%s: %w within %s", k, ErrTimeout, c.timeout)
	}
	return fmt.Errorf("%s: %w", k, err)
}

// statusErr turns a non-2xx reply into an *HTTPError (ErrUnauthorized for 401/403).
func (c *Client) statusErr(k call, resp *http.Response, data []byte) error {
	he := &HTTPError{Method: k.method, Path: k.path, Code: resp.StatusCode, Status: resp.Status}
	var e struct {
		Errors  map[string]string `json:"errors"`
		Message string            `json:"message"`
	}
	if json.Unmarshal(data, &e) == nil {
		he.Params, he.Message = e.Errors, strings.TrimSpace(e.Message)
	}
	if d, ok := httpx.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		he.RetryAfter, he.hasRetryAfter = d, true
	}
	if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
		return fmt.Errorf("%w: check that token %s exists and has the needed privileges: %w", ErrUnauthorized, c.tokenID, he)
	}
	return he
}

// retryWait decides whether a failed attempt is worth another and how long to wait.
func (c *Client) retryWait(k call, attempt int, err error) (time.Duration, bool) {
	if attempt >= c.attempts {
		return 0, false
	}
	var he *HTTPError
	if errors.As(err, &he) {
		switch {
		case he.Code == http.StatusTooManyRequests:
			// 429 means the request was not processed: safe to replay for any method.
		case k.idempotent() && he.Code >= 500 && he.Code != http.StatusNotImplemented:
		default:
			return 0, false
		}
		if he.hasRetryAfter {
			if he.RetryAfter > maxRetryAfter {
				return 0, false
			}
			return he.RetryAfter, true
		}
		return c.backoff(attempt), true
	}
	if k.idempotent() && transient(err) || notSent(err) {
		return c.backoff(attempt), true
	}
	return 0, false
}

// backoff is full jitter with a floor: a wait in [cap/10, cap], cap = base*2^(attempt-1).
func (c *Client) backoff(attempt int) time.Duration {
	ceil := c.baseDelay << min(attempt-1, 20)
	if ceil <= 0 || ceil > maxDelay {
		ceil = maxDelay
	}
	floor := ceil / 10
	return floor + rand.N(ceil-floor+1)
}

// transient reports a failure of the connection, not of the request: a reset,
// refused or aborted connection, an unexpected EOF, or the call's own timeout.
func transient(err error) bool {
	if errors.Is(err, context.Canceled) {
		return false
	}
	return errors.Is(err, ErrTimeout) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.ECONNABORTED) || errors.Is(err, syscall.EPIPE) || notSent(err)
}

// notSent reports a dial failure: the request never left, so any method may be replayed.
func notSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
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
