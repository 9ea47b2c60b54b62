package factory

import (
	"context"
	"errors"
	"github.com/imgpipe/imgpipe/internal/httpx"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"
)

// step is one scripted server answer.
type step struct {
	status     int
	retryAfter string
	cut        bool          // drop the connection after the headers and part of the body
	delay      time.Duration // before answering
}

// scripted serves steps in order, then 200 "ok"; it records request bodies.
type scripted struct {
	mu     sync.Mutex
	steps  []step
	bodies []string
}

func (s *scripted) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	s.mu.Lock()
	s.bodies = append(s.bodies, string(body))
	var st step
	if len(s.steps) > 0 {
		st = s.steps[0]
		s.steps = s.steps[1:]
	}
	s.mu.Unlock()
	if st.delay > 0 {
		select {
		case <-time.After(st.delay):
		case <-r.Context().Done():
			return
		}
	}
	switch {
	case st.cut:
		w.Header().Set("Content-Length", "1000")
		w.WriteHeader(http.StatusOK)
		_, _ = w.Write([]byte("partial"))
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	case st.status != 0:
		if st.retryAfter != "" {
			w.Header().Set("Retry-After", st.retryAfter)
		}
		http.Error(w, http.StatusText(st.status), st.status)
	default:
		_, _ = io.WriteString(w, "ok")
	}
}

func (s *scripted) attempts() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.bodies)
}

func TestTransportRetries(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name         string
		steps        []step
		method       string
		buffer       bool
		timeout      time.Duration
		wantStatus   int
		wantAttempts int
		wantWaits    []time.Duration // exact waits, when Retry-After decides them
		wantErr      bool
	}{
		{name: "500 then ok", steps: []step{{status: 500}, {status: 500}}, wantStatus: 200, wantAttempts: 3},
		{name: "502 503 504 then ok", steps: []step{{status: 502}, {status: 503}, {status: 504}}, wantStatus: 200, wantAttempts: 4},
		{name: "429 honours Retry-After seconds", steps: []step{{status: 429, retryAfter: "7"}}, wantStatus: 200, wantAttempts: 2, wantWaits: []time.Duration{7 * time.Second}},
		{name: "503 honours Retry-After zero", steps: []step{{status: 503, retryAfter: "0"}}, wantStatus: 200, wantAttempts: 2, wantWaits: []time.Duration{0}},
		{name: "Retry-After beyond the cap is not waited for", steps: []step{{status: 429, retryAfter: "3600"}}, wantStatus: 429, wantAttempts: 1},
		{name: "404 is final", steps: []step{{status: 404}}, wantStatus: 404, wantAttempts: 1},
		{name: "400 is final", steps: []step{{status: 400}}, wantStatus: 400, wantAttempts: 1},
		{name: "501 is final", steps: []step{{status: 501}}, wantStatus: 501, wantAttempts: 1},
		{name: "attempts are bounded", steps: []step{{status: 500}, {status: 500}, {status: 500}, {status: 500}, {status: 500}, {status: 500}}, wantStatus: 500, wantAttempts: 4},
		{name: "POST body is replayed", steps: []step{{status: 503}}, method: http.MethodPost, wantStatus: 200, wantAttempts: 2},
		{name: "cut mid-body is retried when buffering", steps: []step{{cut: true}}, buffer: true, wantStatus: 200, wantAttempts: 2},
		{name: "slow answer is retried after the attempt timeout", steps: []step{{delay: 5 * time.Second}}, timeout: 100 * time.Millisecond, buffer: true, wantStatus: 200, wantAttempts: 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			srv := &scripted{steps: tt.steps}
			ts := httptest.NewServer(srv)
			defer ts.Close()
			var mu sync.Mutex
			var waits []time.Duration
			tr := &Transport{
				Policy:         RetryPolicy{Attempts: 4, BaseDelay: time.Millisecond, MaxDelay: 5 * time.Millisecond, MaxRetryAfter: time.Minute},
				AttemptTimeout: tt.timeout,
				sleep: func(_ context.Context, d time.Duration) error {
					mu.Lock()
					waits = append(waits, d)
					mu.Unlock()
					return nil
				},
			}
			if tt.buffer {
				tr.BufferLimit = 1 << 20
			}
			method := tt.method
			if method == "" {
				method = http.MethodGet
			}
			var body io.Reader
			if method == http.MethodPost {
				body = strings.NewReader("payload")
			}
			req, err := http.NewRequestWithContext(t.Context(), method, ts.URL, body)
			if err != nil {
				t.Fatal(err)
			}
			resp, err := (&http.Client{Transport: tr}).Do(req)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Do(%s) error = %v; want error %v", tt.name, err, tt.wantErr)
			}
			if err == nil {
				got, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != tt.wantStatus {
					t.Errorf("Do(%s) status = %d; want %d", tt.name, resp.StatusCode, tt.wantStatus)
				}
				if tt.wantStatus == 200 && string(got) != "ok" {
					t.Errorf("Do(%s) body = %q; want %q", tt.name, got, "ok")
				}
			}
			if n := srv.attempts(); n != tt.wantAttempts {
				t.Errorf("Do(%s) attempts = %d; want %d", tt.name, n, tt.wantAttempts)
			}
			if tt.wantWaits != nil && !equalDurations(waits, tt.wantWaits) {
				t.Errorf("Do(%s) waits = %v; want %v", tt.name, waits, tt.wantWaits)
			}
			if method == http.MethodPost {
				for i, b := range srv.bodies {
					if b != "payload" {
						t.Errorf("Do(%s) attempt %d body = %q; want %q", tt.name, i+1, b, "payload")
					}
				}
			}
		})
	}
}

