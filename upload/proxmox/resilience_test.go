package proxmox

import (
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/httpx"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

// recordSleeps replaces the client's retry wait with one that records and returns at once.
func recordSleeps(c *Client) func() []time.Duration {
	var mu sync.Mutex
	var waits []time.Duration
	c.sleep = func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		defer mu.Unlock()
		waits = append(waits, d)
		return ctx.Err()
	}
	return func() []time.Duration {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(waits)
	}
}

func countRequests(srv *pvetest.Server, prefix, contains string) int {
	n := 0
	for _, r := range srv.Requests() {
		if strings.HasPrefix(r, prefix) && strings.Contains(r, contains) {
			n++
		}
	}
	return n
}

// Item 13: a call that never answers fails with ErrTimeout and names the call.
func TestCallTimeoutNamesTheCall(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, []Option{WithTimeout(200 * time.Millisecond), WithRetry(2, time.Millisecond)})
	f := newFixture(t, e.dir, "v1.9.5")
	for range 2 {
		e.srv.Inject(pvetest.Fault{Kind: pvetest.FaultHang, Method: http.MethodGet, Path: "/storage/local/status"})
	}
	// The outer deadline only keeps a regression from hanging the test binary.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := e.c.UploadISOs(ctx, cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if !errors.Is(err, ErrTimeout) {
		// Rare under heavy load (once in six full CI runs): a hang answered with an empty
		// 200. Say what the server saw, to find out why.
		t.Fatalf("UploadISOs(status call hangs) = %v; want ErrTimeout\nserver requests: %q\nhangs: %q\nclient log:\n%s",
			err, e.srv.Requests(), e.srv.HangEnds(), e.logs.String())
	}
	if want := "GET /nodes/pve1/storage/local/status"; !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "after 2 attempts") {
		t.Errorf("error %q; want it to name %q and the attempts", err, want)
	}
	if n := len(e.srv.Uploads()); n != 0 {
		t.Errorf("%d uploads; want none after the failed check", n)
	}
}

// Item 13: a task poll that hangs once is retried; the run succeeds.
func TestTaskPollHangRetried(t *testing.T) {
	t.Parallel()
	// Generous enough that no healthy call on a loaded machine runs out.
	e := newEnvWith(t, []Option{WithTimeout(2 * time.Second)})
	f := newFixture(t, e.dir, "v1.9.5")
	e.srv.Inject(pvetest.Fault{Kind: pvetest.FaultHang, Method: http.MethodGet, Path: "/tasks/"})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := e.c.UploadISOs(ctx, cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1}); err != nil {
		t.Fatalf("UploadISOs(one hanging call) = %v; want success after a retry", err)
	}
}

// Item 13: an upload that stops moving ends with ErrStalled and leaves nothing;
// one whose body went out but whose reply never comes ends with ErrTimeout.
func TestUploadStallTimeout(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, []Option{WithStallTimeout(300 * time.Millisecond)})
	// Big enough to fill the loopback socket buffers once the server stops reading.
	const size = 64 << 20
	a := Artifact{Content: "iso", Filename: isoName(t, "v1.9.5"), Size: size, Checksum: strings.Repeat("0", 64), Algorithm: "sha256",
		Open: func() (io.ReadCloser, error) { return io.NopCloser(io.LimitReader(zeroReader{}, size)), nil }}
	e.srv.Inject(pvetest.Fault{Kind: pvetest.FaultStallUpload, Path: "/upload", After: 1 << 20})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := e.c.EnsureVolume(ctx, Target{"pve1", "local"}, a, MethodUpload, false)
	if !errors.Is(err, ErrStalled) || ctx.Err() != nil {
		t.Fatalf("EnsureVolume(upload stalls) = %v; want ErrStalled", err)
	}
	if !strings.Contains(err.Error(), "no bytes went out for 300ms") {
		t.Errorf("error %q; want it to say how long nothing moved", err)
	}
	if v := e.srv.Volumes(); len(v) != 0 {
		t.Errorf("volumes %v; want none", volumeIDs(v))
	}
}

