package registry

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"

	"github.com/imgpipe/imgpipe/internal/httpx"
	"github.com/imgpipe/imgpipe/upload/registry/registrytest"
)

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 2, 1, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"0", 0, true},
		{"7", 7 * time.Second, true},
		{" 120 ", 2 * time.Minute, true},
		{"Wed, 02 Dec 2026 01:01:30 GMT", 90 * time.Second, true},
		{"Wednesday, 02-Dec-26 01:00:10 GMT", 10 * time.Second, true}, // RFC 850
		{"Wed Dec  2 01:00:05 2026", 5 * time.Second, true},           // asctime
		{"Wed, 02 Dec 2026 00:59:00 GMT", 0, true},                    // past: now
		{"-3", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tc := range tests {
		got, ok := httpx.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.wantOK {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.in, got, ok, tc.want, tc.wantOK)
		}
	}
}

// recorder is a Backoff.sleep that records the waits instead of sleeping them.
type recorder struct {
	mu    sync.Mutex
	waits []time.Duration
}

func (r *recorder) sleep(ctx context.Context, d time.Duration) error {
	r.mu.Lock()
	r.waits = append(r.waits, d)
	r.mu.Unlock()
	return ctx.Err()
}

func (r *recorder) has(d time.Duration, slack time.Duration) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, w := range r.waits {
		if w >= d-slack && w <= d+slack {
			return true
		}
	}
	return false
}

func recordingBackoff() (Backoff, *recorder) {
	rec := &recorder{}
	return Backoff{Initial: time.Millisecond, Max: 5 * time.Millisecond, Steps: 6, sleep: rec.sleep}, rec
}

// TestRetryHonoursRetryAfter: a 429 whose Retry-After is in seconds or an HTTP-date is
// retried after exactly that wait, even when it exceeds the backoff's cap (issue 12
// item 11).
func TestRetryHonoursRetryAfter(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		header func() string
		want   time.Duration
	}{
		{"seconds", func() string { return "3" }, 3 * time.Second},
		{"http-date", func() string { return time.Now().Add(90 * time.Second).UTC().Format(http.TimeFormat) }, 90 * time.Second},
	} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.URL.Path != "/v2/" && calls.Add(1) == 1 {
				w.Header().Set("Retry-After", tc.header())
				http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS"}]}`, http.StatusTooManyRequests)
				return
			}
			w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("a", 64))
		}))
		t.Cleanup(srv.Close)
		b, rec := recordingBackoff()
		r := &run{m: New(WithBackoff(b)), clients: map[string]*regClient{}}
		r.base = &countingTransport{inner: http.DefaultTransport, c: &r.c, idle: time.Minute}
		c, err := r.upstreamClient(strings.TrimPrefix(srv.URL, "http://"))
		if err != nil {
			t.Fatal(err)
		}
		if _, found, err := c.headManifest(context.Background(), "x/y", "v1"); err != nil || !found {
			t.Fatalf("%s: headManifest = %v, %v; want found after one 429", tc.name, found, err)
		}
		// An HTTP-date has one-second resolution.
		if !rec.has(tc.want, 1500*time.Millisecond) {
			t.Errorf("%s: waits after 429 = %v; want one of about %v (Retry-After)", tc.name, rec.waits, tc.want)
		}
	}
}

