package proxmox

import (
	"context"
	"errors"
	"io"

	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/imgpipe/imgpipe/internal/fail"
	"github.com/imgpipe/imgpipe/upload/proxmox/pvetest"
)

func TestUploadFieldOrderAndStreaming(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	var last Progress
	e.c.progress = func(p Progress) { last = p }
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if err != nil {
		t.Fatalf("UploadISOs: %v", err)
	}
	if len(res) != 1 || res[0].Action != ActionUploaded || res[0].Bytes != int64(len(f.iso)) {
		t.Fatalf("UploadISOs() = %+v; want one %s of %d bytes", res, ActionUploaded, len(f.iso))
	}
	ups := e.srv.Uploads()
	if len(ups) != 1 {
		t.Fatalf("server saw %d uploads; want 1", len(ups))
	}
	want := []string{"content", "checksum-algorithm", "checksum"}
	if !slices.Equal(ups[0].Fields, want) || ups[0].Filename != isoName(t, "v1.9.5") || !ups[0].Complete {
		t.Errorf("upload fields %v, file %q, complete %v; want %v, %q, true", ups[0].Fields, ups[0].Filename, ups[0].Complete, want, isoName(t, "v1.9.5"))
	}
	vols := e.srv.Volumes()
	if len(vols) != 1 || vols[0].SHA256 != sha(f.iso) {
		t.Errorf("volumes %+v; want one with sha256 %s", vols, sha(f.iso))
	}
	if last.Done != int64(len(f.iso)) || last.Total != int64(len(f.iso)) {
		t.Errorf("last progress %+v; want done = total = %d", last, len(f.iso))
	}
}

func TestISOIdempotentRerun(t *testing.T) {
	t.Parallel()
	for _, method := range []string{MethodUpload, MethodDownloadURL} {
		t.Run(method, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			f := newFixture(t, e.dir, "v1.9.5")
			first, err := e.c.UploadISOs(t.Context(), cfgFor(method), f.lock, RunOptions{Keep: -1})
			if err != nil {
				t.Fatalf("first UploadISOs: %v", err)
			}
			second, err := e.c.UploadISOs(t.Context(), cfgFor(method), f.lock, RunOptions{Keep: -1})
			if err != nil {
				t.Fatalf("second UploadISOs: %v", err)
			}
			wantFirst := map[string]string{MethodUpload: ActionUploaded, MethodDownloadURL: ActionDownloaded}[method]
			if first[0].Action != wantFirst || second[0].Action != ActionSkipped {
				t.Errorf("actions %q then %q; want %q then %q", first[0].Action, second[0].Action, wantFirst, ActionSkipped)
			}
			var transfers int
			for _, r := range e.srv.Requests() {
				if strings.HasSuffix(r, "/upload") || strings.HasSuffix(r, "/download-url") {
					transfers++
				}
			}
			if transfers != 1 {
				t.Errorf("%d transfers over two runs; want 1", transfers)
			}
			if v := e.srv.Volumes(); len(v) != 1 || v[0].SHA256 != sha(f.iso) {
				t.Errorf("volumes %+v; want the ISO once", v)
			}
		})
	}
}

func TestISOReplacesWrongSize(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:iso/" + isoName(t, "v1.9.5"), Content: "iso", Format: "iso", Size: 10})
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if err != nil {
		t.Fatalf("UploadISOs: %v", err)
	}
	if res[0].Action != ActionUploaded || res[0].Warning == "" {
		t.Errorf("UploadISOs() = %+v; want an upload with a replace warning", res[0])
	}
}

func TestISONoChecksum(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	f.lock.Profiles[0].Artifacts = nil
	_, err := e.c.UploadISOs(t.Context(), cfgFor(MethodDownloadURL), f.lock, RunOptions{Keep: -1})
	if !errors.Is(err, ErrNoChecksum) || !errors.Is(err, fail.ErrUsage) {
		t.Errorf("UploadISOs(no checksum) = %v; want ErrNoChecksum and a usage error", err)
	}
	if len(e.srv.Volumes()) != 0 {
		t.Errorf("volumes %v; want none", volumeIDs(e.srv.Volumes()))
	}
}