func TestUploadReplyTimeout(t *testing.T) {
	t.Parallel()
	// The stall timeout covers a machine whose socket buffers cannot take the whole body.
	e := newEnvWith(t, []Option{WithTimeout(300 * time.Millisecond), WithStallTimeout(time.Second)})
	f := newFixture(t, e.dir, "v1.9.5")
	// The whole (small) body fits in the socket buffers; the server never answers.
	e.srv.Inject(pvetest.Fault{Kind: pvetest.FaultHang, Method: http.MethodPost, Path: "/upload"})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	_, err := e.c.UploadISOs(ctx, cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if ctx.Err() != nil || !(errors.Is(err, ErrTimeout) || errors.Is(err, ErrStalled)) {
		t.Fatalf("UploadISOs(no reply) = %v; want ErrTimeout or ErrStalled", err)
	}
	if errors.Is(err, ErrTimeout) && !strings.Contains(err.Error(), "POST /nodes/pve1/storage/local/upload") {
		t.Errorf("error %q; want it to name the call", err)
	}
	e.c.timeout, e.c.stall = DefaultTimeout, DefaultStallTimeout // the rerun must not race short limits on a loaded machine
	if res, err := e.c.UploadISOs(ctx, cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1}); err != nil || res[0].Action != ActionUploaded {
		t.Errorf("rerun = %+v, %v; want uploaded", res, err)
	}
}

// trickle yields its data in chunks with a pause before each.
type trickle struct {
	data  []byte
	chunk int
	pause time.Duration
}

func (r *trickle) Read(p []byte) (int, error) {
	if len(r.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(r.pause)
	n := copy(p[:min(len(p), r.chunk)], r.data)
	r.data = r.data[n:]
	return n, nil
}

// Item 13: the stall timeout is not a total timeout: an upload slower than it
// in total, but always moving, completes.
func TestSlowUploadIsNotStalled(t *testing.T) {
	t.Parallel()
	e := newEnvWith(t, []Option{WithStallTimeout(2 * time.Second)})
	data := pattern(20*(32<<10), 5)
	a := Artifact{Content: "iso", Filename: isoName(t, "v1.9.5"), Size: int64(len(data)), Checksum: sha(data), Algorithm: "sha256",
		Open: func() (io.ReadCloser, error) {
			return io.NopCloser(&trickle{data: data, chunk: 32 << 10, pause: 120 * time.Millisecond}), nil
		}}
	res, err := e.c.EnsureVolume(t.Context(), Target{"pve1", "local"}, a, MethodUpload, false)
	if err != nil || res.Action != ActionUploaded || res.Bytes != int64(len(data)) {
		t.Fatalf("EnsureVolume(slow but moving, ~2.4s with a 2s stall timeout) = %+v, %v; want uploaded", res, err)
	}
}

// Item 14: transient failures of a task poll are retried; the run succeeds, and
// Retry-After (seconds or HTTP-date) sets the wait.
func TestTransientTaskPollErrorsRetried(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		fault    pvetest.Fault
		wantWait func(time.Duration) bool
		// stdlib: net/http itself replays an idempotent request whose reused
		// connection closed before any reply, so imgpipe may see nothing.
		stdlib bool
		dateIn time.Duration
	}{
		{name: "500", fault: pvetest.Fault{Kind: pvetest.Fault500}},
		{name: "502", fault: pvetest.Fault{Kind: pvetest.FaultStatus, Code: 502}},
		{name: "503", fault: pvetest.Fault{Kind: pvetest.FaultStatus, Code: 503}},
		{name: "connection reset", fault: pvetest.Fault{Kind: pvetest.FaultReset}, stdlib: true},
		{name: "reply cut mid-body", fault: pvetest.Fault{Kind: pvetest.FaultCutReply}},
		{name: "429 Retry-After seconds", fault: pvetest.Fault{Kind: pvetest.FaultStatus, Code: 429, RetryAfter: "7"},
			wantWait: func(d time.Duration) bool { return d == 7*time.Second }},
		// The date is set when the fault is injected (dateIn); backoff here is ~1ms,
		// so a wait of more than a second can only come from the header.
		{name: "429 Retry-After HTTP-date", fault: pvetest.Fault{Kind: pvetest.FaultStatus, Code: 429}, dateIn: time.Minute,
			wantWait: func(d time.Duration) bool { return d > time.Second && d <= time.Minute }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			waits := recordSleeps(e.c)
			f := newFixture(t, e.dir, "v1.9.5")
			tt.fault.Method, tt.fault.Path = http.MethodGet, "/tasks/"
			if tt.dateIn > 0 {
				tt.fault.RetryAfter = time.Now().Add(tt.dateIn).UTC().Format(http.TimeFormat)
			}
			e.srv.Inject(tt.fault)
			res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
			if err != nil || len(res) != 1 || res[0].Action != ActionUploaded {
				t.Fatalf("UploadISOs(one %s on a task poll) = %+v, %v; want uploaded", tt.name, res, err)
			}
			if v := e.srv.Volumes(); len(v) != 1 || v[0].SHA256 != sha(f.iso) {
				t.Errorf("volumes %v; want the ISO", volumeIDs(v))
			}
			if w := waits(); (len(w) != 1 && !tt.stdlib) || len(w) > 1 || (tt.wantWait != nil && !tt.wantWait(w[0])) {
				t.Errorf("retry waits %v; want one (Retry-After honoured)", w)
			}
		})
	}
}