func equalDurations(a, b []time.Duration) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func TestTransportConnectionRefusedIsRetriedThenReported(t *testing.T) {
	t.Parallel()
	ts := httptest.NewServer(http.NotFoundHandler())
	url := ts.URL
	ts.Close() // nothing listens there any more
	calls := 0
	tr := &Transport{
		Policy: RetryPolicy{Attempts: 3, BaseDelay: time.Millisecond, MaxDelay: time.Millisecond},
		sleep:  func(context.Context, time.Duration) error { calls++; return nil },
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, url, nil)
	_, err := tr.RoundTrip(req)
	if err == nil || !Retryable(err) {
		t.Fatalf("RoundTrip(closed port) error = %v; want a retryable connection error", err)
	}
	if calls != 2 {
		t.Errorf("RoundTrip(closed port) waited %d times; want 2", calls)
	}
	if !strings.Contains(err.Error(), "after 3 attempts") {
		t.Errorf("RoundTrip(closed port) error = %q; want it to say %q", err, "after 3 attempts")
	}
}

func TestTransportStopsOnCallerCancel(t *testing.T) {
	t.Parallel()
	srv := &scripted{steps: []step{{status: 503}, {status: 503}}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	ctx, cancel := context.WithCancel(t.Context())
	tr := &Transport{
		Policy: RetryPolicy{Attempts: 5, BaseDelay: time.Hour, MaxDelay: time.Hour},
		sleep:  func(ctx context.Context, d time.Duration) error { cancel(); return sleepCtx(ctx, d) },
	}
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, ts.URL, nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("RoundTrip(cancelled) error = %v; want context.Canceled", err)
	}
	if n := srv.attempts(); n != 1 {
		t.Errorf("RoundTrip(cancelled) attempts = %d; want 1", n)
	}
}

func TestBackoffBounds(t *testing.T) {
	t.Parallel()
	pol := RetryPolicy{Attempts: 10, BaseDelay: 100 * time.Millisecond, MaxDelay: time.Second}.withDefaults()
	tests := []struct {
		attempt int
		ceil    time.Duration
	}{{1, 100 * time.Millisecond}, {2, 200 * time.Millisecond}, {3, 400 * time.Millisecond}, {4, 800 * time.Millisecond}, {5, time.Second}, {40, time.Second}}
	for _, tt := range tests {
		for _, jit := range []func(time.Duration) time.Duration{
			func(time.Duration) time.Duration { return 0 },
			func(m time.Duration) time.Duration { return m },
		} {
			tr := &Transport{jitter: jit}
			got := tr.backoff(pol, tt.attempt)
			if got < tt.ceil/10 || got > tt.ceil {
				t.Errorf("backoff(attempt %d) = %v; want within [%v, %v]", tt.attempt, got, tt.ceil/10, tt.ceil)
			}
		}
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 3, 1, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		in     string
		want   time.Duration
		wantOK bool
	}{
		{"", 0, false},
		{"5", 5 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Minute).Format(http.TimeFormat), 0, true},
	}
	for _, tt := range tests {
		got, ok := httpx.ParseRetryAfter(tt.in, now)
		if got != tt.want || ok != tt.wantOK {
			t.Errorf("httpx.ParseRetryAfter(%q) = %v, %v; want %v, %v", tt.in, got, ok, tt.want, tt.wantOK)
		}
	}
}

func TestParseContentRange(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in          string
		start, size int64
		ok          bool
	}{
		{"bytes 100-199/200", 100, 200, true},
		{"bytes 0-0/*", 0, -1, true},
		{"bytes */200", 0, 0, false},
		{"items 1-2/3", 0, 0, false},
		{"", 0, 0, false},
	}
	for _, tt := range tests {
		start, size, ok := parseContentRange(tt.in)
		if start != tt.start || size != tt.size || ok != tt.ok {
			t.Errorf("parseContentRange(%q) = %d, %d, %v; want %d, %d, %v", tt.in, start, size, ok, tt.start, tt.size, tt.ok)
		}
	}
}

func TestRedactURL(t *testing.T) {
	t.Parallel()
	tests := []struct{ in, want string }{
		{"https://user:secret@factory.example/image/x?token=abc", "https://factory.example/image/x"},
		{"https://factory.example/a@b", "https://factory.example/a@b"},
		{"http://127.0.0.1:8080/image/x", "http://127.0.0.1:8080/image/x"},
	}
	for _, tt := range tests {
		if got := redactURL(tt.in); got != tt.want {
			t.Errorf("redactURL(%q) = %q; want %q", tt.in, got, tt.want)
		}
	}
}

func TestTransportHeaderTimeoutWithAttemptTimeout(t *testing.T) {
	t.Parallel()
	srv := &scripted{steps: []step{{delay: 5 * time.Second}}}
	ts := httptest.NewServer(srv)
	defer ts.Close()
	tr := &Transport{
		Policy:         RetryPolicy{Attempts: 1},
		AttemptTimeout: time.Minute,
		HeaderTimeout:  50 * time.Millisecond,
	}
	req, _ := http.NewRequestWithContext(t.Context(), http.MethodGet, ts.URL, nil)
	_, err := tr.RoundTrip(req)
	if !errors.Is(err, ErrAttemptTimeout) || !strings.Contains(err.Error(), "no answer within 50ms") {
		t.Fatalf("RoundTrip(slow headers) error = %v; want ErrAttemptTimeout after 50ms", err)
	}
}