func TestISOFaults(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name     string
		method   string
		fault    pvetest.Fault
		badSum   bool
		wantErr  error
		wantCode int
		wantLog  string
	}{
		{name: "upload 500", method: MethodUpload, fault: pvetest.Fault{Kind: pvetest.Fault500, Path: "/upload"}, wantCode: 500},
		{name: "upload cut off", method: MethodUpload, fault: pvetest.Fault{Kind: pvetest.FaultCutUpload, Path: "/upload", After: 1 << 20}},
		{name: "upload task fails", method: MethodUpload, fault: pvetest.Fault{Kind: pvetest.FaultTaskFail, Path: "/upload", Message: "storage full"}, wantErr: ErrTaskFailed, wantLog: "storage full"},
		{name: "upload checksum mismatch", method: MethodUpload, fault: pvetest.Fault{Kind: pvetest.FaultChecksumMismatch, Path: "/upload"}, wantErr: ErrChecksumMismatch, wantLog: "checksum mismatch"},
		{name: "upload wrong lock checksum", method: MethodUpload, badSum: true, wantErr: ErrChecksumMismatch},
		{name: "upload half-written volume", method: MethodUpload, fault: pvetest.Fault{Kind: pvetest.FaultPartialVolume, Path: "/upload"}, wantErr: ErrTaskFailed, wantLog: "got signal 9"},
		{name: "download 500", method: MethodDownloadURL, fault: pvetest.Fault{Kind: pvetest.Fault500, Path: "/download-url"}},
		{name: "download task fails", method: MethodDownloadURL, fault: pvetest.Fault{Kind: pvetest.FaultTaskFail, Path: "/download-url", Message: "403 Forbidden"}, wantErr: ErrTaskFailed, wantLog: "403 Forbidden"},
		{name: "download checksum mismatch", method: MethodDownloadURL, fault: pvetest.Fault{Kind: pvetest.FaultChecksumMismatch, Path: "/download-url"}, wantErr: ErrChecksumMismatch},
		{name: "download half-written volume", method: MethodDownloadURL, fault: pvetest.Fault{Kind: pvetest.FaultPartialVolume, Path: "/download-url"}, wantErr: ErrTaskFailed},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := newEnv(t)
			f := newFixture(t, e.dir, "v1.9.5")
			if tt.badSum {
				f.lock.Profiles[0].Artifacts[0].SHA256 = strings.Repeat("ab", 32)
			}
			if tt.fault.Kind != 0 {
				e.srv.Inject(tt.fault)
			}
			_, err := e.c.UploadISOs(t.Context(), cfgFor(tt.method), f.lock, RunOptions{Keep: -1})
			if err == nil {
				t.Fatalf("UploadISOs() = nil; want an error")
			}
			if tt.wantErr != nil && !errors.Is(err, tt.wantErr) {
				t.Errorf("UploadISOs() = %v; want %v", err, tt.wantErr)
			}
			var he *HTTPError
			if tt.wantCode != 0 && (!errors.As(err, &he) || he.Code != tt.wantCode) {
				t.Errorf("UploadISOs() = %v; want *HTTPError with code %d", err, tt.wantCode)
			}
			if tt.wantLog != "" && !strings.Contains(err.Error(), tt.wantLog) {
				t.Errorf("UploadISOs() = %q; want the task log tail with %q", err, tt.wantLog)
			}
			if v := e.srv.Volumes(); len(v) != 0 {
				t.Errorf("volumes after failure %v; want none under the final name", volumeIDs(v))
			}
			// The next run, without the fault, succeeds.
			f.lock.Profiles[0].Artifacts[0].SHA256 = sha(f.iso)
			res, err := e.c.UploadISOs(t.Context(), cfgFor(tt.method), f.lock, RunOptions{Keep: -1})
			if err != nil || res[0].Action == ActionSkipped {
				t.Errorf("rerun = %+v, %v; want a fresh transfer", res, err)
			}
		})
	}
}