// Item 14: a POST that starts a task is not replayed after a 500 (it may have
// started one), but is after a 429 (the server did not take it).
func TestNonIdempotentCallsNotReplayed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	recordSleeps(e.c)
	f := newFixture(t, e.dir, "v1.9.5")
	e.srv.Inject(pvetest.Fault{Kind: pvetest.Fault500, Method: http.MethodPost, Path: "/download-url"})
	if _, err := e.c.UploadISOs(t.Context(), cfgFor(MethodDownloadURL), f.lock, RunOptions{Keep: -1}); err == nil {
		t.Fatal("UploadISOs(download-url answers 500) = nil; want the error")
	}
	if n := countRequests(e.srv, "POST ", "/download-url"); n != 1 {
		t.Errorf("%d download-url requests; want 1 (no replay)", n)
	}
	e.srv.Inject(pvetest.Fault{Kind: pvetest.FaultStatus, Code: 429, RetryAfter: "1", Method: http.MethodPost, Path: "/download-url"})
	if _, err := e.c.UploadISOs(t.Context(), cfgFor(MethodDownloadURL), f.lock, RunOptions{Keep: -1}); err != nil {
		t.Fatalf("UploadISOs(download-url answers 429 once) = %v; want success", err)
	}
	if n := countRequests(e.srv, "POST ", "/download-url"); n != 3 {
		t.Errorf("%d download-url requests in all; want 3 (the 429 replayed once)", n)
	}
}