// TestMountThrottledIsRetriedAsMount: a 429 on a cross-repository mount is retried as a
// mount after the Retry-After wait, not turned into a full upload (issue 12 item 11).
func TestMountThrottledIsRetriedAsMount(t *testing.T) {
	t.Parallel()
	quiet := ggcrregistry.Logger(log.New(io.Discard, "", 0))
	up := httptest.NewServer(ggcrregistry.New(quiet))
	t.Cleanup(up.Close)
	inner := ggcrregistry.New(quiet)
	var throttled, mounts atomic.Int32
	dst := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Query().Get("mount") != "" {
			mounts.Add(1)
			if throttled.Add(1) == 1 {
				w.Header().Set("Retry-After", "4")
				http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS","message":"slow down"}]}`, http.StatusTooManyRequests)
				return
			}
		}
		inner.ServeHTTP(w, r)
	}))
	t.Cleanup(dst.Close)
	ps := sharedLayerPush(t, up.Listener.Addr().String(), dst.Listener.Addr().String())
	b, rec := recordingBackoff()
	rep, err := New(WithJobs(1), WithBackoff(b)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	// ggcr's registry answers a mount with an upload session; what matters is that the
	// second attempt asked for the mount again, after the wait.
	if mounts.Load() < 2 || !rec.has(4*time.Second, 0) || rep.Totals.Verified != 2 {
		t.Errorf("mount POSTs %d (first throttled), waits %v, verified %d; want the throttled mount retried as a mount after 4s", mounts.Load(), rec.waits, rep.Totals.Verified)
	}
}

// TestEveryCallHasATimeout: a registry that accepts a request and never answers does
// not hang the run; the stalled request is cancelled, retried, and reported.
func TestEveryCallHasATimeout(t *testing.T) {
	t.Parallel()
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	t.Cleanup(func() { close(release); hang.Close() })
	mirror := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	t.Cleanup(mirror.Close)
	upHost := hang.Listener.Addr().String()
	im := &registrytest.Image{Repo: "siderolabs/kubelet", Tag: "v1.32.4", Digest: "sha256:" + strings.Repeat("b", 64)}
	ps := placeOne(t, "kubelet", upHost, im, mirror.Listener.Addr().String(), "push")
	b, _ := recordingBackoff()
	b.Steps = 2
	rep, err := New(WithBackoff(b), WithTimeout(50*time.Millisecond)).Run(context.Background(), ps)
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("Run against a silent upstream = %v; want ErrIncomplete", err)
	}
	if got := rep.Images[0]; got.Status != StatusFailed || !strings.Contains(got.Error, ErrStalled.Error()) {
		t.Errorf("image = %s (%s); want failed with %q", got.Status, got.Error, ErrStalled)
	}
}

// TestWarmPollsHonourRetryAfter: the ranged GETs that ask a cache whether it stored a
// blob get 429 with Retry-After; the next ask waits that long (issue 12 item 11).
func TestWarmPollsHonourRetryAfter(t *testing.T) {
	t.Parallel()
	up := registrytest.StartT(t, registrytest.Config{})
	im, err := (&registrytest.Seeder{Host: up.Host}).Seed(context.Background(), registrytest.Spec{Repo: "siderolabs/pause", Tag: "3.10", Layers: []int64{64 << 10}, Seed: 11})
	if err != nil {
		t.Fatal(err)
	}
	cache := registrytest.StartT(t, registrytest.Config{RemoteURL: up.URL()})
	var throttled atomic.Int32
	h, err := registrytest.FaultProxy(cache.URL(), &registrytest.Faults{})
	if err != nil {
		t.Fatal(err)
	}
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" && throttled.Add(1) <= 2 {
			w.Header().Set("Retry-After", "6")
			http.Error(w, `{"errors":[{"code":"TOOMANYREQUESTS"}]}`, http.StatusTooManyRequests)
			return
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(front.Close)
	ps := placeOne(t, "pause", up.Host, im, front.Listener.Addr().String(), "warm")
	b, rec := recordingBackoff()
	rep, err := New(WithBackoff(b)).Run(context.Background(), ps)
	if err != nil {
		t.Fatalf("Run = %v", err)
	}
	if throttled.Load() < 2 || !rec.has(6*time.Second, 0) || rep.Totals.Warmed != 1 {
		t.Errorf("ranged GETs %d (two throttled), waits %v, warmed %d; want a 6s wait (Retry-After) and the image warmed", throttled.Load(), rec.waits, rep.Totals.Warmed)
	}
}