func TestISOTaskWarningsSucceed(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	e.srv.Inject(pvetest.Fault{Kind: pvetest.FaultTaskWarn, Path: "/upload"})
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if err != nil {
		t.Fatalf("UploadISOs() = %v; want success for WARNINGS: 1", err)
	}
	if !strings.Contains(res[0].Warning, "WARNINGS: 1") {
		t.Errorf("warning %q; want it to carry WARNINGS: 1", res[0].Warning)
	}
}

// cancelAfter cancels ctx once n bytes were read, then keeps reading slowly.
type cancelAfter struct {
	r      io.Reader
	n      int64
	cancel context.CancelFunc
}

func (c *cancelAfter) Read(p []byte) (int, error) {
	if c.n <= 0 {
		c.cancel()
		time.Sleep(10 * time.Millisecond)
	}
	n, err := c.r.Read(p)
	c.n -= int64(n)
	return n, err
}

func TestUploadCancelled(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	const size = 64 << 20
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	name := isoName(t, "v1.9.5")
	a := Artifact{Content: "iso", Filename: name, Size: size, Checksum: strings.Repeat("0", 64), Algorithm: "sha256",
		Open: func() (io.ReadCloser, error) {
			return io.NopCloser(&cancelAfter{r: io.LimitReader(zeroReader{}, size), n: 4 << 20, cancel: cancel}), nil
		}}
	_, err := e.c.EnsureVolume(ctx, Target{"pve1", "local"}, a, MethodUpload, false)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("EnsureVolume(cancelled) = %v; want context.Canceled", err)
	}
	if v := e.srv.Volumes(); len(v) != 0 {
		t.Errorf("volumes %v; want none", volumeIDs(v))
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		ups := e.srv.Uploads()
		if len(ups) == 1 {
			if ups[0].Complete || ups[0].Bytes >= size {
				t.Errorf("server got %d bytes, complete %v; want an aborted upload", ups[0].Bytes, ups[0].Complete)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server recorded %d uploads; want 1 aborted", len(ups))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

type zeroReader struct{}

func (zeroReader) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

func TestWaitCancelledStopsTask(t *testing.T) {
	t.Parallel()
	e := newEnv(t, pvetest.WithTaskPolls(1<<30))
	f := newFixture(t, e.dir, "v1.9.5")
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	// Cancel once the client polls the task, so the run is cancelled while it waits
	// (however slow the machine), not while the body is still going out.
	go func() {
		for ctx.Err() == nil && countRequests(e.srv, "GET ", "/tasks/") == 0 {
			time.Sleep(time.Millisecond)
		}
		cancel()
	}()
	_, err := e.c.UploadISOs(ctx, cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("UploadISOs(cancelled while waiting) = %v; want context.Canceled", err)
	}
	tasks := e.srv.Tasks()
	if len(tasks) == 0 || tasks[0].ExitStatus != "interrupted by signal" {
		t.Errorf("tasks %+v; want the import task stopped", tasks)
	}
	if v := e.srv.Volumes(); len(v) != 0 {
		t.Errorf("volumes %v; want none", volumeIDs(v))
	}
}

func TestSharedStorageUploadsOnce(t *testing.T) {
	t.Parallel()
	tests := []struct {
		shared      bool
		wantUploads int
	}{{true, 1}, {false, 2}}
	for _, tt := range tests {
		e := newEnv(t, pvetest.WithNodes("pve1", "pve2"),
			pvetest.WithStorages(pvetest.Storage{Name: "local", Type: "nfs", Shared: tt.shared, Content: []string{"iso", "import"}}))
		f := newFixture(t, e.dir, "v1.9.5")
		res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload, "pve1", "pve2"), f.lock, RunOptions{Keep: -1})
		if err != nil {
			t.Fatalf("UploadISOs(shared=%v): %v", tt.shared, err)
		}
		if got := len(e.srv.Uploads()); got != tt.wantUploads || len(res) != tt.wantUploads {
			t.Errorf("UploadISOs(shared=%v): %d uploads, %d results; want %d", tt.shared, got, len(res), tt.wantUploads)
		}
	}
}

func TestDryRunMutatesNothing(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	e.srv.AddVolume(pvetest.Volume{Storage: "local", Node: "pve1", VolID: "local:iso/" + isoName(t, "v1.9.1"), Content: "iso", Format: "iso", Size: 5})
	iso, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{DryRun: true, Keep: 1})
	if err != nil {
		t.Fatalf("UploadISOs(dry-run): %v", err)
	}
	tpl, err := e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{DryRun: true, Keep: 1})
	if err != nil {
		t.Fatalf("BuildTemplates(dry-run): %v", err)
	}
	var actions []string
	for _, r := range append(iso, tpl...) {
		actions = append(actions, r.Kind+":"+r.Action)
	}
	want := []string{"iso:would-upload", "iso:would-remove", "import:would-upload", "template:would-create"}
	if !slices.Equal(actions, want) {
		t.Errorf("dry-run actions %v; want %v", actions, want)
	}
	for _, r := range e.srv.Requests() {
		if !strings.HasPrefix(r, "GET ") {
			t.Errorf("dry-run sent %s; want only GETs", r)
		}
	}
}