// Item 14: when the task stored the ISO but its polls keep failing, cleanup
// must not delete it; a rerun finds it in place.
func TestPollFailureKeepsStoredISO(t *testing.T) {
	t.Parallel()
	for _, method := range []string{MethodUpload, MethodDownloadURL} {
		e := newEnv(t, pvetest.WithTaskPolls(0)) // the task has finished when its UPID comes back
		f := newFixture(t, e.dir, "v1.9.5")
		// Every poll of Wait and of cleanup's last look fails.
		for range 2 * DefaultAttempts {
			e.srv.Inject(pvetest.Fault{Kind: pvetest.Fault500, Method: http.MethodGet, Path: "/tasks/"})
		}
		_, err := e.c.UploadISOs(t.Context(), cfgFor(method), f.lock, RunOptions{Keep: -1})
		var he *HTTPError
		if !errors.As(err, &he) || he.Code != 500 {
			t.Fatalf("UploadISOs(%s, polls fail) = %v; want the poll's 500", method, err)
		}
		if v := e.srv.Volumes(); len(v) != 1 || v[0].SHA256 != sha(f.iso) {
			t.Errorf("%s: volumes after failed polls %v; want the stored ISO kept", method, volumeIDs(v))
		}
		res, err := e.c.UploadISOs(t.Context(), cfgFor(method), f.lock, RunOptions{Keep: -1})
		if err != nil || res[0].Action != ActionSkipped {
			t.Errorf("%s: rerun = %+v, %v; want skipped", method, res, err)
		}
	}
}

// Item 14: when Wait's polls all fail but a last look finds the task done, the
// transfer counts as a success.
func TestPollFailureThenTaskFoundOK(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvetest.WithTaskPolls(0))
	f := newFixture(t, e.dir, "v1.9.5")
	for range DefaultAttempts {
		e.srv.Inject(pvetest.Fault{Kind: pvetest.Fault500, Method: http.MethodGet, Path: "/tasks/"})
	}
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if err != nil || len(res) != 1 || res[0].Action != ActionUploaded || !strings.Contains(res[0].Warning, "task succeeded") {
		t.Fatalf("UploadISOs = %+v, %v; want uploaded with a warning about the polls", res, err)
	}
	if v := e.srv.Volumes(); len(v) != 1 {
		t.Errorf("volumes %v; want the ISO", volumeIDs(v))
	}
}

// Item 14 for templates: a create task that succeeded while its polls failed
// counts; one whose outcome stays unknown leaves the VM for the next run, which
// finishes the template.
func TestTemplatePollFailures(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		faults  int
		wantErr bool
	}{{DefaultAttempts, false}, {2 * DefaultAttempts, true}} {
		e := newEnv(t, pvetest.WithTaskPolls(0))
		f := newFixture(t, e.dir, "v1.9.5")
		// The import image is already there, so the first task is the VM create.
		e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:import/" + volName(t, testSite, "worker", testSchematic, "v1.9.5", "raw"),
			Content: "import", Format: "raw", Size: int64(len(f.raw))})
		for range tt.faults {
			e.srv.Inject(pvetest.Fault{Kind: pvetest.Fault500, Method: http.MethodGet, Path: "/tasks/"})
		}
		res, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
		if (err != nil) != tt.wantErr {
			t.Fatalf("BuildTemplates(%d failed polls) = %+v, %v; want error %v", tt.faults, res, err, tt.wantErr)
		}
		vms := e.srv.VMs()
		if len(vms) != 1 || vms[0].Template == tt.wantErr {
			t.Errorf("%d failed polls: VMs %+v; want one VM, a template %v", tt.faults, vms, !tt.wantErr)
		}
		res, err = e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
		if vms := e.srv.VMs(); err != nil || len(vms) != 1 || !vms[0].Template {
			t.Errorf("%d failed polls, rerun = %+v, %v, VMs %+v; want one template", tt.faults, res, err, vms)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	data, err := os.ReadFile("testdata/retry-after.txt")
	if err != nil {
		f.Fatal(err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		f.Add(line)
	}
	now := time.Date(2026, 12, 2, 0, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := httpx.ParseRetryAfter(v, now)
		if !ok {
			return
		}
		if d < 0 {
			t.Errorf("httpx.ParseRetryAfter(%q) = %s; want no negative wait", v, d)
		}
		if n, err := strconv.Atoi(strings.TrimSpace(v)); err == nil && d != time.Duration(min(n, 86400))*time.Second {
			t.Errorf("httpx.ParseRetryAfter(%q) = %s; want %d seconds (capped at a day)", v, d, n)
		}
	})
}