func TestKeepPrunesOnlyImgpipeISOs(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	other := volName(t, "elsewhere", "worker", testSchematic, "v1.9.1", "iso")
	legacy := "talos-376567988ad3-v1.9.1-nocloud-amd64.iso"
	seed := []string{isoName(t, "v1.9.3"), isoName(t, "v1.9.4"), isoName(t, "v1.10.0-alpha.1"), "ubuntu-24.04.iso", "talos-custom.iso", other, legacy}
	for _, n := range seed {
		e.srv.AddVolume(pvetest.Volume{Node: "pve1", Storage: "local", VolID: "local:iso/" + n, Content: "iso", Format: "iso", Size: 1})
	}
	res, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: 2})
	if err != nil {
		t.Fatalf("UploadISOs(keep 2): %v", err)
	}
	var removed []string
	for _, r := range res {
		if r.Action == ActionRemoved {
			removed = append(removed, r.Volume)
		}
	}
	want := []string{"local:iso/" + isoName(t, "v1.9.3"), "local:iso/" + isoName(t, "v1.9.4")}
	slices.Sort(removed)
	if !slices.Equal(removed, want) {
		t.Errorf("removed %v; want %v (kept: v1.10.0-alpha.1 and the new v1.9.5)", removed, want)
	}
	var left []string
	for _, v := range e.srv.Volumes() {
		left = append(left, strings.TrimPrefix(v.VolID, "local:iso/"))
	}
	for _, n := range []string{"ubuntu-24.04.iso", "talos-custom.iso", other, legacy, isoName(t, "v1.9.5"), isoName(t, "v1.10.0-alpha.1")} {
		if !slices.Contains(left, n) {
			t.Errorf("%s was removed; want it kept", n)
		}
	}
}

func TestTokenNeverLeaks(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	f := newFixture(t, e.dir, "v1.9.5")
	var errs []error
	e.srv.Inject(pvetest.Fault{Kind: pvetest.FaultTaskFail, Path: "/upload", Message: "boom"})
	_, err := e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	errs = append(errs, err)
	e.srv.Inject(pvetest.Fault{Kind: pvetest.Fault500, Path: "/content"})
	_, err = e.c.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	errs = append(errs, err)
	_, err = e.c.BuildTemplates(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	errs = append(errs, err)

	// A wrong secret: PVE says 401 on the JSON API and on uploads.
	bad, _ := ParseToken(e.srv.TokenID() + "=wrong-" + e.srv.Secret())
	hc, _ := NewHTTPClient(TLSOptions{Insecure: true})
	c2, _ := New(e.srv.URL, bad, hc, WithLogger(e.c.log))
	_, err = c2.UploadISOs(t.Context(), cfgFor(MethodUpload), f.lock, RunOptions{Keep: -1})
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("UploadISOs(wrong token) = %v; want ErrUnauthorized", err)
	}
	errs = append(errs, err)
	_, err = c2.Upload(t.Context(), UploadRequest{Node: "pve1", Storage: "local", Content: "iso", Filename: "x.iso", Body: strings.NewReader("x"), Size: 1})
	if !errors.Is(err, ErrUnauthorized) {
		t.Errorf("Upload(wrong token) = %v; want ErrUnauthorized", err)
	}
	errs = append(errs, err)
	_, err = ParseToken("root@pam!ci=" + e.srv.Secret() + " tail")
	errs = append(errs, err)

	for _, secret := range []string{e.srv.Secret(), "wrong-" + e.srv.Secret()} {
		if strings.Contains(e.logs.String(), secret) {
			t.Errorf("logs contain the token secret")
		}
		for _, err := range errs {
			if err != nil && strings.Contains(err.Error(), secret) {
				t.Errorf("error %q contains the token secret", err)
			}
		}
	}
	if !strings.Contains(e.logs.String(), "level=DEBUG") {
		t.Errorf("debug logs are empty; the check above proves nothing")
	}
}

func TestTLSVerification(t *testing.T) {
	t.Parallel()
	srv := pvetest.New()
	defer srv.Close()
	tok, _ := ParseToken(srv.Token())
	dir := t.TempDir()
	ca := dir + "/ca.pem"
	writeFile(t, ca, srv.CertPEM())
	tests := []struct {
		name    string
		opt     TLSOptions
		wantErr bool
	}{
		{"system roots reject self-signed", TLSOptions{}, true},
		{"ca file", TLSOptions{CAFile: ca}, false},
		{"pinned fingerprint", TLSOptions{Fingerprint: srv.Fingerprint()}, false},
		{"pinned fingerprint lower-case no colons", TLSOptions{Fingerprint: strings.ToLower(strings.ReplaceAll(srv.Fingerprint(), ":", ""))}, false},
		{"wrong fingerprint", TLSOptions{Fingerprint: strings.Repeat("AB:", 31) + "AB"}, true},
		{"insecure", TLSOptions{Insecure: true}, false},
	}
	for _, tt := range tests {
		hc, err := NewHTTPClient(tt.opt)
		if err != nil {
			t.Fatalf("NewHTTPClient(%s): %v", tt.name, err)
		}
		c, _ := New(srv.URL, tok, hc)
		_, err = c.Version(t.Context())
		if (err != nil) != tt.wantErr {
			t.Errorf("Version() over %s = %v; want error %v", tt.name, err, tt.wantErr)
		}
		if tt.name == "wrong fingerprint" && !errors.Is(err, ErrFingerprint) {
			t.Errorf("Version() over %s = %v; want ErrFingerprint", tt.name, err)
		}
		hc.CloseIdleConnections()
	}
	if _, err := NewHTTPClient(TLSOptions{CAFile: dir + "/missing.pem"}); !errors.Is(err, fail.ErrUsage) || !errors.Is(err, os.ErrNotExist) {
		t.Errorf("NewHTTPClient(missing CA) = %v; want a usage error wrapping ErrNotExist", err)
	}
	if _, err := NewHTTPClient(TLSOptions{Fingerprint: "nope"}); !errors.Is(err, fail.ErrUsage) {
		t.Errorf("NewHTTPClient(bad fingerprint) = %v; want a usage error", err)
	}
}
